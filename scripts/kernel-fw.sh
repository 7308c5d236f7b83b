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
    local nc=$1 nf=$2 ns=$3
    ip link add pc0 netns "$nc" type veth peer name pf-lan netns "$nf" || return 1
    ip link add pf-wan netns "$nf" type veth peer name ps0 netns "$ns" || return 1
    ip -n "$nc" addr add 10.202.1.2/24 dev pc0 && ip -n "$nc" link set pc0 up
    ip -n "$ns" addr add 10.202.2.2/24 dev ps0 && ip -n "$ns" link set ps0 up
    ip -n "$nf" addr add 10.202.1.1/24 dev pf-lan && ip -n "$nf" link set pf-lan up
    ip -n "$nf" addr add 10.202.2.1/24 dev pf-wan && ip -n "$nf" link set pf-wan up
    ip -n "$nc" route add 10.202.2.0/24 via 10.202.1.1
    ip -n "$ns" route add 10.202.1.0/24 via 10.202.2.1
    ip netns exec "$nf" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    kernel_fw_rules "$nf" 4
}

# kernel_fw6_up NC NF NS: after kernel_fw_up, the same links in IPv6: the ULA
# prefixes fd00:7f:1::/64 (client side: pc0 ::2, pf-lan ::1) and
# fd00:7f:2::/64 (server side: pf-wan ::1, ps0 ::2), without duplicate
# address detection (nodad), routes through the firewall, IPv6 forwarding,
# and ip6tables FORWARD rules equal to tunfw's default config for IPv6: the
# seed's rules, with -p icmpv6 where the seed says -p icmp (tunfw's ICMPv6
# twins; its ICMP rules match no IPv6 packet).
kernel_fw6_up() {
    local nc=$1 nf=$2 ns=$3
    ip -n "$nc" addr add fd00:7f:1::2/64 dev pc0 nodad || return 1
    ip -n "$ns" addr add fd00:7f:2::2/64 dev ps0 nodad || return 1
    ip -n "$nf" addr add fd00:7f:1::1/64 dev pf-lan nodad || return 1
    ip -n "$nf" addr add fd00:7f:2::1/64 dev pf-wan nodad || return 1
    ip -n "$nc" route add fd00:7f:2::/64 via fd00:7f:1::1 || return 1
    ip -n "$ns" route add fd00:7f:1::/64 via fd00:7f:2::1 || return 1
    ip netns exec "$nf" sysctl -qw net.ipv6.conf.all.forwarding=1 || return 1
    kernel_fw_rules "$nf" 6
}

# kernel_fw_rules NF FAMILY: load netns-tests/seed.iptables into NF as
# FORWARD rules (INPUT -> -i pf-wan, OUTPUT -> -i pf-lan, policy DROP, the
# raw-table helper as it is) with iptables (FAMILY 4) or ip6tables (FAMILY
# 6, -p icmp becoming -p icmpv6).
kernel_fw_rules() {
    local nf=$1 family=$2 root line cmd=iptables icmp=icmp
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    [ "$family" = 6 ] && cmd=ip6tables icmp=icmpv6
    while read -r line; do
        case $line in '' | '#'*) continue ;; esac
        line=${line#iptables }
        line=$(sed -e 's/^-P INPUT DROP/-P FORWARD DROP/' -e '/^-P OUTPUT/d' \
            -e 's/^-A INPUT /-A FORWARD -i pf-wan /' -e 's/^-A OUTPUT /-A FORWARD -i pf-lan /' \
            -e "s/ -p icmp / -p $icmp /" <<<"$line")
        [ -n "$line" ] || continue
        # shellcheck disable=SC2086
        ip netns exec "$nf" $cmd $line || { echo "$cmd $line failed" >&2; return 1; }
    done <"$root/netns-tests/seed.iptables"
}
