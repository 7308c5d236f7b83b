#!/usr/bin/env bash
# Differential test: the same packet sequences through Linux netfilter and
# through tunfw, compared packet by packet.
#
#   parity.sh [--family 4|6|all] [--random N] [--frag N] [--ftp N] [--seed S] [--only NAME[,NAME...]]...
#
# --family picks the corpus: 4 (the default) the IPv4 one, 6 the IPv6 one
# (fixed sequences v6_*, random sequences random6_SEED_INDEX), all both (the
# IPv4 one first); --random N is the number of random sequences of each
# family picked (default 50); --frag N the number of random fragment
# sequences of each family (randfrag_SEED_INDEX, randfrag6_SEED_INDEX;
# default: as --random). The seed of the random sequences is fixed
# (DEFAULT_SEED) unless --seed is given, so a red run replays as it ran; it is
# printed in the first line. Fresh seeds go through
# scripts/parity-campaign.sh. --only runs just the named sequences
# (fixed-corpus names of either family, or random_SEED_INDEX /
# random6_SEED_INDEX of the seed in use; a name says its family); every DIFF
# line ends with the command that replays that sequence alone. --ftp N adds N
# random FTP lines of each family picked (ftp_SEED_INDEX, ftp6_SEED_INDEX:
# ftp_lines.py); the fixed corpora carry its fixed cases (ftpf_*, ftpf6_*).
# A difference README "Differences from Linux" explains (ftp_lines.documented)
# prints as DOCUMENTED and passes.
#
# Topology (namespaces $PARITY_PREFIX-*, default tunfwp-*): a client and a
# server namespace joined through a firewall namespace, dual-stack, built
# twice: once with veth pairs and the kernel forwarding under iptables and
# ip6tables FORWARD rules equal to tunfw's default config (generated from
# netns-tests/seed.iptables, INPUT -> -i pf-wan, OUTPUT -> -i pf-lan, plus
# the raw-table FTP helper; for IPv6 -p icmpv6 where the seed says -p icmp),
# once with tunfw on two TUN devices moved into the client and server
# namespaces. IPv4 in 10.202.1.0/24 (client side) and 10.202.2.0/24 (server
# side), IPv6 in fd00:7f:1::/64 and fd00:7f:2::/64, addresses added without
# duplicate address detection, router advertisements and solicitations off,
# and the firewall's neighbour entries for the crafted addresses static, so
# no ND or MLD exchange stands between a packet and its fate. The UDP
# unreplied timeout is 2 s in both. replay.py sends each sequence's crafted
# packets from the endpoints and records which reached the far side.
#
# Output: one line per sequence, SAME or DIFF with the first differing
# packet and the command that replays it (KNOWN for a difference README
# explains: fragcorpus.KNOWN_DIFFERENCES); a SIZES line for a sequence whose
# packets arrived alike but in pieces of other sizes (a reassembled
# datagram cut otherwise); then "parity: sizes of what arrived: N
# sequences alike, N differ", "parity: N known differences" and "parity:
# N passed, N failed" (known differences count as passed).
# Exit 1 on any DIFF, 2 if the run could not be made.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DEFAULT_SEED=20261201
RANDOM_COUNT=50
SEED=$DEFAULT_SEED
ONLY=
FAMILY=4
FTP_COUNT=0
usage() { echo "usage: $0 [--family 4|6|all] [--random N] [--frag N] [--ftp N] [--seed S] [--only NAME[,NAME...]]..." >&2; exit 2; }
FRAG_COUNT=
while [ $# -gt 0 ]; do
    case $1 in
    --family) [ $# -ge 2 ] || usage; FAMILY=$2; shift 2 ;;
    --random) [ $# -ge 2 ] || usage; RANDOM_COUNT=$2; shift 2 ;;
    --ftp) [ $# -ge 2 ] || usage; FTP_COUNT=$2; shift 2 ;;
    --frag) [ $# -ge 2 ] || usage; FRAG_COUNT=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; SEED=$2; shift 2 ;;
    --only) [ $# -ge 2 ] || usage; ONLY=${ONLY:+$ONLY,}$2; shift 2 ;;
    *) usage ;;
    esac
