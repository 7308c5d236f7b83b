# IPv6 checks for netns-tests/run.sh (sourced): real programs over IPv6
# (ping -6, curl -6, socat UDP6/TCP6, traceroute -6, vsftpd with
# listen_ipv6) through tunfw, on the topology's fd00:201::/48 addresses
# (scripts/netns.sh). As for IPv4: every allowed check shows tunfw forwarded
# it, every blocked one that tunfw counted the drop. Where a check is about
# RELATED, the config logs the ICMPv6 rule (or the inbound chain) and the
# check reads the state tunfw gave the packet from its log line.

V6_DIR=$TOPO_DIR/ipv6

# v6_configs: the configs of the IPv6 checks, derived from config/default.ron
# and the suite's test config ($TEST_CONFIG: router addresses).
#   v6-log.ron:   the test config, icmpv6-in logged (log line per packet)
#   v6-norel.ron: the same, but icmpv6-in without RELATED and the inbound
#                 chain logged: ICMPv6 errors are dropped by the policy
#   v6-drop.ron, v6-pass.ron: the default with ipv6: Drop / ipv6: Pass
v6_configs() {
    mkdir -p "$V6_DIR"
    local d=$ROOT/config/default.ron rule='(name: "icmpv6-in", proto: Icmpv6, state: \[Established, Related\]'
    sed "s/$rule/&, log: true/" "$TEST_CONFIG" >"$V6_DIR/v6-log.ron"
    sed -e "s/$rule/(name: \"icmpv6-in\", proto: Icmpv6, state: [Established], log: true/" \
        -e 's/^    inbound: ($/    inbound: (\n        log: true,/' "$TEST_CONFIG" >"$V6_DIR/v6-norel.ron"
    sed 's/^    ipv6: Track,$/    ipv6: Drop,/' "$d" >"$V6_DIR/v6-drop.ron"
    sed 's/^    ipv6: Track,$/    ipv6: Pass,/' "$d" >"$V6_DIR/v6-pass.ron"
    local f
    for f in v6-log v6-norel v6-drop v6-pass; do
        if ! "$TUNFW_BIN" --check --config "$V6_DIR/$f.ron" >/dev/null; then
            echo "could not derive $f.ron" >&2
            return 1
        fi
    done
    grep -q 'lan6: "'"$TUNFW_LAN6"'"' "$V6_DIR/v6-log.ron" &&
        grep -q '"icmpv6-in", proto: Icmpv6, state: \[Established, Related\], log: true' "$V6_DIR/v6-log.ron" &&
        grep -q '"icmpv6-in", proto: Icmpv6, state: \[Established\], log: true' "$V6_DIR/v6-norel.ron" &&
        grep -q '^        log: true,$' "$V6_DIR/v6-norel.ron" &&
        grep -q '^    ipv6: Drop,$' "$V6_DIR/v6-drop.ron" && grep -q '^    ipv6: Pass,$' "$V6_DIR/v6-pass.ron"
}

# Servers on the IPv6 addresses (beside the IPv4 ones of start_servers, which
# made the 1 MiB blob).
v6_servers_start() {
    bg in_server python3 -m http.server 8080 --bind $SERVER6 --directory "$TOPO_DIR/www" >/dev/null 2>&1
    bg in_server socat UDP6-RECVFROM:5000,bind=[$SERVER6],fork,reuseaddr EXEC:cat
    bg in_client socat TCP6-LISTEN:7000,bind=[$CLIENT6],reuseaddr,fork EXEC:"echo client-secret"
    wait_until listening_on "$NS_SERVER" -t $SERVER6 8080 && wait_until listening_on "$NS_SERVER" -u $SERVER6 5000 &&
        wait_until listening_on "$NS_CLIENT" -t $CLIENT6 7000
}

# log_since LINE: tunfw's log after its first LINE lines.
log_since() { tail -n +$(($1 + 1)) "$TUNFW_LOG"; }
log_lines() { wc -l <"$TUNFW_LOG"; }

# --- ICMPv6 echo -------------------------------------------------------------
t6_ping_client_to_server() {
    local before=$(rule_pkts outbound icmpv6-out) fwd=$(ctr forwarded.lan)
    in_client ping -6 -c 3 -i 0.2 -W 2 $SERVER6 >/dev/null || return 1
    [ $(($(rule_pkts outbound icmpv6-out) - before)) -ge 3 ] || { note "icmpv6-out did not count 3 requests"; return 1; }
    [ $(($(ctr forwarded.lan) - fwd)) -ge 3 ] || { note "forwarded.lan did not grow by 3"; return 1; }
}

