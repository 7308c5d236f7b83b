# shellcheck shell=bash
# Linux as the firewall, for comparisons with tunfw (sourced by
# netns-tests/parity/parity.sh and scripts/bench.sh).
#
# kernel_fw_up sets up IPv4 only; kernel_fw6_up adds IPv6 on top of it.
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
    kernel_fw_rules "$nf" iptables
}

# kernel_fw_seed_rules FAMILY: print the seed firewall's rules as FORWARD
# rules, one per line without the command name, for FAMILY iptables (from
# netns-tests/seed.iptables) or ip6tables (from netns-tests/seed.ip6tables;
# without it, seed.iptables with -p icmpv6 for -p icmp, which is what that
# file holds: tunfw's default config for IPv6).
kernel_fw_seed_rules() {
    local family=$1 root line seed
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    seed=$root/netns-tests/seed.iptables
    [ "$family" = ip6tables ] && [ -f "$root/netns-tests/seed.ip6tables" ] && seed=$root/netns-tests/seed.ip6tables
    while read -r line; do
        case $line in '' | '#'*) continue ;; esac
        line=${line#iptables }
        line=${line#ip6tables }
        line=$(sed -e 's/^-P INPUT DROP/-P FORWARD DROP/' -e '/^-P OUTPUT/d' \
            -e 's/^-A INPUT /-A FORWARD -i pf-wan /' -e 's/^-A OUTPUT /-A FORWARD -i pf-lan /' <<<"$line")
        [ "$family" = ip6tables ] && line=${line//-p icmp /-p icmpv6 }
        [ -n "$line" ] && printf '%s\n' "$line"
    done <"$seed"
    return 0
}

# kernel_fw_rules NF FAMILY: load kernel_fw_seed_rules FAMILY into NF with
# FAMILY (iptables or ip6tables).
kernel_fw_rules() {
    local nf=$1 family=$2 line
    while read -r line; do
        # shellcheck disable=SC2086
        ip netns exec "$nf" "$family" $line || { echo "$family $line failed" >&2; return 1; }
    done < <(kernel_fw_seed_rules "$family")
}

# kernel_fw6_up NC NF NS: after kernel_fw_up NC NF NS, the same topology for
# IPv6: pc0 fd00:b:1::2 <-> pf-lan fd00:b:1::1, pf-wan fd00:b:2::1 <-> ps0
# fd00:b:2::2 (all nodad), routes through the firewall, IPv6 forwarding,
# and the seed rules as ip6tables FORWARD rules.
kernel_fw6_up() {
    local nc=$1 nf=$2 ns=$3
    ip -n "$nc" addr add fd00:b:1::2/64 dev pc0 nodad || return 1
    ip -n "$ns" addr add fd00:b:2::2/64 dev ps0 nodad || return 1
    ip -n "$nf" addr add fd00:b:1::1/64 dev pf-lan nodad || return 1
    ip -n "$nf" addr add fd00:b:2::1/64 dev pf-wan nodad || return 1
    ip -n "$nc" -6 route add fd00:b:2::/64 via fd00:b:1::1 || return 1
    ip -n "$ns" -6 route add fd00:b:1::/64 via fd00:b:2::1 || return 1
    ip netns exec "$nf" sysctl -qw net.ipv6.conf.all.forwarding=1
    kernel_fw_rules "$nf" ip6tables
}
