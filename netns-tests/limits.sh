# Per-source limits (sourced by run.sh): a WAN host opening connections to
# the client's service (port 7000) as fast as it can is cut off by the
# rule's per-source rate limit and listed in the set "banned", which an
# earlier inbound rule drops, while a second WAN host's connections go on
# working. tunfw on the test config with, first in the inbound chain:
#   (name: "banned", src: "@banned", action: Drop),
#   (name: "svc", proto: Tcp, dport: 7000, state: [New], action: Accept,
#    limit: (per_source_rate: (5, 10), overload: "@banned", overload_timeout: 60)),

LIMITS_CONFIG=$TOPO_DIR/limits.ron
# The second WAN host: another address of the server namespace.
SERVER2_IP=10.201.2.3

limits_config() {
    sed -e 's|^    outbound: (|    sets: {"banned": (kind: Address, max: 1000)},\n    outbound: (|' \
        -e '/^    inbound: (/,/^        rules: \[/s|^        rules: \[|        rules: [\n            (name: "banned", src: "@banned", action: Drop),\n            (name: "svc", proto: Tcp, dport: 7000, state: [New], action: Accept,\n             limit: (per_source_rate: (5, 10), overload: "@banned", overload_timeout: 60)),|' \
        "$TEST_CONFIG" >"$LIMITS_CONFIG"
    grep -q 'overload: "@banned"' "$LIMITS_CONFIG" && "$TUNFW_BIN" --check --config "$LIMITS_CONFIG" >/dev/null
}

# connect_from ADDR: one connection from ADDR to the client's service; its
# answer must be the service's.
connect_from() {
    [ "$(in_server timeout 3 socat -T1 - "TCP4:$CLIENT_IP:7000,bind=$1,connect-timeout=1" </dev/null 2>/dev/null)" = client-secret ]
}

t_limits_flooding_source_cut_off_other_served() {
    local before banned_before ok=0 failed=0 i n
    in_server ip addr add $SERVER2_IP/24 dev tfw-wan 2>/dev/null
    wait_until connect_from $SERVER2_IP || { note "no connection from $SERVER2_IP before the flood"; return 1; }
    before=$(ctr drop.source_limit)
    banned_before=$(rule_pkts inbound banned)
    # The first host opens connections as fast as it can (socat, one after
    # the other), until three in a row fail.
    for i in $(seq 60); do
        if connect_from $SERVER_IP; then
            ok=$((ok + 1))
            failed=0
        else
            failed=$((failed + 1))
            [ $failed -ge 3 ] && break
        fi
    done
    [ $failed -ge 3 ] || { note "$ok connections from $SERVER_IP, none refused"; return 1; }
    grew drop.source_limit "$before" || { note "drop.source_limit stayed at $before"; return 1; }
    tunfw_ctl set list banned | grep -q "^$SERVER_IP/32 runtime timeout" ||
        { note "set list: $(tunfw_ctl set list banned)"; return 1; }
    [ "$(rule_pkts inbound banned)" -gt "$banned_before" ] || { note "the rule 'banned' dropped nothing"; return 1; }
    # Cut off: its next connection fails too; the other host's work.
    ! connect_from $SERVER_IP || { note "$SERVER_IP connected while banned"; return 1; }
    n=0
    for i in 1 2 3 4 5; do
        connect_from $SERVER2_IP && n=$((n + 1))
    done
    [ $n = 5 ] || { note "only $n of 5 connections from $SERVER2_IP worked"; return 1; }
    note "$SERVER_IP: $ok connections, then refused (drop.source_limit +$(($(ctr drop.source_limit) - before)), rule 'banned' +$(($(rule_pkts inbound banned) - banned_before)) packets, listed: $(tunfw_ctl set list banned | head -1)); $SERVER2_IP: 5 of 5 connections"
}

limits_suite() {
    echo "== limits (a per-source rate limit with overload into a set)"
    if ! limits_config || ! tunfw_start "$LIMITS_CONFIG"; then
        FAILED=$((FAILED + 1))
        echo "FAIL limits_start"
        return
    fi
    check limits_flooding_source_cut_off_other_served t_limits_flooding_source_cut_off_other_served
    in_server ip addr del $SERVER2_IP/24 dev tfw-wan 2>/dev/null
    tunfw_ctl set flush banned >/dev/null
}
