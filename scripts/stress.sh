#!/usr/bin/env bash
# Floods and hostile clients at tunfw, and what the other traffic keeps
# meanwhile, with figures.
#
#   scripts/stress.sh [--seconds S | --long] [SCENARIO...]   (as root)
#
# Each scenario runs S seconds (default 10; --long: 120); with SCENARIO
# names only those. Topology: scripts/netns.sh with its own prefix
# (namespaces tunfws-*, addresses 10.201.0.0/16 assigned inside them).
# Every flood is bounded in time (hping3 under `timeout`) and sent only
# inside these namespaces; hping3 and iperf3 are installed when missing.
# Scenarios:
#   fwd-wan          the server floods the reply tuple of a client's UDP
#                    flow (ESTABLISHED: tunfw forwards every packet)
#   drop-wan         the server floods new UDP flows from random sources
#                    at the client (the inbound policy drops them)
#   fwd-lan          the client floods its own UDP flow to the server
#   drop-lan         the client floods SYN+FIN segments (INVALID, dropped)
#   syn-limit        conntrack.max 1024 and a SYN flood of new flows from
#                    the client to a port the server drops unanswered (each
#                    stays SYN_SENT until early drop evicts it)
#   control-clients  2000 idle control connections held, and connect/close
#                    churn, for the whole scenario
#   slow-events      an events subscriber that stops reading while UDP
#                    flows are made at full speed, then reads again
#   reload-storm     `ctl reload` in a loop
#   hostile-configs  `ctl reload` of /dev/zero, a FIFO, a directory and a
#                    2 MiB file, in a loop
# During each, from the other side: an iperf3 TCP stream client -> server
# (Gbit/s, and the share of the same stream measured just before), pings
# every 10 ms (loss, RTT p50/p99/max), `tunfw ctl stats` every 100 ms
# (median, p99, worst ms), tunfw's CPU (% of one core) and RSS (before and
# highest), how late the expiry timer removes a UDP flow with a 5 s
# timeout made at the start (in syn-limit early drop may take it first),
# and the flooded device's ring drops. One
# line per scenario. TUNFW_BIN selects the binary (to compare two).
# Pings cross the flooded device one way or the other, so some are lost in
# that TUN device's ring before tunfw reads anything (its tx_dropped).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=10
ONLY=()
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --long) SECS=120; shift ;;
    -*) echo "usage: $0 [--seconds S | --long] [SCENARIO...]" >&2; exit 2 ;;
    *) ONLY+=("$1"); shift ;;
    esac
done
[ "$SECS" -ge 6 ] 2>/dev/null || { echo "$0: --seconds must be at least 6" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0 needs root" >&2; exit 2; }
for tool in hping3 iperf3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null; }
done
export TOPO_PREFIX=tunfws
export TOPO_DIR
TOPO_DIR=$(mktemp -d /tmp/tunfws.XXXXXX)
# shellcheck source=netns.sh
source "$ROOT/scripts/netns.sh"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    topo_down
    rm -rf "$TOPO_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bgp() {
    "$@" &
    PIDS+=($!)
}

CONFIG=$TOPO_DIR/stress.ron
# The default rules, with a 5 s UDP unreplied timeout for the timer check.
sed 's/udp: (unreplied: 30, replied: 120)/udp: (unreplied: 5, replied: 120)/' \
    "$ROOT/config/default.ron" >"$CONFIG"
SMALL=$TOPO_DIR/small-table.ron
sed 's/max: 65536,/max: 1024,/' "$CONFIG" >"$SMALL"

stat_of() { tunfw_ctl stats | awk -v n="$1" '$1 == n { print $2 }'; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$TUNFW_PID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$TUNFW_PID/stat"; }

# percentiles FILE: "p50 X p99 Y max Z" of the numbers in FILE, one a line.
percentiles() {
    sort -n "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) { print "none"; exit }
        printf "p50 %s p99 %s max %s", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.999)], a[NR] }'
}

