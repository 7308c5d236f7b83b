# Operations checks for netns-tests/run.sh (sourced): the control interface,
# reload, logging and pcap, least privilege, and the iptables import.

# A long-lived idle TCP connection client -> server:PORT (no data after the
# handshake), so that its flow sits in the table untouched.
idle_connection() {
    local port=$1
    bg in_server socat TCP4-LISTEN:$port,bind=$SERVER_IP,reuseaddr SYSTEM:"sleep 60" 2>/dev/null
    wait_until listening "$NS_SERVER" -t $port || return 1
    bg in_client sh -c "sleep 60 | socat - TCP4:$SERVER_IP:$port 2>/dev/null"
    wait_until eval "tunfw_ctl flows --port $port --state ESTABLISHED | grep -q ASSURED"
}

flows_on_port() { tunfw_ctl flows --port "$1" | grep -c "^tcp" ; }

# A paced download long enough that its flow is still open while it is
# listed and the config is reloaded: 32 MiB at 8 MiB/s, paced by the server
# (slow_download). (curl's own --limit-rate does not keep it open: a 1 MiB
# file fits in the client's socket buffer, the server is done and the flow
# past ESTABLISHED within milliseconds, while curl still drains it.)
t_ops_flows_listed_during_transfer_and_reload_keeps_it() {
    local out="$TOPO_DIR/slow.blob" pid want got
    [ -s "$TOPO_DIR/www/big" ] || head -c 33554432 /dev/urandom >"$TOPO_DIR/www/big"
    slow_download big 8M "$out" || return 1
    pid=$DOWNLOAD_PID
    tunfw_ctl flows --port $SLOW_PORT | head -1 | sed 's/^/    listed: /'
    tunfw_ctl reload >"$TOPO_DIR/reload.out" 2>&1 || { note "reload: $(cat "$TOPO_DIR/reload.out")"; kill $pid; return 1; }
    note "$(cat "$TOPO_DIR/reload.out") (during the transfer)"
    tunfw_ctl flows --port $SLOW_PORT | grep -q "^tcp" || { note "the flow is gone after the reload"; kill $pid; return 1; }
    wait $pid || { note "the transfer died across the reload"; return 1; }
    want=$(sha256sum <"$TOPO_DIR/www/big" | cut -d' ' -f1)
    got=$(sha256sum <"$out" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "sha256 mismatch"; return 1; }
}

t_ops_flush_and_kill() {
    idle_connection 7102 && idle_connection 7103 || { note "idle connections not tracked"; return 1; }
    local removed
    removed=$(tunfw_ctl kill --port 7102) || return 1
    [ "$removed" = "1 flows removed" ] || { note "kill: $removed"; return 1; }
    [ "$(flows_on_port 7102)" = 0 ] && [ "$(flows_on_port 7103)" = 1 ] || { note "kill removed the wrong flows"; return 1; }
    removed=$(tunfw_ctl flush) || return 1
    [ "$(flows_on_port 7103)" = 0 ] || { note "flush left flows"; return 1; }
    [ "$(ctr conntrack.count)" = 0 ] || { note "conntrack.count $(ctr conntrack.count) after flush"; return 1; }
    note "flush: $removed"
}

t_ops_bad_reload_changes_nothing() {
    local bad="$TOPO_DIR/bad.ron" before after err rc=0
    sed 's/proto: Udp, state: \[New, Established\]/proto: Udp, colour: 1, state: [New, Established]/' \
        "$ROOT/config/default.ron" >"$bad"
    before=$(tunfw_ctl rules | awk '{ $3 = ""; $4 = ""; print }')
    err=$(tunfw_ctl reload "$bad" 2>&1) || rc=$?
    [ $rc != 0 ] && grep -q "bad.ron:[0-9]*:[0-9]*: Unexpected field named \`colour\`" <<<"$err" ||
        { note "rc=$rc: $err"; return 1; }
    after=$(tunfw_ctl rules | awk '{ $3 = ""; $4 = ""; print }')
    [ "$before" = "$after" ] || { note "rules changed"; return 1; }
    grep -q "reload failed, running config unchanged" "$TUNFW_LOG" || { note "not logged"; return 1; }
    in_client ping -c 1 -W 2 $SERVER_IP >/dev/null || { note "traffic stopped"; return 1; }
    note "$err"
}

t_ops_sighup_reloads() {
    local before
    before=$(grep -c "reloaded:" "$TUNFW_LOG")
    kill -HUP "$TUNFW_PID" || return 1
    wait_until eval "[ \$(grep -c 'reloaded:' '$TUNFW_LOG') -gt $before ]" || { note "no reload logged"; return 1; }
    kill -0 "$TUNFW_PID" || { note "tunfw died on SIGHUP"; return 1; }
    in_client ping -c 1 -W 2 $SERVER_IP >/dev/null || { note "no traffic after SIGHUP"; return 1; }
    grep "reloaded:" "$TUNFW_LOG" | tail -1 | sed 's/^/    /'
}

