#!/usr/bin/env bash
# scripts/bench.sh [--time SECS] [--runs N] [--out DIR] [--tests LIST]  (root)
#
# Throughput through (a) Linux forwarding with iptables rules equal to the
# default config, (b) tunfw on its default config, (c) tunfw --passthrough
# (no tracking, no rules: the floor of the TUN path), both with TUN offloads
# (the default), for context (d) tunfw --offload off, and (e) tunfw with the
# client masqueraded behind its WAN address (the server has no route back
# past it: `nat: (source: [(out: Wan, to: Masquerade)])`), measured with iperf3
# between a client and a server namespace. Tests (--tests picks some, comma
# separated; default all): tcp1 and tcp4 (TCP, one and four streams), udp64
# (UDP with 64-byte payloads at full rate), tcp1v6 (TCP one stream over IPv6:
# fd00:7f:1::2 -> fd00:7f:2::2, nodad; Linux with the same rules as
# ip6tables, -p icmpv6 for -p icmp) and udp4000 (UDP with 4000-byte
# datagrams at full rate: each leaves the client in three fragments at MTU
# 1500, which tunfw and Linux reassemble before tracking and cut again).
# RUNS runs each (default 3), each run going through every variant in turn,
# median with min and max. Gbit/s are what the server received; UDP tests
# add the loss iperf3 reports. Packets per second are counted on the
# server's interface (fragments for udp4000); tunfw's CPU share from /proc.
# Prints one table with the ratios b/a and b/c, writes DIR/bench.csv and
# DIR/bench.svg (default DIR: bench-results/).
# Results vary from run to run on shared machines: compare ratios of one run.
# Namespaces: ${BENCH_PREFIX}-{client,fw,server} (default BENCH_PREFIX=tunfwb).
# BENCH_VARIANTS picks variants (comma separated; default
# kernel,tunfw,passthrough,tunfw-nooffload,tunfw-nat). BENCH_TUN_MODE is the
# mode the TUN devices are made with (default "tun multi_queue"; "tun" for a
# tunfw binary that predates multi-queue devices). Two more variants measure
# a baseline build in the same runs: base (BENCH_BASE_BIN on its default
# config) and base-passthrough (its --passthrough), on devices made with
# BENCH_BASE_TUN_MODE (default "tun"); the table then adds the baseline's
# ratios (its b/a and b/c) beside this build's, so "not lower than before"
# is read off one run.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIME=5
RUNS=3
OUT=$ROOT/bench-results
ALL_TESTS=tcp1,tcp4,udp64,tcp1v6,udp4000
ALL_VARIANTS=kernel,tunfw,passthrough,tunfw-nooffload,tunfw-nat
VARIANTS=${BENCH_VARIANTS:-$ALL_VARIANTS}
TUN_MODE=${BENCH_TUN_MODE:-tun multi_queue}
TESTS=$ALL_TESTS
while [ $# -gt 0 ]; do
    case $1 in
    --time) TIME=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    *) echo "usage: $0 [--time SECS] [--runs N] [--out DIR] [--tests $ALL_TESTS]" >&2; exit 2 ;;
    esac