# iperf3_gbits SECONDS: one client -> server iperf3 TCP stream; Gbit/s.
iperf3_gbits() {
    in_client iperf3 -c "$SERVER_IP" -t "$1" -J 2>/dev/null |
        python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("0")'
}

# ctl_loop SECONDS OUT: `ctl stats` every 100 ms; each call's ms to OUT
# (99999 for a call that failed or took over 5 s).
ctl_loop() {
    local end=$((SECONDS + $1)) t0 t1
    while [ $SECONDS -lt $end ]; do
        t0=$(date +%s%N)
        if timeout 5 "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" stats >/dev/null 2>&1; then
            t1=$(date +%s%N)
            echo $(((t1 - t0) / 1000000)) >>"$2"
        else
            echo 99999 >>"$2"
        fi
        sleep 0.1
    done
}

# measure NAME DEV-NS DEV: the figures of one scenario, while whatever it
# started runs for SECS seconds. Starts the expiry watch, the iperf3
# baseline first (3 s, before the load: the caller starts the load with
# LOAD_CMD after it), then iperf3, pings, ctl calls and RSS samples in
# parallel.
measure() {
    local name=$1 dev_ns=$2 dev=$3 t_flow base during cpu0 cpu1 rss0 rss_max r
    local pings=$TOPO_DIR/pings ctl=$TOPO_DIR/ctl
    rm -f "$pings" "$ctl" "$TOPO_DIR/late"
    in_server iperf3 -s -B "$SERVER_IP" -D -I "$TOPO_DIR/iperf3.pid" >/dev/null 2>&1
    wait_until test -s "$TOPO_DIR/iperf3.pid"
    wait_until eval "ip netns exec $NS_SERVER ss -Hltn 'sport = :5201' | grep -q ."
    base=$(iperf3_gbits 3)
    local drops0
    drops0=$(ip netns exec "$dev_ns" cat "/sys/class/net/$dev/statistics/tx_dropped")
    # A flow whose expiry (5 s) is watched.
    in_client python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.1.2", 40002)); s.sendto(b"t", ("10.201.2.2", 7004))'
    t_flow=$(date +%s%N)
    # Matched by its whole tuple: a load's flows may use port 40002 too
    # (slow-events sweeps the server's ports: its flows to server port 40002
    # kept a `--port 40002` match alive for the whole scenario).
    local watched='udp 10.201.1.2:40002 -> 10.201.2.2:7004 '
    wait_until eval "tunfw_ctl flows --port 40002 | grep -qF '$watched'"
    (
        for _ in $(seq $((SECS * 50 + 500))); do
            if ! tunfw_ctl flows --port 40002 | grep -qF "$watched"; then
                echo $((($(date +%s%N) - t_flow) / 1000000 - 5000)) >"$TOPO_DIR/late"
                exit 0
            fi
            sleep 0.02
        done
    ) &
    local watcher=$!
    rss0=$(rss_kb)
    cpu0=$(cpu_ticks)
    eval "$LOAD_CMD"
    sleep 1
    local run=$((SECS - 2))
    in_client iperf3 -c "$SERVER_IP" -t "$run" -J >"$TOPO_DIR/iperf3.json" 2>/dev/null &
    local ip=$!
    in_client ping -i 0.01 -c $((run * 100)) -W 1 "$SERVER_IP" 2>/dev/null |
        sed -n 's/.*time=\([0-9.]*\) ms/\1/p' >"$pings" &
    local pp=$!
    ctl_loop "$run" "$ctl" &
    local cp=$!
    rss_max=$rss0
    while kill -0 $ip 2>/dev/null; do
        r=$(rss_kb)
        [ "${r:-0}" -gt "$rss_max" ] && rss_max=$r
        sleep 0.5
    done
    wait $ip $pp $cp
    cpu1=$(cpu_ticks)
    during=$(python3 -c 'import json,sys
try: print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("0")' "$TOPO_DIR/iperf3.json")
    eval "$STOP_CMD"
    wait $watcher 2>/dev/null
    kill "$(cat "$TOPO_DIR/iperf3.pid")" 2>/dev/null
    local answered=$(wc -l <"$pings") sent=$((run * 100))
    local drops1
    drops1=$(ip netns exec "$dev_ns" cat "/sys/class/net/$dev/statistics/tx_dropped")
    printf '%s: iperf3 %s of %s Gbit/s (%s%%); pings %d/%d lost, RTT ms %s; ctl ms %s; expiry late %s ms; cpu %d%%; RSS %d -> max %d KiB; ring drops %d%s\n' \
        "$name" "$during" "$base" "$(python3 -c "print(round(100 * $during / max($base, 1e-9)))")" \
        $((sent - answered)) $sent "$(percentiles "$pings")" "$(percentiles "$ctl")" \
        "$(cat "$TOPO_DIR/late" 2>/dev/null || echo never)" \
        $(((cpu1 - cpu0) * 100 / $(getconf CLK_TCK) / (run + 1))) "$rss0" "$rss_max" \
        $((drops1 - drops0)) "${EXTRA:-}"
}

# flood NS HPING-ARGS...: LOAD_CMD/STOP_CMD for a bounded hping3 flood.
flood() {
    local ns=$1
    shift
    LOAD_CMD="ip netns exec $ns timeout $SECS hping3 -q $* >/dev/null 2>&1 & LOAD_PID=\$!; PIDS+=(\$LOAD_PID)"
    STOP_CMD="kill \$LOAD_PID 2>/dev/null; wait \$LOAD_PID 2>/dev/null"
}

start() {
    topo_up >/dev/null && tunfw_start "$1" || { echo "topology or tunfw failed" >&2; exit 1; }
}

scenario() {
    local name=$1
    [ ${#ONLY[@]} = 0 ] || printf '%s\n' "${ONLY[@]}" | grep -qx "$name" || return 0
    EXTRA=
    case $name in
    fwd-wan)
        start "$CONFIG"
        in_client python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.1.2", 40001)); s.sendto(b"x", ("10.201.2.2", 7003))'
        flood "$NS_SERVER" --udp --flood -s 7003 -k -p 40001 -d 100 "$CLIENT_IP"
        measure "$name" "$NS_SERVER" tfw-wan ;;
    drop-wan)
        start "$CONFIG"
        flood "$NS_SERVER" --udp --flood --rand-source -p 9999 -d 100 "$CLIENT_IP"
        measure "$name" "$NS_SERVER" tfw-wan ;;
    fwd-lan)
        start "$CONFIG"
        flood "$NS_CLIENT" --udp --flood -s 40001 -k -p 7003 -d 100 "$SERVER_IP"
        measure "$name" "$NS_CLIENT" tfw-lan ;;
    drop-lan)
        start "$CONFIG"
        flood "$NS_CLIENT" -S -F --flood -p 8080 "$SERVER_IP"
        measure "$name" "$NS_CLIENT" tfw-lan ;;
    syn-limit)
        start "$SMALL"
        in_server iptables -I INPUT -p tcp --dport 9 -j DROP
        flood "$NS_CLIENT" -S --flood -p 9 "$SERVER_IP"
        local early0
        early0=$(stat_of conntrack.early_drop)
        measure "$name" "$NS_CLIENT" tfw-lan
        local ok=0 i
        EXTRA="; early drops $(($(stat_of conntrack.early_drop) - early0)), table_full $(stat_of conntrack.table_full), count $(stat_of conntrack.count)"
        echo "  ($name$EXTRA)"
        in_server iptables -D INPUT -p tcp --dport 9 -j DROP ;;
    control-clients)
        start "$CONFIG"
        LOAD_CMD='bgp python3 -c "
