#!/usr/bin/env bash
# Floods through and at tunfw, and what the other side keeps meanwhile.
#
#   scripts/stress.sh [--seconds S]       (as root; default 10 s per flood)
#
# Topology: scripts/netns.sh with its own prefix (namespaces tunfws-*,
# addresses 10.201.0.0/16 assigned inside them). Each flood is bounded in
# time and sent only inside these namespaces, with hping3 (installed when
# missing). Scenarios:
#   fwd-wan   the client opens a UDP flow; the server floods that flow's
#             reply tuple (ESTABLISHED: tunfw forwards every packet)
#   drop-wan  the server floods new UDP flows at the client (tunfw drops them)
#   fwd-lan   the client floods its own UDP flow towards the server
#   syn-limit conntrack.max 1024 and a SYN flood of new flows from the
#             client (to a port the server drops unanswered, so each stays
#             SYN_SENT): an established iperf3 TCP stream's throughput
#             before and during the flood (the share it keeps), new
#             connections made during it, early drops, ctl latency
# During each flood the script measures, from the other side: pings to
# the server (loss, RTT median and 99th percentile), `tunfw ctl stats`
# latency (median and worst of 20 calls), tunfw's CPU, and how late the
# expiry timer removes a UDP flow (5 s timeout) created before the flood.
# Prints one line per scenario. TUNFW_BIN selects the binary (to compare).
# Pings cross the flooded device one way or the other (a round trip uses
# both), so some are lost in that TUN device's ring before tunfw reads
# anything (the line gives the ring's tx_dropped: the pings' loss follows
# the flood's); what tunfw decides is how long the others wait.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_FLOOD=10
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_PER_FLOOD=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds S]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "$0 needs root" >&2; exit 2; }
for tool in hping3 iperf3; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null; }
done
export TOPO_PREFIX=tunfws
export TOPO_DIR
TOPO_DIR=$(mktemp -d /tmp/tunfws.XXXXXX)
# shellcheck source=netns.sh
source "$ROOT/scripts/netns.sh"
FLOOD_PID=
IPERF_PID=
cleanup() {
    [ -n "$FLOOD_PID" ] && kill "$FLOOD_PID" 2>/dev/null
    [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null
    topo_down
    rm -rf "$TOPO_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CONFIG=$TOPO_DIR/stress.ron
# The default rules, with a 5 s UDP unreplied timeout for the timer check.
sed 's/udp: (unreplied: 30, replied: 120)/udp: (unreplied: 5, replied: 120)/' \
    "$ROOT/config/default.ron" >"$CONFIG"

ctl_latency() {
    local i t0 t1 all=()
    for i in $(seq 20); do
        t0=$(date +%s%N)
        tunfw_ctl stats >/dev/null 2>&1 || { all+=(99999); continue; }
        t1=$(date +%s%N)
        all+=($(((t1 - t0) / 1000000)))
        sleep 0.1
    done
    printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR]=$1} END {printf "ctl ms median %d worst %d", a[int((NR+1)/2)], a[NR]}'
}

# queue_dropped NS DEV: packets TUN device DEV in namespace NS dropped on
# transmit (its ring towards tunfw was full: tunfw had not read them yet).
queue_dropped() {
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_dropped"
}