done
for t in ${TESTS//,/ }; do
    [[ ,$ALL_TESTS, == *,$t,* ]] || { echo "$0: no test $t (tests: $ALL_TESTS)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "scripts/bench.sh needs root" >&2; exit 2; }
for pair in iperf3:iperf3 iptables:iptables ip:iproute2; do
    command -v "${pair%%:*}" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pair#*:}" >/dev/null; }
done
TUNFW_BIN=${TUNFW_BIN:-$ROOT/target/release/tunfw}
[ -x "$TUNFW_BIN" ] || (cd "$ROOT" && cargo build --release --locked >/dev/null 2>&1) || exit 2
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
# shellcheck source=kernel-fw.sh
source "$ROOT/scripts/kernel-fw.sh"
BENCH_PREFIX=${BENCH_PREFIX:-tunfwb}
NC=$BENCH_PREFIX-client NF=$BENCH_PREFIX-fw NS=$BENCH_PREFIX-server
WORK=$(mktemp -d "/tmp/$BENCH_PREFIX.XXXXXX")
mkdir -p "$OUT"
TUNFW_PID='' IPERF_PID='' IPERF6_PID=''

down() {
    [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null && wait "$IPERF_PID" 2>/dev/null
    [ -n "$IPERF6_PID" ] && kill "$IPERF6_PID" 2>/dev/null && wait "$IPERF6_PID" 2>/dev/null
    [ -n "$TUNFW_PID" ] && kill "$TUNFW_PID" 2>/dev/null && wait "$TUNFW_PID" 2>/dev/null
    IPERF_PID='' IPERF6_PID='' TUNFW_PID=''
    ns_destroy $NC $NF $NS
}
trap 'down; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

namespaces() {
    down
    ns_create $NC $NF $NS
}

SERVER_IF=
setup() {
    namespaces || return 1
    case $1 in
    kernel)
        kernel_fw_up $NC $NF $NS && kernel_fw6_up $NC $NF $NS || return 1
        SERVER_IF=ps0
        ;;
    tunfw | passthrough | tunfw-nooffload | tunfw-nat | base | base-passthrough)
        local bin=$TUNFW_BIN mode=$TUN_MODE extra=()
        case $1 in base | base-passthrough)
            bin=${BENCH_BASE_BIN:?BENCH_BASE_BIN names the baseline binary}
            mode=${BENCH_BASE_TUN_MODE:-tun}
            ;;
        esac
        # shellcheck disable=SC2086 # the mode is words: "tun multi_queue"
        ip -n $NF tuntap add dev tb-lan mode $mode && ip -n $NF tuntap add dev tb-wan mode $mode || return 1
        [ "$1" = passthrough ] || [ "$1" = base-passthrough ] && extra=(--passthrough)
        [ "$1" = tunfw-nooffload ] && extra=(--offload off)
        if [ "$1" = tunfw-nat ]; then
            sed -e 's/router: (lan: None, wan: None, lan6: None, wan6: None)/router: (wan: "10.202.2.1")/' \
                -e 's/^    outbound: (/    nat: (source: [(out: Wan, to: Masquerade)]),\n    outbound: (/' \
                "$ROOT/config/default.ron" >"$WORK/nat.ron"
            grep -q Masquerade "$WORK/nat.ron" && "$TUNFW_BIN" --check --config "$WORK/nat.ron" >/dev/null || return 1
            extra=(--config "$WORK/nat.ron")
        fi
        ip netns exec $NF "$bin" --lan tb-lan --wan tb-wan --control "$WORK/control.sock" "${extra[@]}" \
            >"$WORK/tunfw-$1.log" 2>&1 &
        TUNFW_PID=$!
        wait_until "$bin" ctl --control "$WORK/control.sock" stats || { cat "$WORK/tunfw-$1.log" >&2; return 1; }
        ip -n $NF link set tb-lan netns $NC && ip -n $NF link set tb-wan netns $NS || return 1
        ip -n $NC addr add 10.202.1.2/24 dev tb-lan && ip -n $NC link set tb-lan up
        ip -n $NC route add 10.202.2.0/24 dev tb-lan
        ip -n $NS addr add 10.202.2.2/24 dev tb-wan && ip -n $NS link set tb-wan up
        # Masqueraded, the server answers the WAN address, on its own link.
        [ "$1" = tunfw-nat ] || ip -n $NS route add 10.202.1.0/24 dev tb-wan
        ip -n $NC addr add fd00:7f:1::2/64 dev tb-lan nodad && ip -n $NC -6 route add fd00:7f:2::/64 dev tb-lan
        ip -n $NS addr add fd00:7f:2::2/64 dev tb-wan nodad && ip -n $NS -6 route add fd00:7f:1::/64 dev tb-wan
        SERVER_IF=tb-wan
        ;;
    esac
    ip netns exec $NS iperf3 -s -B 10.202.2.2 >/dev/null 2>&1 &
    IPERF_PID=$!
    ip netns exec $NS iperf3 -s -B fd00:7f:2::2 -p 5202 >/dev/null 2>&1 &
    IPERF6_PID=$!
    wait_until eval "ip netns exec $NS ss -Hltn 'sport = :5201' | grep -q ." &&
        wait_until eval "ip netns exec $NS ss -Hltn 'sport = :5202' | grep -q ."
}