done
case $FAMILY in 4 | 6 | all) ;; *) usage ;; esac
FRAG_COUNT=${FRAG_COUNT:-$RANDOM_COUNT}
REPLAY_ARGS=(--family "$FAMILY" --frag "$FRAG_COUNT" --ftp "$FTP_COUNT")
[ -z "$ONLY" ] || REPLAY_ARGS+=(--only "$ONLY")
# Check the arguments and the names before building anything.
python3 "$HERE/replay.py" list all "$SEED" "$RANDOM_COUNT" /dev/null "${REPLAY_ARGS[@]}" || exit 2
# PARITY_TUNFW_ARGS: extra tunfw arguments (e.g. "--offload off").
P=${PARITY_PREFIX:-tunfwp}
export PARITY_PREFIX=$P
NC=$P-client NF=$P-fw NS=$P-server
FRAG_TIMEOUT=5
WORK=$(mktemp -d /tmp/tunfwp.XXXXXX)
export TUNFW_BIN=${TUNFW_BIN:-$ROOT/target/release/tunfw}
export TUNFW_CONTROL=$WORK/control.sock
TUNFW_PID=

# shellcheck source=../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

down() {
    [ -n "$TUNFW_PID" ] && kill "$TUNFW_PID" 2>/dev/null && wait "$TUNFW_PID" 2>/dev/null
    TUNFW_PID=
    ns_destroy "$NC" "$NF" "$NS"
}
cleanup() { down; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

namespaces() {
    down
    ns_create "$NC" "$NF" "$NS" || return 1
    # Interfaces created in (or moved into) these namespaces take the
    # defaults: no duplicate address detection, no router advertisements or
    # solicitations.
    local ns
    for ns in "$NC" "$NF" "$NS"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 \
            net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.all.accept_ra=0 \
            net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.all.router_solicitations=0 || return 1
    done
}

# shellcheck source=../../scripts/kernel-fw.sh
source "$ROOT/scripts/kernel-fw.sh"

kernel_up() {
    namespaces || return 1
    kernel_fw_up "$NC" "$NF" "$NS" || return 1
    kernel_fw6_up "$NC" "$NF" "$NS" || return 1
    # Crafted flows use addresses the endpoints do not own: tell the firewall
    # where they live (IPv4 ARP and IPv6 neighbour entries, permanent).
    local cmac smac a
    cmac=$(ip -n "$NC" -j link show pc0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    smac=$(ip -n "$NS" -j link show ps0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    for a in 10.202.1.50 10.202.1.51 10.202.1.60 fd00:7f:1::50 fd00:7f:1::51 fd00:7f:1::60; do
        ip -n "$NF" neigh add $a lladdr "$cmac" dev pf-lan nud permanent || return 1
    done
    for a in 10.202.2.50 10.202.2.77 10.202.2.60 fd00:7f:2::50 fd00:7f:2::51 fd00:7f:2::60; do
        ip -n "$NF" neigh add $a lladdr "$smac" dev pf-wan nud permanent || return 1
    done
    ip netns exec "$NF" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 || return 1
    # Reassembly queues live 5 s (as tunfw's below), so that the incomplete
    # datagrams a run leaves behind do not pile up. Linux's fragment memory
    # gets 256 MiB: with its 4 MiB, Linux 6.18 refused every fragment after
    # about 4,200 datagrams of a run, whether queues lived 30 s or 5 s (so
    # the memory it counts seems not to be given back as queues expire:
    # about 1 KiB a datagram on average), and never with 256 MiB; tunfw
    # keeps its 4 MiB.
    ip netns exec "$NF" sysctl -qw net.ipv4.ipfrag_time=$FRAG_TIMEOUT \
        net.netfilter.nf_conntrack_frag6_timeout=$FRAG_TIMEOUT \
        net.ipv4.ipfrag_high_thresh=268435456 net.netfilter.nf_conntrack_frag6_high_thresh=268435456 || return 1
}

tunfw_up() {
    namespaces || return 1
    ip -n "$NF" tuntap add dev tfp-lan mode tun && ip -n "$NF" tuntap add dev tfp-wan mode tun || return 1
    sed -e 's/udp: (unreplied: 30, replied: 120)/udp: (unreplied: 2, replied: 120)/' \
        -e "s/^    ipv6: Track,\$/    ipv6: Track,\n    defrag: (timeout_v4: $FRAG_TIMEOUT, timeout_v6: $FRAG_TIMEOUT),/" \
        "$ROOT/config/default.ron" >"$WORK/parity.ron"
    grep -q 'unreplied: 2,' "$WORK/parity.ron" && grep -q "timeout_v6: $FRAG_TIMEOUT" "$WORK/parity.ron" || return 1
    # PARITY_TUNFW_ARGS splits into words on purpose.
    # shellcheck disable=SC2086
    ip netns exec "$NF" "$TUNFW_BIN" --lan tfp-lan --wan tfp-wan --config "$WORK/parity.ron" \
        --control "$TUNFW_CONTROL" ${PARITY_TUNFW_ARGS:-} >"$WORK/tunfw.log" 2>&1 &
    TUNFW_PID=$!
    wait_until "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" stats || { cat "$WORK/tunfw.log" >&2; return 1; }
    ip -n "$NF" link set tfp-lan netns "$NC" && ip -n "$NF" link set tfp-wan netns "$NS" || return 1
    ip -n "$NC" addr add 10.202.1.2/24 dev tfp-lan && ip -n "$NC" addr add fd00:7f:1::2/64 dev tfp-lan nodad &&
        ip -n "$NC" link set tfp-lan up || return 1
    ip -n "$NS" addr add 10.202.2.2/24 dev tfp-wan && ip -n "$NS" addr add fd00:7f:2::2/64 dev tfp-wan nodad &&
        ip -n "$NS" link set tfp-wan up || return 1
}

if [ -n "$ONLY" ]; then
    echo "parity: only ${ONLY//,/ }, seed $SEED"
else
    case $FAMILY in
    4) echo "parity: fixed corpus + $RANDOM_COUNT random + $FRAG_COUNT random fragment sequences, seed $SEED" ;;
    6) echo "parity: IPv6 fixed corpus + $RANDOM_COUNT random + $FRAG_COUNT random fragment sequences, seed $SEED" ;;
    all) echo "parity: IPv4 and IPv6 fixed corpora + $RANDOM_COUNT random + $FRAG_COUNT random fragment sequences of each, seed $SEED" ;;
    esac
    [ "$FTP_COUNT" = 0 ] || echo "parity: + $FTP_COUNT random FTP lines of each family, seed $SEED"