# run NAME FLOOD-NS FLOOD-ARGS...: one scenario.
run() {
    local name=$1 ns=$2
    shift 2
    topo_up >/dev/null && tunfw_start "$CONFIG" || { echo "$name: topology failed"; return 1; }
    # A flow the flood may refer to, and one whose expiry is watched.
    in_client python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.1.2", 40001)); s.sendto(b"x", ("10.201.2.2", 7003))'
    in_client python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.1.2", 40002)); s.sendto(b"t", ("10.201.2.2", 7004))'
    local t_flow
    t_flow=$(date +%s%N)
    # Watch, from now on, for the expiry timer to remove the watched flows
    # (5 s timeout): conntrack.expired moves. How late after the timeout?
    (
        for _ in $(seq 500); do
            if tunfw_ctl stats 2>/dev/null | awk '$1=="conntrack.expired" && $2 > 0 {f=1} END {exit !f}'; then
                echo $((($(date +%s%N) - t_flow) / 1000000 - 5000)) >"$TOPO_DIR/late"
                exit 0
            fi
            sleep 0.02
        done
        echo never >"$TOPO_DIR/late"
    ) &
    local watcher=$!
    ip netns exec "$ns" timeout "$SECONDS_PER_FLOOD" hping3 -q "$@" >/dev/null 2>&1 &
    FLOOD_PID=$!
    sleep 1
    local cpu0 cpu1 dev=tfw-lan
    [ "$ns" = "$NS_SERVER" ] && dev=tfw-wan
    cpu0=$(awk '{print $14 + $15}' "/proc/$TUNFW_PID/stat")
    local pings
    pings=$(in_client ping -q -i 0.01 -c 200 -W 1 "$SERVER_IP" 2>&1 | tail -2)
    local ctl
    ctl=$(ctl_latency)
    wait "$watcher"
    local gone_ms
    gone_ms=$(cat "$TOPO_DIR/late")
    cpu1=$(awk '{print $14 + $15}' "/proc/$TUNFW_PID/stat")
    wait "$FLOOD_PID" 2>/dev/null
    FLOOD_PID=
    local loss rtt fwd
    loss=$(grep -o '[0-9.]*% packet loss' <<<"$pings")
    rtt=$(grep -o 'rtt.*' <<<"$pings" | cut -d' ' -f4)
    fwd=$(tunfw_ctl stats | awk '$1=="forwarded.lan"||$1=="forwarded.wan"||$1=="drop.total"{printf "%s=%s ", $1, $2}')
    echo "$name: pings ${loss:-?} rtt min/avg/max/mdev ${rtt:-?} ms; $ctl; expiry late by ${gone_ms} ms; tunfw cpu $((cpu1 - cpu0)) ticks; dropped in the flooded device's kernel queue $(queue_dropped "$ns" "$dev"); $fwd"
    tunfw_stop
}

run fwd-wan "$NS_SERVER" --udp --flood -s 7003 -k -p 40001 -d 100 "$CLIENT_IP"
run drop-wan "$NS_SERVER" --udp --flood --rand-source -p 9999 -d 100 "$CLIENT_IP"
run fwd-lan "$NS_CLIENT" --udp --flood -s 40001 -k -p 7003 -d 100 "$SERVER_IP"

# iperf3_gbits SECONDS: one client-to-server iperf3 TCP stream; Gbit/s.
iperf3_gbits() {
    in_client iperf3 -c "$SERVER_IP" -t "$1" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
}

syn_limit() {
    local cfg=$TOPO_DIR/small-table.ron before during ok=0 i early0
    sed 's/max: 65536,/max: 1024,/' "$CONFIG" >"$cfg"
    topo_up >/dev/null && tunfw_start "$cfg" || { echo "syn-limit: topology failed"; return 1; }
    in_server iptables -I INPUT -p tcp --dport 9 -j DROP
    in_server iperf3 -s -B "$SERVER_IP" >/dev/null 2>&1 &
    IPERF_PID=$!
    sleep 1
    before=$(iperf3_gbits 4)
    early0=$(tunfw_ctl stats | awk '$1=="conntrack.early_drop"{print $2}')
    ip netns exec "$NS_CLIENT" timeout "$SECONDS_PER_FLOOD" hping3 -q -S --flood -p 9 "$SERVER_IP" >/dev/null 2>&1 &
    FLOOD_PID=$!
    sleep 1
    during=$(iperf3_gbits $((SECONDS_PER_FLOOD - 4 > 2 ? SECONDS_PER_FLOOD - 4 : 2)))
    for i in $(seq 10); do
        in_client timeout 2 bash -c "exec 3<>/dev/tcp/$SERVER_IP/5201" 2>/dev/null && ok=$((ok + 1))
    done
    local ctl
    ctl=$(ctl_latency)
    wait "$FLOOD_PID" 2>/dev/null
    FLOOD_PID=
    local stats
    stats=$(tunfw_ctl stats | awk -v e0="$early0" '$1=="conntrack.early_drop"{e=$2 - e0} $1=="conntrack.table_full"{f=$2} $1=="conntrack.count"{c=$2} END {printf "early drops %d, table full %d, count %d", e, f, c}')
    echo "syn-limit: established iperf3 ${before:-?} Gbit/s before, ${during:-?} Gbit/s during the flood (share $(python3 -c "print('%.0f%%' % (100 * float('${during:-0}') / max(float('${before:-0}'), 1e-9)))")); new TCP connections during it $ok/10; $ctl; $stats"
    kill "$IPERF_PID" 2>/dev/null
    IPERF_PID=
    tunfw_stop
}
syn_limit