t6_ping_server_to_client_blocked() {
    local before=$(ctr drop.policy_inbound)
    ! in_server ping -6 -c 2 -i 0.2 -W 1 $CLIENT6 >/dev/null || { note "ping -6 answered"; return 1; }
    [ $(($(ctr drop.policy_inbound) - before)) -ge 2 ] || { note "drops not counted"; return 1; }
}

# --- TCP -----------------------------------------------------------------------
t6_http_download() {
    local fwd_before=$(ctr forwarded.wan) gso_before=$(ctr offload.gso_in.wan) want got gso
    in_client curl -6 -g -sS --max-time 20 -o "$V6_DIR/blob.client" "http://[$SERVER6]:8080/blob" || return 1
    want=$(sha256sum <"$TOPO_DIR/www/blob" | cut -d' ' -f1)
    got=$(sha256sum <"$V6_DIR/blob.client" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "sha256 $got != $want"; return 1; }
    [ $(($(ctr forwarded.wan) - fwd_before)) -ge 17 ] || { note "tunfw forwarded too few packets"; return 1; }
    gso=$(($(ctr offload.gso_in.wan) - gso_before))
    if [ "$OFFLOAD" = on ]; then
        [ $gso -gt 0 ] || { note "offloads on, but no TSO6 super-packet came from the server"; return 1; }
    else
        [ $gso = 0 ] || { note "offloads off, but $gso super-packets came in"; return 1; }
    fi
    # Tracked as an IPv6 flow, torn down by FIN, ASSURED.
    wait_until eval "tunfw_ctl flows | grep -Fq '[$SERVER6]:8080' && tunfw_ctl flows | grep -F '[$SERVER6]:8080' | grep -Eq '^tcp +TIME_WAIT .*ASSURED'" ||
        { note "no IPv6 TIME_WAIT ASSURED flow:"; tunfw_ctl flows | sed 's/^/    /'; return 1; }
    note "sha256 $got, $(($(ctr forwarded.wan) - fwd_before)) packets ($gso super-packets) forwarded server->client"
}

t6_tcp_server_initiated_blocked() {
    local before=$(ctr drop.policy_inbound) out
    out=$(in_server timeout 5 socat -T2 - TCP6:[$CLIENT6]:7000,connect-timeout=2 </dev/null 2>&1)
    [ "$out" != client-secret ] || { note "server reached the client"; return 1; }
    wait_grew drop.policy_inbound "$before"
}

# --- UDP -----------------------------------------------------------------------
t6_udp_query_answered() {
    local before=$(rule_pkts inbound udp-in) out
    out=$(echo hello-udp6 | in_client timeout 5 socat -T2 - UDP6:[$SERVER6]:5000)
    [ "$out" = hello-udp6 ] || { note "got '$out'"; return 1; }
    [ "$(rule_pkts inbound udp-in)" -gt "$before" ] || { note "udp-in rule did not count the reply"; return 1; }
    tunfw_ctl flows | grep -Fq "[$SERVER6]:5000" || { note "no IPv6 UDP flow tracked"; return 1; }
}

t6_udp_server_initiated_blocked() {
    local before=$(ctr drop.policy_inbound) got="$V6_DIR/udp-intrusion"
    : >"$got"
    bg in_client socat -u UDP6-RECV:6060,bind=[$CLIENT6],reuseaddr OPEN:"$got",append
    wait_until listening_on "$NS_CLIENT" -u $CLIENT6 6060 || return 1
    echo intruder | in_server socat -u - UDP6-SENDTO:[$CLIENT6]:6060
    wait_grew drop.policy_inbound "$before" || return 1
    [ ! -s "$got" ] || { note "client received: $(cat "$got")"; return 1; }
}

