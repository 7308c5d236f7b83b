# Stress checks of the netns suite (sourced by run.sh): floods through and
# at tunfw from each side, a SYN flood at the table limit, hostile control
# clients, a reload storm and hostile config files. Each flood is bounded
# (hping3 under `timeout`, killed by pid once measured) and sent only to
# the suite's own addresses. During each, the other traffic must be served:
# a 1 MiB download completes with its sha256, pings are answered, `tunfw
# ctl` answers; and tunfw's counters show the flood crossed (or was
# dropped by) tunfw. The long form with figures is scripts/stress.sh.

STRESS_PINGS=40

# served_meanwhile: what the other side keeps while a flood runs: a 1 MiB
# download (sha256), STRESS_PINGS pings at 50 ms (at least half answered:
# the flooded device's ring loses some of them before tunfw reads; see
# README "Running tunfw"),
# three `ctl stats` calls (each within 1 s). Prints the figures.
served_meanwhile() {
    local t0 t1 worst out want got replies avg
    rm -f "$TOPO_DIR/stress.blob"
    t0=$(date +%s%N)
    in_client curl -sS --max-time 30 -o "$TOPO_DIR/stress.blob" http://$SERVER_IP:8080/blob ||
        { note "download failed during the flood"; return 1; }
    t1=$(date +%s%N)
    want=$(sha256sum <"$TOPO_DIR/www/blob" | cut -d' ' -f1)
    got=$(sha256sum <"$TOPO_DIR/stress.blob" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "download sha256 mismatch"; return 1; }
    local dl_ms=$(((t1 - t0) / 1000000))
    out=$(in_client ping -q -i 0.05 -c $STRESS_PINGS -W 1 $SERVER_IP 2>&1)
    worst=$(ctl_worst_ms 3) || return 1
    replies=$(grep -o '[0-9]* received' <<<"$out" | cut -d' ' -f1)
    avg=$(grep -o 'rtt [^=]*= [0-9./]*' <<<"$out" | cut -d/ -f5)
    note "meanwhile: 1 MiB in $dl_ms ms (sha256 ok), ${replies:-0}/$STRESS_PINGS pings (avg ${avg:-?} ms), ctl worst $worst ms"
    [ "${replies:-0}" -ge $((STRESS_PINGS / 2)) ] && [ $worst -lt 1000 ]
}

# flood_check COUNTER MIN NS HPING-ARGS...: start a 10 s hping3 flood in
# NS, wait until tunfw's COUNTER grew by MIN (the flood crosses or is
# dropped by tunfw at full rate), check what is served meanwhile, stop it.
flood_check() {
    local counter=$1 min=$2 ns=$3 before pid rc=0
    shift 3
    before=$(ctr "$counter")
    ip netns exec "$ns" timeout 10 hping3 -q "$@" >/dev/null 2>&1 &
    pid=$!
    if wait_grew "$counter" $((before + min)); then
        served_meanwhile || rc=1
    else
        note "the flood did not reach tunfw"
        rc=1
    fi
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    note "$counter grew by $(($(ctr "$counter") - before))"
    return $rc
}

# Each forwarded flood is on a flow of another of its device's queues than
# the client's pings (apart_port, run.sh).
t_stress_forwarded_flood_from_wan() {
    local p
    p=$(apart_port wan 40021 7023) || { note "no flow to flood"; return 1; }
    flood_check forwarded.wan 100000 "$NS_SERVER" --udp --flood -s "$p" -k -p 40021 -d 100 "$CLIENT_IP"
}

t_stress_forwarded_flood_from_lan() {
    local p
    p=$(apart_port lan 7024 40022) || { note "no flow to flood"; return 1; }
    flood_check forwarded.lan 100000 "$NS_CLIENT" --udp --flood -s "$p" -k -p 7024 -d 100 "$SERVER_IP"
}

# New UDP flows from random sources at the client: the inbound policy drops them.
t_stress_dropped_flood_from_wan() {
    flood_check drop.policy_inbound 100000 "$NS_SERVER" --udp --flood --rand-source -p 9999 -d 100 "$CLIENT_IP"
}

