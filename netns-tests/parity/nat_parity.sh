#!/usr/bin/env bash
# NAT parity: the same crafted packet sequences through Linux NAT
# (iptables -t nat) and through tunfw with the same NAT, compared field by
# field at the endpoints.
#
#   nat_parity.sh [--ftp] [--only NAME[,NAME...]]
#
# Topology (namespaces $NAT_PARITY_PREFIX-c, -fw, -s, default tfnp-*): a LAN (10.203.1.0/24, client side)
# and a WAN (10.203.2.0/24, server side) joined by a firewall at 10.203.1.1
# and 10.203.2.1, built twice: with veth pairs and the kernel forwarding,
# then with tunfw on two TUN devices (mode tun multi_queue) moved into the
# client and server namespaces. The server has no route to the LAN: answers
# come back only through the translation. The same NAT in both:
#   iptables -t nat -A POSTROUTING -o pf-wan -s 10.203.1.80/32 -p tcp -j SNAT --to-source 10.203.2.1:20000-20099
#   iptables -t nat -A POSTROUTING -o pf-wan -s 10.203.1.0/24 -j MASQUERADE
#   iptables -t nat -A PREROUTING -i pf-wan -p tcp -d 10.203.2.1 --dport 8080 -j DNAT --to-destination 10.203.1.70:7000
#   iptables -t nat -A PREROUTING -i pf-wan -p tcp -d 10.203.2.1 --dport 21 -j DNAT --to-destination 10.203.1.70:21
# and tunfw's nat section saying the same (tunfw_config below). Filtering:
# the default ruleset in both (tunfw's config/default.ron; for Linux the
# FORWARD rules generated from netns-tests/seed.iptables by
# scripts/kernel-fw.sh, FTP helper on port 21 in the raw table included),
# plus three inbound rules in both: NEW TCP to 10.203.1.70:7000 and :21 (the
# port forwards; the rules see the translated destination) and RELATED TCP
# (the passive FTP data connection to the forwarded server). Linux's own
# stack in the firewall namespace stays silent: INPUT policy DROP (tunfw has
# no stack of its own).
#
# nat_replay.py sends the cases' crafted packets with AF_PACKET from the
# endpoints (addresses neither endpoint owns, so their stacks stay silent)
# and records each packet that arrives at the far side: IP length, TTL,
# addresses, checksum validity (IP, TCP/UDP/ICMP), ports, TCP flags,
# sequence and ack numbers, payload, ICMP type/code/identifier and, for ICMP
# errors, the quoted packet (addresses, protocol, TTL, ports or identifier,
# IP checksum validity, transport checksum validity or value). All of it is
# compared exactly except where Linux picks a port or identifier at random
# (nf_nat_l4proto_unique_tuple: a random offset into the port's class):
# such a value is compared by property, as CLASS#N (CLASS the range it falls
# in: 1-511, 600-1023, 1024-65535, the SNAT range 20000-20099, or id for an
# ICMP identifier; N its rank among the values chosen in the case), so
# "kept" (the crafted value itself), "changed", "in the same class" and
# "distinct from the first" (another N) are compared, not the value. The
# port nf_nat_ftp gives an FTP data connection is the announced one when it
# is free (nf_nat_exp_find_port starts there), so FTP text is compared
# exactly.
#
# --ftp adds the FTP cases (PORT/EPRT through masquerade, 227 through the
# port forward of :21: the rewritten line, the shifted sequence numbers and
# acks, the data connection). --only runs the named cases.
# NAT_PARITY_TUNFW_ARGS: extra tunfw arguments (e.g. "--offload off").
#
# Output: one line per case, SAME (with "by property: ..." naming the
# values compared by property) or DIFF with the first differing packet,
# KNOWN for a difference README's "Differences from Linux" explains
# (nat_replay.KNOWN: passes only while the differing fields are exactly
# the recorded ones), then "nat parity: N known differences" and "nat
# parity: N passed, N failed". Exit 1 on a DIFF, 2 if the run could not be
# made.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
    --ftp) ARGS+=(--ftp); shift ;;
    --only) [ $# -ge 2 ] || { echo "usage: $0 [--ftp] [--only NAME[,NAME...]]" >&2; exit 2; }; ARGS+=(--only "$2"); shift 2 ;;
    *) echo "usage: $0 [--ftp] [--only NAME[,NAME...]]" >&2; exit 2 ;;
    esac