# A closed server port answers ICMPv6 port unreachable (type 1 code 4), which
# tunfw lets in as RELATED (logged by icmpv6-in in v6-log.ron); the client
# sees "connection refused".
t6_udp_closed_port_unreachable_related() {
    local before=$(rule_pkts inbound icmpv6-in) lines=$(log_lines) err rc=0
    err=$(echo x | in_client timeout 5 socat -T3 - UDP6:[$SERVER6]:9999 2>&1) || rc=$?
    grep -qi "refused" <<<"$err" || { note "socat rc=$rc: $err"; return 1; }
    [ "$(rule_pkts inbound icmpv6-in)" -gt "$before" ] || { note "icmpv6-in did not count the error"; return 1; }
    wait_until eval "log_since $lines | grep -q 'accept rule=icmpv6-in dir=inbound state=RELATED icmpv6 $SERVER6 -> $CLIENT6 .*type 1/4'" ||
        { note "no RELATED log line for the port unreachable:"; log_since "$lines" | sed 's/^/    /'; return 1; }
}

# --- hop limit -------------------------------------------------------------------
# v6-log.ron: tunfw answers hop limit 1 itself from router.lan6; the server
# (forwarding) answers the next, the router the port unreachable.
t6_traceroute_through_tunfw() {
    local out hops before_ttl=$(ctr drop.ttl_exceeded) before_sent=$(ctr sent.icmp)
    out=$(in_client traceroute -6 -n -q 1 -w 2 -m 6 $ROUTER6 2>&1) || { note "$out"; return 1; }
    hops=$(awk 'NR > 1 { printf "%s ", $2 }' <<<"$out")
    [ "$hops" = "$TUNFW_LAN6 $SERVER6 $ROUTER6 " ] || { note "hops: $hops"; note "$out"; return 1; }
    grew drop.ttl_exceeded "$before_ttl" || { note "ttl_exceeded not counted"; return 1; }
    grew sent.icmp "$before_sent" || { note "sent.icmp did not grow"; return 1; }
    note "hops: $hops"
}

# --- path MTU ---------------------------------------------------------------------
# v6_upload PORT SECS: 1 MiB from the client to a listener on [$ROUTER6]:PORT
# (behind the server's MTU 1280 link); 0 if it all arrived within SECS seconds.
v6_upload() {
    local port=$1 secs=$2 got="$V6_DIR/upload.got" rpid cpid rc=0
    [ -s "$V6_DIR/upload.blob" ] || head -c 1048576 /dev/urandom >"$V6_DIR/upload.blob"
    rm -f "$got"
    in_router timeout "$secs" socat -u TCP6-LISTEN:$port,bind=[$ROUTER6],reuseaddr CREATE:"$got" &
    rpid=$!
    wait_until listening_on "$NS_ROUTER" -t $ROUTER6 $port || { kill $rpid; return 1; }
    in_client timeout "$secs" socat -u OPEN:"$V6_DIR/upload.blob" TCP6:[$ROUTER6]:$port 2>/dev/null &
    cpid=$!
    # The listener ends at the sender's FIN (all data in) or at its timeout.
    wait $rpid || rc=$?
    kill $cpid 2>/dev/null
    wait $cpid 2>/dev/null
    note "upload: $(stat -c %s "$got" 2>/dev/null || echo 0) of 1048576 bytes arrived (listener rc=$rc)"
    [ $rc = 0 ] && cmp -s "$got" "$V6_DIR/upload.blob"
}

# The client's route to the router has learnt the path MTU 1280.
client_pmtu_1280() { in_client ip -6 route get $ROUTER6 | grep -q " mtu 1280 "; }

# The client's 1500-byte segments do not fit the server's MTU 1280 link; the
# server answers ICMPv6 packet too big (type 2), tunfw lets it in as RELATED
# (its log line), the client lowers its path MTU and the upload completes.
t6_pmtu_upload_completes_related() {
    local lines=$(log_lines) before=$(rule_pkts inbound icmpv6-in)
    ! client_pmtu_1280 || { note "the client knew the path MTU before the upload"; return 1; }
    v6_upload 7106 15 || return 1
    client_pmtu_1280 || { note "the client did not learn the path MTU"; return 1; }
    [ "$(rule_pkts inbound icmpv6-in)" -gt "$before" ] || { note "icmpv6-in did not count the packet too big"; return 1; }
    wait_until eval "log_since $lines | grep -q 'accept rule=icmpv6-in dir=inbound state=RELATED icmpv6 $SERVER6 -> $CLIENT6 .*type 2/0'" ||
        { note "no RELATED log line for the packet too big:"; log_since "$lines" | sed 's/^/    /'; return 1; }
    log_since "$lines" | grep "type 2/0" | head -1 | sed 's/^/    /'
}

