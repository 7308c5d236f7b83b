# State across restarts (sourced by run.sh): tunfw with --state-file is
# stopped (SIGTERM: the table is saved) in the middle of a rate-limited
# download and a UDP conversation, and started again (the table is
# restored); the WAN side speaks first after the restart (the server's
# retransmitted segments, the server's datagram) and gets through: the
# download completes with its sha256, the datagram arrives. The control:
# the same restart without the state file drops those inbound packets
# (drop.policy_inbound grows, the datagram never arrives).
#
# The TUN devices are persistent (`ip tuntap add`, scripts/netns.sh): they
# outlive tunfw, and tunfw_start moves them back and forth so that the new
# tunfw attaches to the same devices; the client's and the server's sockets
# keep their connection across it.

RESTORE_STATE=$TOPO_DIR/tunfw.state
RESTORE_UDP_OUT=$TOPO_DIR/restore-udp.txt

# restore_begin: tunfw with the state file, a download at 50 KB/s
# (about 20 s for the 1 MiB blob, so that it is still running when the
# setup below is done on a loaded machine) listed ASSURED, and a UDP conversation
# client:7401 <-> server:7400 in which both sides have spoken.
restore_begin() {
    # (A tunfw running with the state file writes it as it stops.)
    tunfw_stop
    rm -f "$RESTORE_STATE" "$RESTORE_UDP_OUT"
    TUNFW_EXTRA_ARGS=(--state-file "$RESTORE_STATE")
    tunfw_start || return 1
    # curl and socat run straight under `ip netns exec` (which execs
    # them), so that their pids are theirs: curl is stopped and continued.
    rm -f "$TOPO_DIR/restore.blob"
    # A small receive buffer keeps the transfer on the wire for its whole
    # 20 s (with the default, the kernel would take the whole file at once
    # and curl only read it slowly).
    RESTORE_RMEM=$(in_client sysctl -n net.ipv4.tcp_rmem)
    in_client sysctl -qw net.ipv4.tcp_rmem="4096 16384 32768"
    ip netns exec "$NS_CLIENT" curl -sS --limit-rate 50k --max-time 60 -o "$TOPO_DIR/restore.blob" "http://$SERVER_IP:8080/blob" &
    DOWNLOAD_PID=$!
    wait_until eval "tunfw_ctl flows --port 8080 --state ESTABLISHED | grep -q ASSURED" ||
        { note "download not listed ASSURED: $(tunfw_ctl flows --port 8080 | tr '\n' ';')"; grep -v "^tunfw: exiting" "$TUNFW_LOG" | tail -6 | sed 's/^/    | /'; return 1; }
    : >"$RESTORE_UDP_OUT"
    # The client's socket stays open: it says hello, what it receives goes to the file.
    ip netns exec "$NS_CLIENT" socat -T 40 UDP4-DATAGRAM:$SERVER_IP:7400,bind=$CLIENT_IP:7401 SYSTEM:"echo hello; cat >>'$RESTORE_UDP_OUT'" &
    UDP_CLIENT_PID=$!
    BG_PIDS+=("$UDP_CLIENT_PID")
    wait_until eval "tunfw_ctl flows --port 7401 | grep -q UNREPLIED" || { note "no UDP flow"; return 1; }
    echo before-restart | in_server socat -u - UDP4-SENDTO:$CLIENT_IP:7401,sourceport=7400
    wait_until grep -q before-restart "$RESTORE_UDP_OUT" || { note "the server's first answer did not arrive"; return 1; }
    # curl stops reading, so that its side sends nothing until the server
    # has spoken after the restart (a retransmission or a window probe).
    kill -0 "$DOWNLOAD_PID" 2>/dev/null ||
        { note "the download ended before the restart ($(stat -c %s "$TOPO_DIR/restore.blob" 2>/dev/null) bytes, ${SECONDS}s)"; return 1; }
    kill -STOP "$DOWNLOAD_PID"
}