t_ops_counters_survive_reload() {
    local changed="$TOPO_DIR/changed.ron" before after rules_before rules_after
    sed 's/rules: \[$/rules: [\n            (name: "extra", proto: Udp, dport: 9, action: Drop),/' \
        "$ROOT/config/default.ron" >"$changed"
    before=$(rule_pkts inbound tcp-in)
    rules_before=$(tunfw_ctl rules | grep -c '^outbound')
    [ "$before" -gt 0 ] || { note "tcp-in has no packets to carry over"; return 1; }
    tunfw_ctl reload "$changed" >/dev/null || return 1
    after=$(rule_pkts inbound tcp-in)
    rules_after=$(tunfw_ctl rules | grep -c '^outbound')
    [ "$rules_after" = $((rules_before + 1)) ] || { note "the new rule is not there"; return 1; }
    [ "$after" -ge "$before" ] || { note "tcp-in counter $before -> $after"; return 1; }
    note "tcp-in packets $before -> $after across the reload"
}

t_ops_log_line_and_pcap() {
    local before=$(ctr drop.policy_inbound) n
    ! in_server ping -c 2 -i 0.2 -W 1 $CLIENT_IP >/dev/null || { note "ping passed"; return 1; }
    wait_grew drop.policy_inbound "$before" || return 1
    grep -q "tunfw: drop reason=policy_inbound rule=policy dir=inbound state=NEW icmp $SERVER_IP -> $CLIENT_IP" "$TUNFW_LOG" ||
        { note "no log line"; return 1; }
    wait_until eval "tcpdump -r '$TOPO_DIR/drops.pcap' -n 2>/dev/null | grep -q 'ICMP echo request'" || { note "pcap lacks the drops"; return 1; }
    n=$(tcpdump -r "$TOPO_DIR/drops.pcap" -n 2>/dev/null | grep -c "$SERVER_IP > $CLIENT_IP: ICMP echo request")
    [ "$n" -ge 2 ] || { note "$n echo requests in the pcap"; return 1; }
    note "tcpdump reads $n dropped echo requests"
}

t_ops_events() {
    local ev="$TOPO_DIR/events.out"
    : >"$ev"
    bg "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" events >"$ev"
    wait_until eval "in_client ping -c 1 -W 1 $SERVER_IP >/dev/null; grep -q '\"event\":\"NEW\".*icmp' '$ev'" ||
        { note "no NEW event"; return 1; }
    tunfw_ctl flush >/dev/null
    wait_until grep -q '"event":"DESTROY"' "$ev" || { note "no DESTROY event"; return 1; }
    head -1 "$ev" | sed 's/^/    /'
}

# log_since LINES: tunfw's log after its first LINES lines.
log_since() { tail -n +$(($1 + 1)) "$TUNFW_LOG"; }

t_ops_user_drop() {
    local uid owner ok=0 l0
    l0=$(wc -l <"$TUNFW_LOG")
    TUNFW_EXTRA_ARGS=(--user nobody)
    tunfw_start "" && ok=1
    TUNFW_EXTRA_ARGS=()
    [ $ok = 1 ] || return 1
    uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$TUNFW_PID/status)
    [ "$uid" = "65534 65534 65534 65534" ] || { note "uid: $uid"; return 1; }
    owner=$(stat -c %U "$TUNFW_CONTROL")
    [ "$owner" = nobody ] || { note "socket owner $owner"; return 1; }
    in_client ping -c 2 -i 0.2 -W 2 $SERVER_IP >/dev/null || { note "no forwarding as nobody"; return 1; }
    [ "$(rule_pkts outbound icmp-out)" -ge 2 ] || { note "not counted"; return 1; }
    # Root opened the multi-queue devices and loaded the steering program
    # before dropping: each device has its nine queues.
    log_since $l0 | grep -q 'queues 9+9;' || { note "not nine queues a device: $(log_since $l0 | grep forwarding)"; return 1; }
    note "uid $uid, control socket owned by $owner; queues 9+9"
}

