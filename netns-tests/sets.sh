# Named sets (sourced by run.sh): a fail2ban-style ban of the server with
# `tunfw ctl set add ... timeout`, without a reload, then its end. tunfw on
# the test config with a set "banned" and, first in the outbound chain, a
# rule dropping everything to it.

SETS_CONFIG=$TOPO_DIR/sets.ron

sets_config() {
    sed -e 's|^    outbound: (|    sets: {"banned": (kind: Address, max: 100000)},\n    outbound: (|' \
        -e '0,/^        rules: \[/s|^        rules: \[|        rules: [\n            (name: "banned", dst: "@banned", action: Drop),|' \
        "$TEST_CONFIG" >"$SETS_CONFIG"
    grep -q 'dst: "@banned"' "$SETS_CONFIG" && "$TUNFW_BIN" --check --config "$SETS_CONFIG" >/dev/null
}

# Packets the rule "banned" dropped.
banned_packets() {
    tunfw_ctl rules | awk '$1 == "outbound" && $5 == "banned" { n += $3 } END { print n + 0 }'
}

fetch_blob() {
    in_client curl -sS --connect-timeout 1 --max-time 3 -o /dev/null "http://$SERVER_IP:8080/blob" 2>/dev/null
}

t_sets_ban_with_timeout_then_free() {
    local before out
    fetch_blob || { note "the download failed before any ban"; return 1; }
    out=$(tunfw_ctl set add banned $SERVER_IP timeout 4) || { note "set add: $out"; return 1; }
    [ "$out" = "1 added" ] || { note "set add said '$out'"; return 1; }
    tunfw_ctl set list banned | grep -q "^$SERVER_IP/32 runtime timeout [1-4]$" ||
        { note "set list: $(tunfw_ctl set list banned)"; return 1; }
    before=$(banned_packets)
    ! fetch_blob || { note "the banned server was reached"; return 1; }
    [ "$(banned_packets)" -gt "$before" ] || { note "the rule 'banned' dropped nothing"; return 1; }
    # The ban ends with its timeout: the download works again (within 8 s).
    local t0=$SECONDS
    WAIT_SECS=8 wait_until fetch_blob || { note "still banned long after the timeout"; return 1; }
    tunfw_ctl set list banned | grep -q "^0 elements in banned$" || { note "the element is still listed"; return 1; }
    note "banned for 4 s: the download failed (rule 'banned' +$(($(banned_packets) - before)) packets), then worked again $((SECONDS - t0)) s later"
}

t_sets_del_and_reload_keeps_runtime_elements() {
    tunfw_ctl set add banned $SERVER_IP 192.0.2.0/24 >/dev/null || return 1
    ! fetch_blob || { note "the banned server was reached"; return 1; }
    tunfw_ctl reload >/dev/null || { note "reload failed"; return 1; }
    ! fetch_blob || { note "the ban did not survive the reload"; return 1; }
    [ "$(tunfw_ctl set del banned $SERVER_IP)" = "1 removed" ] || { note "set del"; return 1; }
    fetch_blob || { note "still banned after set del"; return 1; }
    [ "$(tunfw_ctl set list banned | tail -1)" = "1 elements in banned" ] || { note "list: $(tunfw_ctl set list banned)"; return 1; }
    tunfw_ctl set flush banned >/dev/null
}

sets_suite() {
    echo "== sets (a runtime ban of the server, with a timeout)"
    if ! sets_config || ! tunfw_start "$SETS_CONFIG"; then
        FAILED=$((FAILED + 1))
        echo "FAIL sets_start"
        return
    fi
    check sets_ban_with_timeout_then_free t_sets_ban_with_timeout_then_free
    check sets_del_and_reload_keeps_runtime_elements t_sets_del_and_reload_keeps_runtime_elements
}