cpu_ticks() { [ -n "$TUNFW_PID" ] && awk '{ print $14 + $15 }' /proc/$TUNFW_PID/stat || echo 0; }
rx_packets() { ip netns exec $NS cat /sys/class/net/$SERVER_IF/statistics/rx_packets; }

# measure VARIANT TEST RUN ARGS...: one line
# "variant,test,run,gbps,pps,cpu%,lost%" (gbps as received; lost% UDP's, else empty);
# ARGS are iperf3's after -c (the server: 10.202.2.2, or "fd00:7f:2::2 -p
# 5202" for IPv6).
measure() {
    local variant=$1 test=$2 r=$3 c0 c1 p0 p1 t0 t1 json gbps lost
    shift 3
    c0=$(cpu_ticks) p0=$(rx_packets) t0=$(date +%s.%N)
    json=$(ip netns exec $NC iperf3 -c "$@" -t "$TIME" -J 2>/dev/null)
    t1=$(date +%s.%N) p1=$(rx_packets) c1=$(cpu_ticks)
    gbps=$(python3 -c 'import json,sys
d = json.loads(sys.stdin.read())
e = d.get("end", {})
s = e.get("sum_received") or e.get("sum") or {}
print(round(s.get("bits_per_second", 0) / 1e9, 3))' <<<"$json" 2>/dev/null || echo 0)
    lost=$(python3 -c 'import json,sys
e = json.loads(sys.stdin.read()).get("end", {})
s = e.get("sum_received") or e.get("sum") or {}
print("%.2f" % s["lost_percent"] if "lost_percent" in s else "")' <<<"$json" 2>/dev/null)
    python3 -c "
t = $t1 - $t0
print('$variant,$test,$r,$gbps,%d,%.1f,$lost' % (($p1 - $p0) / t, 100.0 * ($c1 - $c0) / $(getconf CLK_TCK) / t))"
}

CSV=$OUT/bench.csv
echo "variant,test,run,gbit_per_s,packets_per_s,tunfw_cpu_percent,lost_percent" >"$CSV"
# Runs are the outer loop: each run measures every variant in turn (set up
# afresh), so that a load that drifts on a shared machine spreads over all
# variants instead of skewing the one measured while it lasted.
for r in $(seq 1 "$RUNS"); do
    for variant in ${VARIANTS//,/ }; do
        setup $variant || { echo "setup of $variant failed" >&2; exit 2; }
        echo "== run $r: $variant" >&2
        for t in ${TESTS//,/ }; do
            case $t in
            tcp1) measure $variant tcp1 "$r" 10.202.2.2 ;;
            tcp4) measure $variant tcp4 "$r" 10.202.2.2 -P 4 ;;
            udp64) measure $variant udp64 "$r" 10.202.2.2 -u -b 0 -l 64 ;;
            tcp1v6) measure $variant tcp1v6 "$r" fd00:7f:2::2 -p 5202 ;;
            udp4000) measure $variant udp4000 "$r" 10.202.2.2 -u -b 0 -l 4000 ;;
            esac
        done >>"$CSV"
        down
    done
done

python3 - "$CSV" "$OUT/bench.svg" "$TIME" "$RUNS" "$TESTS" "$VARIANTS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
tests, variants = sys.argv[5].split(","), sys.argv[6].split(",")
def vals(v, t, k): return [float(r[k]) for r in rows if r["variant"] == v and r["test"] == t and r.get(k)]
def med(v, t, k):
    x = vals(v, t, k)
    return (statistics.median(x), min(x), max(x)) if x else (0, 0, 0)