done
python3 "$HERE/nat_replay.py" list /dev/null "${ARGS[@]}" || exit 2
P=${NAT_PARITY_PREFIX:-tfnp}
export NAT_PARITY_PREFIX=$P
NC=$P-c NF=$P-fw NS=$P-s
WORK=$(mktemp -d /tmp/tfnp.XXXXXX)
TUNFW_BIN=${TUNFW_BIN:-$ROOT/target/release/tunfw}
CONTROL=$WORK/control.sock
TUNFW_PID=

# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=../../scripts/kernel-fw.sh
source "$ROOT/scripts/kernel-fw.sh"

down() {
    if [ -n "$TUNFW_PID" ]; then
        kill "$TUNFW_PID" 2>/dev/null
        wait "$TUNFW_PID" 2>/dev/null
    fi
    TUNFW_PID=
    ns_destroy "$NC" "$NF" "$NS"
}
cleanup() { down; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The crafted addresses' neighbour entries on the kernel firewall.
neighbours() {
    python3 -c "
import sys; sys.path.insert(0, '$HERE')
import nat_replay as n
print(' '.join(n.NEIGH_LAN)); print(' '.join(n.NEIGH_WAN))"
}

kernel_up() {
    ns_create "$NC" "$NF" "$NS" || return 1
    ip link add pc0 netns "$NC" type veth peer name pf-lan netns "$NF" || return 1
    ip link add pf-wan netns "$NF" type veth peer name ps0 netns "$NS" || return 1
    ip -n "$NC" addr add 10.203.1.2/24 dev pc0 && ip -n "$NC" link set pc0 up || return 1
    ip -n "$NS" addr add 10.203.2.2/24 dev ps0 && ip -n "$NS" link set ps0 up || return 1
    ip -n "$NF" addr add 10.203.1.1/24 dev pf-lan && ip -n "$NF" link set pf-lan up || return 1
    ip -n "$NF" addr add 10.203.2.1/24 dev pf-wan && ip -n "$NF" link set pf-wan up || return 1
    ip netns exec "$NF" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.pf-lan.rp_filter=0 net.ipv4.conf.pf-wan.rp_filter=0 || return 1
    kernel_fw_rules "$NF" 4 || return 1
    local r
    for r in "-P INPUT DROP" \
        "-A FORWARD -i pf-wan -p tcp -d 10.203.1.70 --dport 7000 -m state --state NEW -j ACCEPT" \
        "-A FORWARD -i pf-wan -p tcp -d 10.203.1.70 --dport 21 -m state --state NEW -j ACCEPT" \
        "-A FORWARD -i pf-wan -p tcp -m state --state RELATED -j ACCEPT" \
        "-t nat -A POSTROUTING -o pf-wan -s 10.203.1.80/32 -p tcp -j SNAT --to-source 10.203.2.1:20000-20099" \
        "-t nat -A POSTROUTING -o pf-wan -s 10.203.1.0/24 -j MASQUERADE" \
        "-t nat -A PREROUTING -i pf-wan -p tcp -d 10.203.2.1 --dport 8080 -j DNAT --to-destination 10.203.1.70:7000" \
        "-t nat -A PREROUTING -i pf-wan -p tcp -d 10.203.2.1 --dport 21 -j DNAT --to-destination 10.203.1.70:21"; do
        # shellcheck disable=SC2086
        ip netns exec "$NF" iptables $r || { echo "iptables $r failed" >&2; return 1; }
    done
    local cmac smac a lan wan
    cmac=$(ip -n "$NC" -j link show pc0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    smac=$(ip -n "$NS" -j link show ps0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    { read -r lan && read -r wan; } < <(neighbours) || return 1
    for a in $lan; do ip -n "$NF" neigh add "$a" lladdr "$cmac" dev pf-lan nud permanent || return 1; done
    for a in $wan; do ip -n "$NF" neigh add "$a" lladdr "$smac" dev pf-wan nud permanent || return 1; done
}

# config/default.ron with the router addresses, the NAT above and the three
# inbound rules.
tunfw_config() {
    local nat='    nat: (\
        source: [\
            (out: Wan, proto: Tcp, src: "10.203.1.80/32", to: Address("10.203.2.1"), ports: (20000, 20099)),\
            (out: Wan, src: "10.203.1.0/24", to: Masquerade),\
        ],\
        destination: [\
            (from: Wan, proto: Tcp, dst: "10.203.2.1", dport: "8080", to: "10.203.1.70", to_port: 7000),\
            (from: Wan, proto: Tcp, dst: "10.203.2.1", dport: "21", to: "10.203.1.70", to_port: 21),\
        ],\
    ),'
    local rules='            (name: "fwd-7000", proto: Tcp, dst: "10.203.1.70", dport: "7000", state: [New], action: Accept),\
            (name: "fwd-21", proto: Tcp, dst: "10.203.1.70", dport: "21", state: [New], action: Accept),\
            (name: "tcp-related-in", proto: Tcp, state: [Related], action: Accept),'
    # shellcheck disable=SC1003 # sed's i\ command, then the text
    sed -e 's|^    router: (lan: None, wan: None, lan6: None, wan6: None),$|    router: (lan: "10.203.1.1", wan: "10.203.2.1", lan6: None, wan6: None),\n'"$nat"'|' \
        -e '/^            (name: "udp-in", /i\'"$rules" \
        "$ROOT/config/default.ron" >"$WORK/nat.ron"
    grep -q 'to: Masquerade' "$WORK/nat.ron" && grep -q 'tcp-related-in' "$WORK/nat.ron" &&
        "$TUNFW_BIN" --check --config "$WORK/nat.ron" >/dev/null
}

tunfw_up() {
    ns_create "$NC" "$NF" "$NS" || return 1
    tunfw_config || { echo "the tunfw NAT config does not check" >&2; return 1; }
    ip -n "$NF" tuntap add dev tfp-lan mode tun multi_queue && ip -n "$NF" tuntap add dev tfp-wan mode tun multi_queue || return 1
    # NAT_PARITY_TUNFW_ARGS splits into words on purpose (e.g. "--offload off").
    # shellcheck disable=SC2086
    ip netns exec "$NF" "$TUNFW_BIN" --lan tfp-lan --wan tfp-wan --config "$WORK/nat.ron" \
        --control "$CONTROL" ${NAT_PARITY_TUNFW_ARGS:-} >"$WORK/tunfw.log" 2>&1 &
    TUNFW_PID=$!
    wait_until "$TUNFW_BIN" ctl --control "$CONTROL" stats || { cat "$WORK/tunfw.log" >&2; return 1; }
    ip -n "$NF" link set tfp-lan netns "$NC" && ip -n "$NF" link set tfp-wan netns "$NS" || return 1
    ip -n "$NC" addr add 10.203.1.2/24 dev tfp-lan && ip -n "$NC" link set tfp-lan up || return 1
    ip -n "$NS" addr add 10.203.2.2/24 dev tfp-wan && ip -n "$NS" link set tfp-wan up || return 1
}

echo "nat parity: Linux iptables -t nat (MASQUERADE, SNAT 20000-20099, DNAT 8080->7000) against tunfw$([ "${ARGS[0]:-}" = --ftp ] && echo ', FTP cases included')"
kernel_up || { echo "kernel topology failed" >&2; exit 2; }
nice -n 10 python3 "$HERE/nat_replay.py" kernel "$WORK/kernel.out" "${ARGS[@]}" || exit 2
down
tunfw_up || { echo "tunfw topology failed" >&2; exit 2; }
TUNFW_CONTROL=$CONTROL nice -n 10 python3 "$HERE/nat_replay.py" tunfw "$WORK/tunfw.out" "${ARGS[@]}" || exit 2
[ -z "${NAT_PARITY_KEEP:-}" ] || cp "$WORK/kernel.out" "$WORK/tunfw.out" "$NAT_PARITY_KEEP"/
down
python3 "$HERE/nat_replay.py" compare "$WORK/kernel.out" "$WORK/tunfw.out"