# SYN+FIN segments from the client: INVALID (no TCP state takes them), dropped.
t_stress_dropped_flood_from_lan() {
    flood_check invalid.total 100000 "$NS_CLIENT" -S -F --flood -p 8080 "$SERVER_IP"
}

# conntrack.max 1024 and a SYN flood of new flows from the LAN (to a closed
# port, each from a new source port): an established, assured download
# started before the flood finishes with its sha256 and its flow is never
# the one evicted (early drop takes unassured flows only); the table stays
# at its maximum; `ctl` answers. Also reports how many of 10 new
# connections made during the flood succeed.
t_stress_syn_flood_at_table_limit() {
    local cfg="$TOPO_DIR/small-table.ron" out="$TOPO_DIR/slow.blob" dl pid early want got ok=0 i rc=0
    sed 's/max: 65536,/max: 1024,/' "$ROOT/config/default.ron" >"$cfg"
    grep -q 'max: 1024,' "$cfg" || { note "could not derive the config"; return 1; }
    tunfw_start "$cfg" || { note "tunfw did not start"; return 1; }
    [ -s "$TOPO_DIR/www/big4" ] || head -c 4194304 /dev/urandom >"$TOPO_DIR/www/big4"
    slow_download big4 1M "$out" || return 1
    dl=$DOWNLOAD_PID
    early=$(ctr conntrack.early_drop)
    # The server drops these SYNs unanswered (a RST as the only reply would
    # end each flow at once, as in Linux), so each stays SYN_SENT.
    in_server iptables -I INPUT -p tcp --dport 9 -j DROP || { note "iptables failed"; kill $dl; return 1; }
    ip netns exec "$NS_CLIENT" timeout 10 hping3 -q -S --flood -p 9 "$SERVER_IP" >/dev/null 2>&1 &
    pid=$!
    wait_grew conntrack.early_drop $((early + 5000)) || rc=1
    [ "$(ctr conntrack.count)" = 1024 ] || { note "conntrack.count $(ctr conntrack.count), not at the maximum"; rc=1; }
    for i in $(seq 10); do
        in_client curl -sS --max-time 2 -o /dev/null http://$SERVER_IP:8080/blob 2>/dev/null && ok=$((ok + 1))
    done
    local ctl_ms
    ctl_ms=$(ctl_worst_ms 3) || rc=1
    wait $dl || { note "the assured download died in the flood"; rc=1; }
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    in_server iptables -D INPUT -p tcp --dport 9 -j DROP
    want=$(sha256sum <"$TOPO_DIR/www/big4" | cut -d' ' -f1)
    got=$(sha256sum <"$out" 2>/dev/null | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "download sha256 mismatch"; rc=1; }
    note "early drops $(($(ctr conntrack.early_drop) - early)), table_full $(ctr conntrack.table_full); new connections during the flood: $ok/10; ctl worst ${ctl_ms:-?} ms"
    tunfw_start "" || rc=1
    return $rc
}

# 200 idle control connections held open and a connect/close churn: every
# `tunfw ctl stats` still answers within 1 s; idle ones are evicted. The
# clients run under ip netns exec itself, not in_fw: ip execs python, so the
# pids kill reaches are theirs (behind a shell function $! is a subshell's,
# and the churn outlived the check, keeping the next tunfw busy: the idle
# check after this suite saw 90 ticks in 2 s).
t_stress_idle_and_churning_control_clients() {
    local evicted before worst=99999 holder churn rc=0
    before=$(ctr control.evicted)
    ip netns exec "$NS_FW" python3 -c '
import socket, sys, time
held = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
        held.append(s)
    except OSError:
        s.close()
time.sleep(30)
' "$TUNFW_CONTROL" &
    holder=$!
    ip netns exec "$NS_FW" python3 -c '
import socket, sys, time
end = time.time() + 30
while time.time() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError:
        pass
    s.close()
' "$TUNFW_CONTROL" &
    churn=$!
    wait_grew control.evicted "$before" || rc=1
    worst=$(ctl_worst_ms 5) || rc=1
    kill $holder $churn 2>/dev/null
    wait $holder $churn 2>/dev/null
    evicted=$(($(ctr control.evicted) - before))
    note "5/5 ctl calls, worst $worst ms, while 200 idle clients were held and others churned; $evicted evicted"
    [ $rc = 0 ] && [ "${worst:-99999}" -lt 1000 ]
}