print(f"tunfw benchmark: iperf3 {sys.argv[3]} s x {sys.argv[4]} runs, median (min-max)")
print(f"{'test':<7} {'variant':<16} {'Gbit/s':>22} {'packets/s':>26} {'tunfw CPU %':>12} {'UDP lost %':>18}")
for t in tests:
    for v in variants:
        g, p, c = med(v, t, "gbit_per_s"), med(v, t, "packets_per_s"), med(v, t, "tunfw_cpu_percent")
        cpu = "-" if v == "kernel" else f"{c[0]:.0f}"
        lost = f"{l[0]:.1f} ({l[1]:.1f}-{l[2]:.1f})" if vals(v, t, "lost_percent") and (l := med(v, t, "lost_percent")) else "-"
        print(f"{t:<7} {v:<16} {g[0]:>8.3f} ({g[1]:.3f}-{g[2]:.3f}) {p[0]:>10.0f} ({p[1]:.0f}-{p[2]:.0f}) {cpu:>12} {lost:>18}")
    g = {v: med(v, t, "gbit_per_s")[0] for v in variants}
    p = {v: med(v, t, "packets_per_s")[0] for v in variants}
    a, b, c, d, e = (g.get(v, 0) for v in ["kernel", "tunfw", "passthrough", "tunfw-nooffload", "tunfw-nat"])
    pb, pc = p.get("tunfw", 0), p.get("passthrough", 0)
    ratio = lambda x, y: f"{x / y:.2f}" if x and y else "-"
    print(f"{t:<7} ratios: b/a {ratio(b, a)} (Gbit/s), b/c {ratio(b, c)} (Gbit/s), b/c {ratio(pb, pc)} (packets/s), b/d {ratio(b, d)} (Gbit/s, offloads on/off), e/b {ratio(e, b)} (Gbit/s, masqueraded/not)")
    if "base" in variants:
        f, h = g.get("base", 0), g.get("base-passthrough", 0)
        pf, ph = p.get("base", 0), p.get("base-passthrough", 0)
        print(f"{t:<7} baseline ratios: b/a {ratio(f, a)} (Gbit/s), b/c {ratio(f, h)} (Gbit/s), b/c {ratio(pf, ph)} (packets/s); this build over the baseline {ratio(b, f)}")
# SVG: grouped bars of median Gbit/s (log scale is avoided; values are labelled).
W, H, pad = 720, 360, 60
colors = {"kernel": "#4c72b0", "tunfw": "#dd8452", "passthrough": "#55a868", "tunfw-nooffload": "#c44e52", "tunfw-nat": "#8172b2", "base": "#937860", "base-passthrough": "#da8bc3"}
mx = max([med(v, t, "gbit_per_s")[0] for v in variants for t in tests] + [0.001])
gw = (W - 2 * pad) / len(tests)
bw = gw / (len(variants) + 1)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">tunfw vs Linux forwarding (median Gbit/s, iperf3)</text>',
       f'<line x1="{pad}" y1="{H-pad}" x2="{W-pad}" y2="{H-pad}" stroke="black"/>']
for i, t in enumerate(tests):
    for j, v in enumerate(variants):
        g = med(v, t, "gbit_per_s")[0]
        h = (H - 2 * pad) * g / mx
        x = pad + i * gw + (j + 0.5) * bw
        out.append(f'<rect x="{x:.1f}" y="{H-pad-h:.1f}" width="{bw*0.9:.1f}" height="{h:.1f}" fill="{colors[v]}"/>')
        out.append(f'<text x="{x+bw*0.45:.1f}" y="{H-pad-h-4:.1f}" text-anchor="middle">{g:.2f}</text>')
    out.append(f'<text x="{pad+i*gw+gw/2:.1f}" y="{H-pad+18}" text-anchor="middle">{t}</text>')
for j, v in enumerate(variants):
    out.append(f'<rect x="{pad+j*130}" y="{H-22}" width="12" height="12" fill="{colors[v]}"/><text x="{pad+j*130+16}" y="{H-12}">{"tunfw --offload off" if v == "tunfw-nooffload" else v}</text>')
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out))
print(f"csv: {sys.argv[1]}  chart: {sys.argv[2]}")
PY