fi
kernel_up || { echo "kernel topology failed" >&2; exit 2; }
python3 "$HERE/replay.py" kernel all "$SEED" "$RANDOM_COUNT" "$WORK/kernel.out" "${REPLAY_ARGS[@]}" || exit 2
down
tunfw_up || { echo "tunfw topology failed" >&2; exit 2; }
python3 "$HERE/replay.py" tunfw all "$SEED" "$RANDOM_COUNT" "$WORK/tunfw.out" "${REPLAY_ARGS[@]}" || exit 2
down

python3 - "$WORK/kernel.out" "$WORK/tunfw.out" "$SEED" "${PARITY_TUNFW_ARGS:-}" "$HERE" <<'PY'
import shlex, sys
sys.path.insert(0, sys.argv[5])
from ftp_lines import documented
from fragcorpus import KNOWN_DIFFERENCES
kernel = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
tunfw = {name: (t, sizes) for name, t, sizes in (l.rstrip("\n").split("\t") for l in open(sys.argv[2]))}
seed, tunfw_args = sys.argv[3], sys.argv[4]
env = f"PARITY_TUNFW_ARGS={shlex.quote(tunfw_args)} " if tunfw_args else ""
passed = failed = alike = unlike = known = documented_count = 0
for name, k, ksizes in kernel:
    t, tsizes = tunfw.get(name, (None, None))
    replay = f"replay: {env}bash netns-tests/parity/parity.sh --seed {shlex.quote(seed)} --only {shlex.quote(name)}"
    if t == k:
        passed += 1
        print(f"SAME {name} {k}")
        if tsizes == ksizes:
            alike += 1
        else:
            unlike += 1
            i = next(i for i, (a, b) in enumerate(zip(ksizes.split(","), tsizes.split(","))) if a != b)
            print(f"SIZES {name} packet {i + 1}: kernel {ksizes.split(',')[i]}, tunfw {tsizes.split(',')[i]} "
                  f"(kernel {ksizes}, tunfw {tsizes}); {replay}")
        continue
    if KNOWN_DIFFERENCES.get(name) == (k, t):
        known += 1
        passed += 1
        print(f"KNOWN {name}: kernel {k}, tunfw {t} (README, Differences from Linux; "
              f"netns-tests/parity/fragcorpus.py KNOWN_DIFFERENCES)")
        continue
    why = documented(name, k, t or "")
    if why:
        passed += 1
        documented_count += 1
        print(f"DOCUMENTED {name} (kernel {k}, tunfw {t}): {why}")
        continue
    failed += 1
    if t is None:
        print(f"DIFF {name}: missing from the tunfw run; {replay}")
        continue
    i = next(i for i in range(max(len(k), len(t))) if k[i:i+1] != t[i:i+1])
    word = lambda c: {"1": "forwarded", "0": "dropped"}.get(c, "absent")
    print(f"DIFF {name} packet {i + 1}: kernel {word(k[i:i+1])}, tunfw {word(t[i:i+1])} (kernel {k}, tunfw {t}; sizes: kernel {ksizes}, tunfw {tsizes}); {replay}")
if documented_count:
    print(f"parity: {documented_count} of the passed differ as README Differences from Linux says")
print(f"parity: sizes of what arrived: {alike} sequences alike, {unlike} differ")
print(f"parity: {known} known differences (README, Differences from Linux)")
print(f"parity: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