# An events subscriber that stops reading while UDP flows are made (until
# its backlog overflows):
# once it reads again it is told how many events it lost, then gets new ones.
t_stress_slow_events_reader() {
    local got="$TOPO_DIR/events.slow" reader lost
    rm -f "$got" "$got.ready" "$got.go"
    ip netns exec "$NS_FW" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"events\n")
open(sys.argv[2] + ".ready", "w").close()
while not __import__("os").path.exists(sys.argv[2] + ".go"):
    time.sleep(0.05)
f = s.makefile("rb")
out = open(sys.argv[2], "wb")
end = time.time() + 20
seen_lost = False
for line in f:
    out.write(line)
    out.flush()
    if b"LOST" in line:
        seen_lost = True
    elif seen_lost:
        break
    if time.time() > end:
        break
' "$TUNFW_CONTROL" "$got" &
    reader=$!
    wait_until test -e "$got.ready" || { note "subscriber did not start"; kill $reader; return 1; }
    # New flows in batches of 4,000 (each batch from a new source port)
    # until tunfw counts events lost for the stalled subscriber.
    local lost0 batch
    lost0=$(ctr control.events_lost)
    for batch in $(seq 10); do
        in_client python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(20000, 24000):
    s.sendto(b"e", (sys.argv[1], port))
' "$SERVER_IP"
        grew control.events_lost "$lost0" && break
    done
    grew control.events_lost "$lost0" || { note "no events lost after 40,000 flows"; kill $reader; return 1; }
    touch "$got.go"
    # The LOST line goes out ahead of the next event once the subscriber has
    # caught up: new flows, ten at a time, until it reads LOST and one more
# event (a NEW of these, or a DESTROY of an older flow).
    local port=41000
    while kill -0 $reader 2>/dev/null && [ $port -lt 45000 ]; do
        in_client python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(int(sys.argv[2]), int(sys.argv[2]) + 10):
    s.sendto(b"e", (sys.argv[1], port))
' "$SERVER_IP" $port
        port=$((port + 10))
        sleep 0.1
    done
    kill $reader 2>/dev/null
    wait $reader 2>/dev/null
    # The 4,000-40,000 one-way UDP flows made here would only slow the
    # later checks' `ctl flows` calls.
    tunfw_ctl flush >/dev/null
    lost=$(grep -o '"lost":[0-9]*' "$got" | head -1)
    note "subscriber told ${lost:-nothing}; $(sed -n '/LOST/,$p' "$got" | tail -n +2 | wc -l) events after it"
    [ -n "$lost" ] && [ "$(sed -n '/LOST/,$p' "$got" | tail -n +2 | grep -c '"event":')" -ge 1 ]
}

# 100 reloads (`ctl reload`) during a 4 MiB download at 1 MiB/s: it
# finishes with its sha256 and its flow is never lost.
t_stress_reload_storm() {
    local out="$TOPO_DIR/storm.blob" dl i fails=0 want got
    [ -s "$TOPO_DIR/www/big4" ] || head -c 4194304 /dev/urandom >"$TOPO_DIR/www/big4"
    slow_download big4 1M "$out" || return 1
    dl=$DOWNLOAD_PID
    for i in $(seq 100); do
        tunfw_ctl reload >/dev/null 2>&1 || fails=$((fails + 1))
    done
    wait $dl || { note "the download died in the reload storm"; return 1; }
    want=$(sha256sum <"$TOPO_DIR/www/big4" | cut -d' ' -f1)
    got=$(sha256sum <"$out" | cut -d' ' -f1)
    note "100 reloads during the download, $fails failed"
    [ $fails = 0 ] && [ "$want" = "$got" ]
}

