# Linux as the firewall, for comparisons with tunfw (sourced by
# netns-tests/parity/parity.sh and scripts/bench.sh).
#
# kernel_fw_up NC NF NS: in existing namespaces NC (client), NF (firewall),
# NS (server), join NC and NF by veth pc0 <-> pf-lan (10.202.1.2 / .1), NF and
# NS by pf-wan <-> ps0 (10.202.2.1 / .2), route the client and server through
# the firewall, and load iptables FORWARD rules equal to tunfw's default config
# (from netns-tests/seed.iptables: INPUT -> -i pf-wan, OUTPUT -> -i pf-lan,
# and the raw-table FTP helper).
kernel_fw_up() {
    local nc=$1 nf=$2 ns=$3 root line
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    ip link add pc0 netns "$nc" type veth peer name pf-lan netns "$nf" || return 1
    ip link add pf-wan netns "$nf" type veth peer name ps0 netns "$ns" || return 1
    ip -n "$nc" addr add 10.202.1.2/24 dev pc0 && ip -n "$nc" link set pc0 up
    ip -n "$ns" addr add 10.202.2.2/24 dev ps0 && ip -n "$ns" link set ps0 up
    ip -n "$nf" addr add 10.202.1.1/24 dev pf-lan && ip -n "$nf" link set pf-lan up
    ip -n "$nf" addr add 10.202.2.1/24 dev pf-wan && ip -n "$nf" link set pf-wan up
    ip -n "$nc" route add 10.202.2.0/24 via 10.202.1.1
    ip -n "$ns" route add 10.202.1.0/24 via 10.202.2.1
    ip netns exec "$nf" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    while read -r line; do
        case $line in '' | '#'*) continue ;; esac
        line=${line#iptables }
        line=$(sed -e 's/^-P INPUT DROP/-P FORWARD DROP/' -e '/^-P OUTPUT/d' \
            -e 's/^-A INPUT /-A FORWARD -i pf-wan /' -e 's/^-A OUTPUT /-A FORWARD -i pf-lan /' <<<"$line")
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086
        ip netns exec "$nf" iptables $line || { echo "iptables $line failed" >&2; return 1; }
    done <"$root/netns-tests/seed.iptables"
}