t_ops_unprivileged_precreated_devices() {
    local dir ok=0 uid l0
    tunfw_stop
    topo_unwire_devices || return 1
    ip -n "$NS_FW" link del tfw-lan && ip -n "$NS_FW" link del tfw-wan || return 1
    ip -n "$NS_FW" tuntap add dev tfw-lan mode tun user 65534 group 65534 || return 1
    ip -n "$NS_FW" tuntap add dev tfw-wan mode tun user 65534 group 65534 || return 1
    dir=$(mktemp -d /tmp/tunfwt-nobody.XXXXXX) && chown nobody "$dir" && EXTRA_DIRS+=("$dir")
    local saved=$TUNFW_CONTROL
    TUNFW_CONTROL=$dir/control.sock
    l0=$(wc -l <"$TUNFW_LOG")
    TUNFW_RUN_AS=(unshare --mount --propagation private "$HERE/with_user_tun.sh"
        setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
    tunfw_start "" && ok=1
    TUNFW_RUN_AS=()
    if [ $ok = 1 ]; then
        uid=$(awk '/^Uid:/ { print $2 }' /proc/$TUNFW_PID/status)
        [ "$uid" = 65534 ] || { note "uid $uid"; ok=0; }
        in_client ping -c 2 -i 0.2 -W 2 $SERVER_IP >/dev/null || { note "no forwarding"; ok=0; }
        # Devices made without multi_queue: one queue each, and the log says why.
        log_since $l0 | grep -q 'queues 1+1;' && log_since $l0 | grep -q 'tfw-wan is a persistent single-queue device' ||
            { note "queues: $(log_since $l0 | grep -E 'queue' | head -3)"; ok=0; }
    else
        note "tunfw did not start as nobody: $(tail -2 "$TUNFW_LOG")"
    fi
    tunfw_stop
    TUNFW_CONTROL=$saved
    [ $ok = 1 ]
}

ops_suite() {
    echo "== operations (control, reload, logging, privilege)"
    local logcfg="$TOPO_DIR/logging.ron"
    sed -e 's|^    on_reload|&|' -e 's|^(|(\n    logging: (per_second: 100, burst: 100, pcap: (path: "'"$TOPO_DIR"'/drops.pcap", packets: Dropped)),|' \
        -e 's/^    inbound: ($/    inbound: (\n        log: true,/' "$ROOT/config/default.ron" >"$logcfg"
    "$TUNFW_BIN" --check --config "$logcfg" >/dev/null && grep -q 'log: true' "$logcfg" ||
        { FAILED=$((FAILED + 1)); echo "FAIL ops_config"; return; }
    tunfw_start "$logcfg" || { FAILED=$((FAILED + 1)); echo "FAIL ops_start"; return; }
    start_servers >/dev/null 2>&1
    check ops_flows_listed_during_transfer_reload_keeps_it t_ops_flows_listed_during_transfer_and_reload_keeps_it
    check ops_kill_by_filter_and_flush t_ops_flush_and_kill
    check ops_bad_reload_changes_nothing t_ops_bad_reload_changes_nothing
    check ops_rule_counters_survive_reload t_ops_counters_survive_reload
    check ops_sighup_reloads t_ops_sighup_reloads
    tunfw_ctl reload "$logcfg" >/dev/null
    check ops_log_line_and_pcap_read_by_tcpdump t_ops_log_line_and_pcap
    check ops_events_new_and_destroy t_ops_events
    check ops_user_drop_to_nobody_still_forwards t_ops_user_drop
    check ops_unprivileged_with_precreated_devices t_ops_unprivileged_precreated_devices
}

# The seed firewall's iptables and ip6tables lines, imported, behave like config/default.ron.
import_suite() {
    echo "== imported seed (tunfw import-iptables netns-tests/seed.iptables -6 netns-tests/seed.ip6tables)"
    local imported="$TOPO_DIR/imported.ron"
    "$TUNFW_BIN" import-iptables "$HERE/seed.iptables" -6 "$HERE/seed.ip6tables" >"$imported" ||
        { FAILED=$((FAILED + 1)); echo "FAIL import_seed"; return; }
    # Rule counters are read by name: give the imported rules the default's names.
    python3 - "$imported" "$ROOT/config/default.ron" <<'PY'
import re, sys
imported, default = sys.argv[1], sys.argv[2]
names = re.findall(r'\(name: "([^"]+)", (.*?), action', open(default).read())
text = open(imported).read()
for name, body in names:
    text = text.replace(f"({body}, action", f'(name: "{name}", {body}, action', 1)
open(imported, "w").write(text)
PY
    tunfw_start "$imported" && start_servers >/dev/null 2>&1 && ftp_server_start ||
        { FAILED=$((FAILED + 1)); echo "FAIL import_start"; return; }
    check imported_udp_query_answered t_udp_query_answered
    check imported_udp_server_initiated_blocked t_udp_server_initiated_blocked
    check imported_tcp_http_download_1MiB_sha256 t_tcp_http_download
    check imported_tcp_server_initiated_blocked t_tcp_server_initiated_blocked
    check imported_icmp_client_pings_server t_icmp_client_pings_server
    check imported_icmp_server_cannot_ping_client t_icmp_server_cannot_ping_client
    check imported_icmp_port_unreachable_is_related t_udp_closed_port_unreachable_related
    check imported_tcp_syn_to_closed_port_gets_rst t_tcp_closed_port_refused
    check imported_icmp_router_unreachable_is_related t_router_unreachable_related
    check imported_icmp_forged_error_dropped_invalid t_forged_icmp_error_dropped
    check imported_ftp_active_port_related t_ftp_passes_related port
    ftp_server_stop
    # The IPv6 servers of ipv6_suite still run; start them if not.
    listening_on "$NS_SERVER" -t "$SERVER6" 8080 || v6_servers_start ||
        { FAILED=$((FAILED + 1)); echo "FAIL import_v6_servers"; return; }
    check imported_ipv6_ping_client_to_server t6_ping_client_to_server
    check imported_ipv6_ping_server_to_client_blocked t6_ping_server_to_client_blocked
    check imported_ipv6_http_download_1MiB_sha256 t6_http_download
    check imported_ipv6_udp_server_initiated_blocked t6_udp_server_initiated_blocked
}