# Config files that would block or exhaust a reader: refused at once by
# `ctl reload` and `--check`, and tunfw keeps forwarding.
t_stress_hostile_config_files() {
    local fifo="$TOPO_DIR/config.fifo" rc f t0 t1 worst=0
    mkfifo "$fifo"
    for f in /dev/zero "$fifo" "$TOPO_DIR"; do
        t0=$(date +%s%N)
        rc=0
        timeout 5 "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" reload "$f" >/dev/null 2>&1 || rc=$?
        [ $rc = 1 ] || { note "ctl reload $f: exit $rc"; return 1; }
        rc=0
        timeout 5 "$TUNFW_BIN" --check --config "$f" >/dev/null 2>&1 || rc=$?
        [ $rc = 2 ] || { note "--check $f: exit $rc"; return 1; }
        t1=$(date +%s%N)
        [ $(((t1 - t0) / 1000000)) -gt $worst ] && worst=$(((t1 - t0) / 1000000))
    done
    rm -f "$fifo"
    note "/dev/zero, a FIFO and a directory refused (slowest pair of calls $worst ms)"
    in_client ping -c 1 -W 2 $SERVER_IP >/dev/null || { note "forwarding stopped"; return 1; }
}

# A full default table listed: a UDP flood of new flows from the client
# (hping3 counts its source port up) fills the 65,536 flows (early drop
# keeps it full); then `tunfw ctl flows` while the client pings every 10 ms.
# The listing names every flow, and the pings keep their pace: the answer
# is written over many turns of the loop, a bounded step each (built in one
# turn, 65,536 flows held the packet path about 0.4 s).
STRESS_LISTING_FLOWS=65536
STRESS_LISTING_RTT_MS=150
t_stress_full_table_listing() {
    local pid ppid out n t0 t1 rc=0 max_rtt rx
    ip netns exec "$NS_CLIENT" timeout 20 hping3 -q -2 --flood -s 1024 -p 9 "$SERVER_IP" >/dev/null 2>&1 &
    pid=$!
    wait_until eval '[ "$(ctr conntrack.count)" = $STRESS_LISTING_FLOWS ]' || { note "table at $(ctr conntrack.count) flows"; rc=1; }
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $rc = 0 ] || return 1
    in_client ping -q -i 0.01 -c 300 -W 1 $SERVER_IP >"$TOPO_DIR/listing.ping" 2>&1 &
    ppid=$!
    t0=$(date +%s%N)
    out=$(timeout 30 "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" flows | tail -1) || rc=1
    t1=$(date +%s%N)
    wait $ppid
    n=${out% flows}
    rx=$(grep -o '[0-9]* received' "$TOPO_DIR/listing.ping" | cut -d' ' -f1)
    max_rtt=$(grep -o 'rtt [^=]*= [0-9./]*' "$TOPO_DIR/listing.ping" | cut -d/ -f6)
    note "ctl flows: $out in $(((t1 - t0) / 1000000)) ms; meanwhile ${rx:-0}/300 pings at 10 ms, worst RTT ${max_rtt:-?} ms"
    tunfw_ctl flush >/dev/null
    [ "${n:-0}" -ge $((STRESS_LISTING_FLOWS - 1000)) ] || { note "the listing named ${n:-0} flows"; rc=1; }
    [ "${rx:-0}" -ge 290 ] || { note "pings lost"; rc=1; }
    awk -v a="${max_rtt:-9999}" -v m=$STRESS_LISTING_RTT_MS 'BEGIN { exit !(a < m) }' ||
        { note "worst RTT not under $STRESS_LISTING_RTT_MS ms"; rc=1; }
    return $rc
}

stress_suite() {
    echo "== stress (floods, the table limit, hostile control clients and configs)"
    tunfw_start "" || { FAILED=$((FAILED + 1)); echo "FAIL stress_start"; return; }
    check stress_forwarded_flood_from_wan t_stress_forwarded_flood_from_wan
    check stress_forwarded_flood_from_lan t_stress_forwarded_flood_from_lan
    check stress_dropped_flood_from_wan t_stress_dropped_flood_from_wan
    check stress_dropped_flood_from_lan t_stress_dropped_flood_from_lan
    check stress_idle_and_churning_control_clients t_stress_idle_and_churning_control_clients
    check stress_slow_events_reader t_stress_slow_events_reader
    check stress_reload_storm t_stress_reload_storm
    check stress_hostile_config_files t_stress_hostile_config_files
    check stress_full_table_listing_keeps_forwarding t_stress_full_table_listing
    check stress_syn_flood_at_table_limit t_stress_syn_flood_at_table_limit
}