import socket, sys, time
held = []
for _ in range(2000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1]); held.append(s)
    except OSError:
        s.close()
time.sleep(int(sys.argv[2]))
" "$TUNFW_CONTROL" $SECS; bgp python3 -c "
import socket, sys, time
end = time.time() + int(sys.argv[2])
while time.time() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError:
        pass
    s.close()
" "$TUNFW_CONTROL" $SECS'
        STOP_CMD='kill "${PIDS[@]: -2}" 2>/dev/null'
        measure "$name" "$NS_SERVER" tfw-wan
        echo "  ($name: control.evicted $(stat_of control.evicted), closed_idle $(stat_of control.closed_idle), refused $(stat_of control.refused), accepted $(stat_of control.accepted))" ;;
    slow-events)
        start "$CONFIG"
        LOAD_CMD='bgp python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1]); s.sendall(b\"events\n\")
time.sleep(int(sys.argv[2]) / 2)
f = s.makefile(\"rb\"); n = 0; lost = []
end = time.time() + int(sys.argv[2]) / 2
s.settimeout(1)
try:
    for line in f:
        n += 1
        if b\"LOST\" in line: lost.append(line.strip().decode())
        if time.time() > end: break
except OSError:
    pass
open(sys.argv[3], \"w\").write(\"%d events read, %s\" % (n, lost[:3]))
" "$TUNFW_CONTROL" $SECS "$TOPO_DIR/events.out"; bgp ip netns exec "$NS_CLIENT" python3 -c "
import socket, sys, time
end = time.time() + int(sys.argv[2]) - 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
p = 1024
while time.time() < end:
    s.sendto(b\"e\", (sys.argv[1], p)); p = p + 1 if p < 65000 else 1024
    if p % 500 == 0: time.sleep(0.001)
" "$SERVER_IP" $SECS'
        STOP_CMD='wait "${PIDS[@]: -2}" 2>/dev/null'
        measure "$name" "$NS_CLIENT" tfw-lan
        echo "  ($name: $(cat "$TOPO_DIR/events.out" 2>/dev/null); control.events_lost $(stat_of control.events_lost))" ;;
    reload-storm)
        start "$CONFIG"
        LOAD_CMD='bgp bash -c "end=\$((SECONDS + $SECS)); n=0; f=0; while [ \$SECONDS -lt \$end ]; do \"$TUNFW_BIN\" ctl --control \"$TUNFW_CONTROL\" reload >/dev/null 2>&1 && n=\$((n + 1)) || f=\$((f + 1)); done; echo \"\$n reloads, \$f failed\" >\"$TOPO_DIR/reloads\""'
        STOP_CMD='wait "${PIDS[@]: -1}" 2>/dev/null'
        measure "$name" "$NS_SERVER" tfw-wan
        echo "  ($name: $(cat "$TOPO_DIR/reloads" 2>/dev/null))" ;;
    hostile-configs)
        start "$CONFIG"
        mkfifo "$TOPO_DIR/fifo"
        head -c 2097152 /dev/urandom >"$TOPO_DIR/big.ron"
        LOAD_CMD='bgp bash -c "end=\$((SECONDS + $SECS)); n=0; bad=0; while [ \$SECONDS -lt \$end ]; do for f in /dev/zero \"$TOPO_DIR/fifo\" \"$TOPO_DIR\" \"$TOPO_DIR/big.ron\"; do timeout 5 \"$TUNFW_BIN\" ctl --control \"$TUNFW_CONTROL\" reload \"\$f\" >/dev/null 2>&1; [ \$? = 1 ] || bad=\$((bad + 1)); n=\$((n + 1)); done; done; echo \"\$n hostile reloads refused, \$bad not refused with exit 1\" >\"$TOPO_DIR/hostile\""'
        STOP_CMD='wait "${PIDS[@]: -1}" 2>/dev/null'
        measure "$name" "$NS_SERVER" tfw-wan
        echo "  ($name: $(cat "$TOPO_DIR/hostile" 2>/dev/null))" ;;
    esac
    tunfw_stop
}

for s in fwd-wan drop-wan fwd-lan drop-lan syn-limit control-clients slow-events reload-storm hostile-configs; do
    scenario "$s"
done