# v6-norel.ron: the packet too big (still RELATED) meets no rule and the
# inbound policy drops it: the client never learns the path MTU and the upload
# stalls (bounded wait: 4 s).
t6_pmtu_upload_stalls_without_related() {
    local lines=$(log_lines) before=$(ctr drop.policy_inbound)
    ! client_pmtu_1280 || { note "the client knew the path MTU before the upload"; return 1; }
    ! v6_upload 7107 4 || { note "the upload completed"; return 1; }
    grew drop.policy_inbound "$before" || { note "drop not counted"; return 1; }
    ! client_pmtu_1280 || { note "the client learnt the path MTU"; return 1; }
    wait_until eval "log_since $lines | grep -q 'drop reason=policy_inbound rule=policy dir=inbound state=RELATED icmpv6 $SERVER6 -> $CLIENT6 .*type 2/0'" ||
        { note "no log line of a dropped RELATED packet too big:"; log_since "$lines" | sed 's/^/    /'; return 1; }
    log_since "$lines" | grep "type 2/0" | head -1 | sed 's/^/    /'
}

# --- forged error --------------------------------------------------------------------
t6_forged_icmpv6_error_dropped() {
    local before_inv=$(ctr invalid.icmp_error_no_flow) before_drop=$(ctr drop.policy_inbound)
    in_server python3 "$HERE/forge_icmp.py" $CLIENT6 $CLIENT6 $SERVER6 33333 44444 || return 1
    wait_grew invalid.icmp_error_no_flow "$before_inv" && wait_grew drop.policy_inbound "$before_drop"
}

# --- ipv6: Drop / Pass -------------------------------------------------------------------
# v6-drop.ron: every IPv6 packet is dropped (drop.ipv6_disabled), IPv4 still
# passes; reloaded to ipv6: Track, the same ping passes.
t6_mode_drop() {
    local before=$(ctr drop.ipv6_disabled)
    ! in_client ping -6 -c 3 -i 0.2 -W 1 $SERVER6 >/dev/null || { note "ping -6 passed"; return 1; }
    [ $(($(ctr drop.ipv6_disabled) - before)) -ge 3 ] || { note "drop.ipv6_disabled did not count 3 drops"; return 1; }
    in_client ping -c 1 -W 2 $SERVER_IP >/dev/null || { note "IPv4 did not pass"; return 1; }
    tunfw_ctl reload "$ROOT/config/default.ron" >/dev/null || return 1
    in_client ping -6 -c 1 -W 2 $SERVER6 >/dev/null || { note "ping -6 failed after the reload to ipv6: Track"; return 1; }
    note "drop.ipv6_disabled $before -> $(ctr drop.ipv6_disabled)"
}

# v6-pass.ron: IPv6 forwarded untracked and unfiltered: the server's ping
# (blocked when tracked) passes, no flow is made, no rule counts it.
t6_mode_pass() {
    local fwd=$(ctr forwarded.wan) rules_before before
    rules_before=$(tunfw_ctl rules | awk '{ print $3 }')
    in_server ping -6 -c 2 -i 0.2 -W 2 $CLIENT6 >/dev/null || { note "ping -6 server->client blocked"; return 1; }
    [ $(($(ctr forwarded.wan) - fwd)) -ge 2 ] || { note "forwarded.wan did not grow by 2"; return 1; }
    [ "$(tunfw_ctl rules | awk '{ print $3 }')" = "$rules_before" ] || { note "a rule counted the packets"; return 1; }
    ! tunfw_ctl flows | grep -q "$CLIENT6" || { note "IPv6 tracked with ipv6: Pass"; tunfw_ctl flows | sed 's/^/    /'; return 1; }
    tunfw_ctl reload "$ROOT/config/default.ron" >/dev/null || return 1
    before=$(ctr drop.policy_inbound)
    ! in_server ping -6 -c 1 -W 1 $CLIENT6 >/dev/null || { note "ping -6 passed after the reload to ipv6: Track"; return 1; }
    grew drop.policy_inbound "$before" || { note "drop not counted after the reload"; return 1; }
}