# restore_end: stop what restore_begin started.
restore_end() {
    kill "$DOWNLOAD_PID" 2>/dev/null
    kill -CONT "$DOWNLOAD_PID" 2>/dev/null
    wait "$DOWNLOAD_PID" 2>/dev/null
    kill "$UDP_CLIENT_PID" 2>/dev/null
    [ -n "${RESTORE_RMEM:-}" ] && in_client sysctl -qw net.ipv4.tcp_rmem="$RESTORE_RMEM"
    TUNFW_EXTRA_ARGS=()
}

t_restore_download_and_udp_survive() {
    local lines want got flows rc=0
    restore_begin || { restore_end; return 1; }
    lines=$(wc -l <"$TUNFW_LOG")
    tunfw_stop || { note "tunfw exit code $?"; restore_end; return 1; }
    grep -q "state file .*: saved [0-9]* flows" <(tail -n +$((lines + 1)) "$TUNFW_LOG") ||
        { note "no save line in the log"; restore_end; return 1; }
    note "$(tail -n +$((lines + 1)) "$TUNFW_LOG" | grep -o 'saved .*')"
    tunfw_start || { restore_end; return 1; }
    note "$(tail -n +$((lines + 1)) "$TUNFW_LOG" | grep -o 'restored .*')"
    flows=$(tunfw_ctl flows --port 8080 --state ESTABLISHED | grep -c ASSURED)
    [ "$flows" -ge 1 ] || { note "the download's flow was not restored: $(tunfw_ctl flows | tr '\n' ';')"; rc=1; }
    # The server speaks first: its segments (curl is stopped), then its datagram.
    wait_grew forwarded.wan 0 || { note "nothing from the server got through"; rc=1; }
    note "from the server first: $(ctr forwarded.wan) packets forwarded, $(ctr drop.total) dropped"
    kill -CONT "$DOWNLOAD_PID"
    echo after-restart | in_server socat -u - UDP4-SENDTO:$CLIENT_IP:7401,sourceport=7400
    wait_until grep -q after-restart "$RESTORE_UDP_OUT" || { note "the server's datagram after the restart did not arrive"; rc=1; }
    wait "$DOWNLOAD_PID" || { note "curl failed ($?)"; rc=1; }
    want=$(sha256sum <"$TOPO_DIR/www/blob" | cut -d' ' -f1)
    got=$(sha256sum <"$TOPO_DIR/restore.blob" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "sha256 differs ($(stat -c %s "$TOPO_DIR/restore.blob") bytes)"; rc=1; }
    [ $rc = 0 ] && note "download completed across the restart, sha256 ok; the UDP answer arrived"
    restore_end
    return $rc
}

t_restore_control_without_state_dropped() {
    local rc=0 before
    restore_begin || { restore_end; return 1; }
    tunfw_stop || { note "tunfw exit code $?"; restore_end; return 1; }
    TUNFW_EXTRA_ARGS=()
    tunfw_start || { restore_end; return 1; }
    # The server's segments (curl is stopped) meet a table that does not know them.
    wait_grew drop.policy_inbound 0 || rc=1
    [ "$(ctr forwarded.wan)" = 0 ] || { note "$(ctr forwarded.wan) packets from the server forwarded"; rc=1; }
    before=$(ctr drop.policy_inbound)
    echo after-restart | in_server socat -u - UDP4-SENDTO:$CLIENT_IP:7401,sourceport=7400
    wait_grew drop.policy_inbound "$before" || rc=1
    ! grep -q after-restart "$RESTORE_UDP_OUT" || { note "the datagram arrived"; rc=1; }
    [ $rc = 0 ] && note "without the state file: $(ctr drop.policy_inbound) inbound packets dropped by the policy, the datagram did not arrive"
    restore_end
    return $rc
}

restore_suite() {
    echo "== state across restarts (--state-file)"
    check restart_with_state_download_and_udp_survive t_restore_download_and_udp_survive
    check restart_without_state_inbound_dropped t_restore_control_without_state_dropped
    # What follows expects tunfw on the embedded default, without the state file.
    tunfw_start || return 1
}
