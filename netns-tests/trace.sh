# ctl trace and explain (issue 15 item 2), on the embedded default config
# suite_pass starts tunfw with: a live ping is traced with the rule that
# accepted each way; explain says the same of a described packet.

t_trace_ping_shows_accepting_rules() {
    local out="$TOPO_DIR/trace.out" pid
    : >"$out"
    bg "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" trace --proto icmp --addr "$SERVER_IP" >"$out"
    pid=$!
    wait_until eval "in_client ping -c 1 -W 1 $SERVER_IP >/dev/null; grep -q 'icmp-in' '$out'" ||
        { note "no traced echo reply: $(head -3 "$out")"; kill "$pid"; return 1; }
    kill "$pid"
    grep -q "^from lan .*icmp $CLIENT_IP -> $SERVER_IP .*ACCEPT (forwarded) by rule icmp-out (#3)" "$out" ||
        { note "no outbound line naming icmp-out: $(head -3 "$out")"; return 1; }
    grep -q "^from wan .*ESTABLISHED.*by rule icmp-in (#3)" "$out" ||
        { note "no inbound ESTABLISHED line naming icmp-in"; return 1; }
    grep -q "^  #1 udp-out: .*no (proto does not match)" "$out" || { note "rules not listed"; return 1; }
    ! grep -q "^from .* tcp " "$out" || { note "the filter let tcp through"; return 1; }
    head -5 "$out" | sed 's/^/    /'
}

t_trace_subscriber_gone_stops_tracing() {
    local out="$TOPO_DIR/trace2.out" pid
    : >"$out"
    bg "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" trace --proto icmp >"$out"
    pid=$!
    wait_until eval "in_client ping -c 1 -W 1 $SERVER_IP >/dev/null; grep -q '^from' '$out'" ||
        { note "nothing traced"; kill "$pid"; return 1; }
    kill "$pid"
    # A new subscriber slot is free again once the old one is gone: four at most.
    local i pids=()
    for i in 1 2 3 4; do
        "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" trace --proto udp --port 9 >/dev/null 2>&1 &
        pids+=($!)
    done
    wait_until eval "[ \$(tunfw_ctl stats | awk '\$1 == \"control.clients\" { print \$2 }') -ge 4 ]" ||
        { note "four tracers did not connect"; kill "${pids[@]}"; return 1; }
    local err
    err=$("$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" trace --proto udp 2>&1 </dev/null)
    kill "${pids[@]}"
    echo "$err" | grep -q "too many trace subscribers" || { note "fifth tracer: $err"; return 1; }
}

t_explain_default_config() {
    local out rc=0
    out=$("$TUNFW_BIN" explain "icmp $CLIENT_IP -> $SERVER_IP echo-request from lan") || rc=$?
    [ "$rc" = 0 ] && echo "$out" | grep -q "decision:  rule icmp-out (#3)" ||
        { note "explain accepted ping: rc $rc: $out"; return 1; }
    rc=0
    out=$("$TUNFW_BIN" explain "tcp $SERVER_IP:5555 -> $CLIENT_IP:22 syn from wan") || rc=$?
    [ "$rc" = 1 ] && echo "$out" | grep -q "decision:  policy Drop" ||
        { note "explain inbound ssh: rc $rc: $out"; return 1; }
}

trace_suite() {
    echo "== ctl trace and explain (embedded default config)"
    check trace_ping_shows_accepting_rules t_trace_ping_shows_accepting_rules
    check trace_slots_freed_and_bounded t_trace_subscriber_gone_stops_tracing
    check explain_default_config t_explain_default_config
}