# --- tunfw stopped ------------------------------------------------------------------------
# Nothing IPv6 passes either, while the addresses, routes and servers are still there.
t6_stopped_nothing_passes() {
    local out
    ip -n "$NS_CLIENT" -6 addr show dev tfw-lan | grep -q "inet6 $CLIENT6/64" &&
        ip -n "$NS_SERVER" -6 addr show dev tfw-wan | grep -q "inet6 $SERVER6/64" || { note "addresses gone"; return 1; }
    listening_on "$NS_SERVER" -t $SERVER6 8080 && listening_on "$NS_SERVER" -u $SERVER6 5000 || { note "servers gone"; return 1; }
    ! in_client ping -6 -c 1 -W 1 $SERVER6 >/dev/null || { note "ping -6 passed"; return 1; }
    ! in_client curl -6 -g -s --max-time 2 -o /dev/null "http://[$SERVER6]:8080/blob" || { note "http passed"; return 1; }
    out=$(echo hello-udp6 | in_client timeout 3 socat -T1 - UDP6:[$SERVER6]:5000 2>/dev/null)
    [ -z "$out" ] || { note "udp answered"; return 1; }
}

ipv6_fail() { FAILED=$((FAILED + 1)); echo "FAIL $1"; }

ipv6_suite() {
    v6_configs && ftp_configs || { ipv6_fail ipv6_configs; return; }
    echo "== IPv6, default config (embedded)"
    tunfw_start "" && v6_servers_start || { ipv6_fail ipv6_start; return; }
    check ipv6_ping_client_to_server t6_ping_client_to_server
    check ipv6_ping_server_to_client_blocked t6_ping_server_to_client_blocked
    check ipv6_http_download_1MiB_sha256 t6_http_download
    check ipv6_tcp_server_initiated_blocked t6_tcp_server_initiated_blocked
    check ipv6_udp_query_answered t6_udp_query_answered
    check ipv6_udp_server_initiated_blocked t6_udp_server_initiated_blocked
    check ipv6_forged_icmpv6_error_dropped_invalid t6_forged_icmpv6_error_dropped

    echo "== IPv6, test config (router lan6/wan6), icmpv6-in logged"
    tunfw_start "$V6_DIR/v6-log.ron" || { ipv6_fail ipv6_start_log; return; }
    check ipv6_udp_closed_port_unreachable_related t6_udp_closed_port_unreachable_related
    check ipv6_traceroute_shows_tunfw_server_router t6_traceroute_through_tunfw
    check ipv6_pmtu_upload_1MiB_packet_too_big_related t6_pmtu_upload_completes_related

    echo "== IPv6, RELATED ICMPv6 not accepted inbound"
    tunfw_start "$V6_DIR/v6-norel.ron" || { ipv6_fail ipv6_start_norel; return; }
    check ipv6_pmtu_upload_stalls_without_related t6_pmtu_upload_stalls_without_related

    echo "== IPv6 FTP (vsftpd listen_ipv6), default config"
    ftp_restart "" 6 || { ipv6_fail ipv6_ftp_start; return; }
    check ipv6_ftp_passive_epsv_related t_ftp_passes_related epsv 6
    check ipv6_ftp_active_eprt_related t_ftp_passes_related eprt 6
    echo "== IPv6 FTP, strict rules (no generic TCP), helper on"
    ftp_restart "$TOPO_DIR/strict.ron" 6 || { ipv6_fail ipv6_ftp_start; return; }
    check ipv6_ftp_strict_passive_epsv_related t_ftp_passes_related epsv 6
    check ipv6_ftp_strict_active_eprt_related t_ftp_passes_related eprt 6
    echo "== IPv6 FTP, strict rules, helper off"
    ftp_restart "$TOPO_DIR/strict-off.ron" 6 || { ipv6_fail ipv6_ftp_start; return; }
    check ipv6_ftp_strict_nohelper_passive_epsv_blocked t_ftp_blocked epsv drop.policy_outbound 6
    check ipv6_ftp_strict_nohelper_active_eprt_blocked t_ftp_blocked eprt drop.policy_inbound 6
    ftp_server_stop

    echo "== ipv6: Drop"
    tunfw_start "$V6_DIR/v6-drop.ron" || { ipv6_fail ipv6_start_drop; return; }
    check ipv6_mode_drop_drops_all_ipv6 t6_mode_drop
    echo "== ipv6: Pass"
    tunfw_start "$V6_DIR/v6-pass.ron" || { ipv6_fail ipv6_start_pass; return; }
    check ipv6_mode_pass_forwards_untracked t6_mode_pass
}
