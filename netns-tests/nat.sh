# NAT checks (sourced by run.sh): the LAN masqueraded behind tunfw's WAN
# address, which the server and the router have no route back around: the
# suite removes their routes to the client's network, so every answer
# reaches the client only through tunfw's translation. Port 8080 of the WAN
# address is forwarded to the client's TCP service on port 7000.

NAT_CONFIG=$TOPO_DIR/nat.ron
MASQ_IP=$TUNFW_WAN_IP
CLIENT2_IP=10.201.1.3
# A LAN address two digits longer than the masquerade address: FTP lines
# naming it are rewritten to another length (sequence adjustment).
LONG_IP=10.201.1.100

# The test config (router addresses) with a nat section and the forward's
# inbound rule (the rules see the translated destination).
nat_config() {
    sed -e 's|^    outbound: (|    nat: (\n        source: [(out: Wan, src: "10.201.1.0/24", to: Masquerade)],\n        destination: [(from: Wan, proto: Tcp, dst: "'$MASQ_IP'", dport: "8080", to: "'$CLIENT_IP'", to_port: 7000), (from: Wan, proto: Tcp, dst: "'$MASQ_IP'", dport: "21", to: "'$LONG_IP'")],\n    ),\n    outbound: (|' \
        -e 's|^            (name: "udp-in", |            (name: "forward-in", proto: Tcp, dst: "'$CLIENT_IP'", dport: "7000", state: [New], action: Accept),\n            (name: "ftp-forward-in", proto: Tcp, dst: "'$LONG_IP'", dport: "21", state: [New], action: Accept),\n            (name: "ftp-forward-data-in", proto: Tcp, dst: "'$LONG_IP'", dport: "30000:30999", state: [Related], action: Accept),\n            (name: "udp-in", |' \
        "$TEST_CONFIG" >"$NAT_CONFIG"
    grep -q 'to: Masquerade' "$NAT_CONFIG" && grep -q 'name: "forward-in"' "$NAT_CONFIG" &&
        grep -q 'name: "ftp-forward-data-in"' "$NAT_CONFIG" && grep -q "to: \"$LONG_IP\")" "$NAT_CONFIG" &&
        "$TUNFW_BIN" --check --config "$NAT_CONFIG" >/dev/null
}

# Only tunfw's translation brings answers back: no route to the LAN past it.
nat_routes_off() {
    ip -n "$NS_SERVER" route del 10.201.1.0/24 2>/dev/null
    ip -n "$NS_ROUTER" route del 10.201.1.0/24 2>/dev/null
    in_client ip addr add $CLIENT2_IP/24 dev tfw-lan 2>/dev/null
    in_client ip addr add $LONG_IP/24 dev tfw-lan 2>/dev/null
    # Forget what the earlier checks taught the client about path MTUs.
    in_client sysctl -qw net.ipv4.route.flush=1
    ! in_server ip route get $CLIENT_IP 2>/dev/null | grep -q tfw-wan
}

nat_routes_on() {
    ip -n "$NS_ROUTER" route add 10.201.1.0/24 via $SERVER_ROUTER_SIDE_IP 2>/dev/null
    in_client ip addr del $CLIENT2_IP/24 dev tfw-lan 2>/dev/null
    in_client ip addr del $LONG_IP/24 dev tfw-lan 2>/dev/null
    true
}

nat_servers_start() {
    # Each answers with the address (TCP: and port) it saw the client at.
    bg in_server socat TCP4-LISTEN:7300,bind=$SERVER_IP,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR $SOCAT_PEERPORT'
    bg in_server socat UDP4-RECVFROM:7301,bind=$SERVER_IP,reuseaddr,fork SYSTEM:'read -r _; echo $SOCAT_PEERADDR'
    wait_until listening "$NS_SERVER" -t 7300 && wait_until listening "$NS_SERVER" -u 7301
}

t_nat_download_server_sees_masquerade() {
    local seen want got before
    before=$(ctr nat.mapped)
    seen=$(in_client timeout 5 socat -T2 - TCP4:$SERVER_IP:7300 </dev/null)
    [[ $seen == "$MASQ_IP "* ]] || { note "the server saw '$seen'"; return 1; }
    rm -f "$TOPO_DIR/nat.blob"
    in_client curl -sS --max-time 20 -o "$TOPO_DIR/nat.blob" http://$SERVER_IP:8080/blob || return 1
    want=$(sha256sum <"$TOPO_DIR/www/blob" | cut -d' ' -f1)
    got=$(sha256sum <"$TOPO_DIR/nat.blob" | cut -d' ' -f1)
    [ "$want" = "$got" ] || { note "sha256 differs"; return 1; }
    [ $(($(ctr nat.mapped) - before)) -ge 2 ] || { note "nat.mapped grew by less than 2"; return 1; }
    note "the server saw $seen; 1 MiB downloaded, sha256 ok"
}

t_nat_two_clients_one_source_port() {
    local a b
    a=$(in_client timeout 5 socat -T2 - TCP4:$SERVER_IP:7300,bind=$CLIENT_IP:41000,reuseaddr </dev/null)
    b=$(in_client timeout 5 socat -T2 - TCP4:$SERVER_IP:7300,bind=$CLIENT2_IP:41000,reuseaddr </dev/null)
    note "client $CLIENT_IP:41000 seen as $a, client $CLIENT2_IP:41000 seen as $b"
    [[ $a == "$MASQ_IP 41000" && $b == "$MASQ_IP "* && $a != "$b" ]]
}

t_nat_udp_query_answered() {
    local seen
    seen=$(echo query | in_client timeout 5 socat -T2 - UDP4:$SERVER_IP:7301)
    [ "$seen" = "$MASQ_IP" ] || { note "got '$seen'"; return 1; }
}

t_nat_pings_one_identifier_two_clients() {
    local a b
    in_client ping -q -c 5 -i 0.2 -W 2 -e 4242 -I $CLIENT_IP $SERVER_IP >"$TOPO_DIR/nat-ping1" 2>&1 &
    local p1=$!
    in_client ping -q -c 5 -i 0.2 -W 2 -e 4242 -I $CLIENT2_IP $SERVER_IP >"$TOPO_DIR/nat-ping2" 2>&1 &
    local p2=$!
    wait $p1 $p2
    a=$(grep -o '[0-9]* received' "$TOPO_DIR/nat-ping1" | cut -d' ' -f1)
    b=$(grep -o '[0-9]* received' "$TOPO_DIR/nat-ping2" | cut -d' ' -f1)
    note "identifier 4242 from both clients: ${a:-0}/5 and ${b:-0}/5 answered"
    [ "${a:-0}" = 5 ] && [ "${b:-0}" = 5 ]
}

# ping -s 3000 through masquerade: each echo leaves the client in fragments,
# which tunfw reassembles, translates once and cuts again, both ways.
t_nat_fragmented_ping() {
    local out before=$(ctr defrag.reassembled)
    out=$(in_client ping -q -c 3 -i 0.2 -W 2 -s 3000 $SERVER_IP 2>&1)
    grep -q ' 3 received' <<<"$out" || { note "$out"; return 1; }
    [ $(($(ctr defrag.reassembled) - before)) -ge 6 ] || { note "fewer than 6 datagrams reassembled"; return 1; }
}

t_nat_traceroute_shows_router() {
    local out hops before=$(ctr nat.errors_translated)
    out=$(in_client traceroute -n -q 1 -w 2 -m 6 $ROUTER_IP 2>&1) || { note "$out"; return 1; }
    hops=$(awk 'NR > 1 { printf "%s ", $2 }' <<<"$out")
    note "hops: $hops"
    [ "$hops" = "$TUNFW_LAN_IP $SERVER_IP $ROUTER_IP " ] || { note "$out"; return 1; }
    # The server's time exceeded and the router's port unreachable came
    # back through the translation.
    [ $(($(ctr nat.errors_translated) - before)) -ge 2 ] || { note "nat.errors_translated grew by less than 2"; return 1; }
}

t_nat_udp_closed_port_refused() {
    local out before=$(ctr nat.errors_translated)
    out=$(in_client timeout 5 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect((sys.argv[1], 5999))
s.send(b"anyone?")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
' $SERVER_IP 2>&1)
    [ "$out" = refused ] || { note "got '$out'"; return 1; }
    grew nat.errors_translated "$before" || { note "nat.errors_translated did not grow"; return 1; }
}

t_nat_port_forward_reaches_lan_service_only() {
    local out before
    out=$(in_server timeout 5 socat -T2 - TCP4:$MASQ_IP:8080 </dev/null)
    [ "$out" = client-secret ] || { note "through the forward: '$out'"; return 1; }
    for port in 8081 7000 22; do
        before=$(ctr drop.policy_inbound)
        out=$(in_server timeout 3 socat -T1 - TCP4:$MASQ_IP:$port,connect-timeout=1 </dev/null 2>/dev/null)
        [ -z "$out" ] || { note "port $port answered '$out'"; return 1; }
        grew drop.policy_inbound "$before" || { note "tunfw did not drop the probe of port $port (drop.policy_inbound)"; return 1; }
    done
    note "port 8080 answered '$(in_server timeout 5 socat -T2 - TCP4:$MASQ_IP:8080 </dev/null)'; 8081, 7000, 22 dropped by tunfw"
}

# t_nat_ftp MODE [SOURCE]: curl fetches the 1 MiB file from vsftpd on the
# server through masquerade in MODE (port, eprt: active; pasv, epsv:
# passive), its control connection from SOURCE (default the client's
# address); the file arrives intact, its data connection was expected and
# followed the control flow's translation, and for the active modes tunfw
# rewrote the announcement (vsftpd refuses a PORT naming an address other
# than the control connection's, which is the masquerade address). With
# SOURCE $LONG_IP the rewritten PORT line is two bytes shorter, and the rest
# of the control connection has its numbers moved (nat.seq_adjusted).
t_nat_ftp() {
    local mode=$1 src=${2:-} args=() before_used before_followed before_rewritten before_adjusted
    case $mode in
    pasv) args=(--disable-epsv) ;;
    eprt) args=(--ftp-port -) ;;
    port) args=(--ftp-port - --disable-eprt) ;;
    esac
    [ -n "$src" ] && args+=(--interface "$src")
    before_used=$(ctr expect.used)
    before_followed=$(ctr nat.followed)
    before_rewritten=$(ctr nat.ftp_rewritten)
    before_adjusted=$(ctr nat.seq_adjusted)
    rm -f "$FTP_DIR/got"
    in_client curl -sS --connect-timeout 3 --max-time 20 "${args[@]}" -o "$FTP_DIR/got" \
        "ftp://$SERVER_IP/blob" 2>"$FTP_DIR/curl.err" || { note "curl: $(cat "$FTP_DIR/curl.err")"; return 1; }
    cmp -s "$FTP_DIR/got" "$FTP_DIR/root/blob" || { note "the file differs"; return 1; }
    grew expect.used "$before_used" || { note "no expectation was used"; return 1; }
    grew nat.followed "$before_followed" || { note "the data connection did not follow the control flow's translation"; return 1; }
    case $mode in port | eprt) grew nat.ftp_rewritten "$before_rewritten" || { note "nothing rewritten"; return 1; } ;; esac
    if [ "$src" = "$LONG_IP" ]; then
        grew nat.seq_adjusted "$before_adjusted" || { note "no sequence adjustment"; return 1; }
    fi
    note "1 MiB intact; rewritten $(($(ctr nat.ftp_rewritten) - before_rewritten)), sequence-adjusted packets $(($(ctr nat.seq_adjusted) - before_adjusted))"
}

# vsftpd on the LAN, on $LONG_IP, behind the port forward of $MASQ_IP:21.
nat_ftp_lan_server_start() {
    mkdir -p "$FTP_DIR/lan"
    sed -e "s|^listen_address=.*|listen_address=$LONG_IP|" "$FTP_DIR/vsftpd.conf" >"$FTP_DIR/lan/vsftpd.conf"
    grep -q "listen_address=$LONG_IP" "$FTP_DIR/lan/vsftpd.conf" || return 1
    in_client vsftpd "$FTP_DIR/lan/vsftpd.conf" >"$FTP_DIR/lan/vsftpd.out" 2>&1 &
    NAT_FTP_LAN_PID=$!
    BG_PIDS+=($NAT_FTP_LAN_PID)
    wait_until listening_on "$NS_CLIENT" -t "$LONG_IP" 21
}

# Passive FTP from the WAN to the LAN server through the port forward: its
# 227 names $LONG_IP, rewritten to $MASQ_IP (two bytes shorter); curl is
# told to use that address (--no-ftp-skip-pasv-ip), which reaches the LAN
# server only through the expectation tunfw filed and translated.
t_nat_ftp_port_forward_passive() {
    local before_rewritten before_adjusted
    nat_ftp_lan_server_start || { note "vsftpd on $LONG_IP did not start"; return 1; }
    before_rewritten=$(ctr nat.ftp_rewritten)
    before_adjusted=$(ctr nat.seq_adjusted)
    rm -f "$FTP_DIR/got"
    in_server curl -sS --connect-timeout 3 --max-time 20 --disable-epsv --no-ftp-skip-pasv-ip \
        -o "$FTP_DIR/got" "ftp://$MASQ_IP/blob" 2>"$FTP_DIR/curl.err"
    local rc=$?
    kill "$NAT_FTP_LAN_PID" 2>/dev/null
    wait "$NAT_FTP_LAN_PID" 2>/dev/null
    [ $rc = 0 ] || { note "curl: $(cat "$FTP_DIR/curl.err")"; return 1; }
    cmp -s "$FTP_DIR/got" "$FTP_DIR/root/blob" || { note "the file differs"; return 1; }
    grew nat.ftp_rewritten "$before_rewritten" || { note "the 227 was not rewritten"; return 1; }
    grew nat.seq_adjusted "$before_adjusted" || { note "no sequence adjustment"; return 1; }
    note "1 MiB intact from the LAN server; 227 rewritten, sequence-adjusted packets $(($(ctr nat.seq_adjusted) - before_adjusted))"
}

nat_suite() {
    echo "== NAT (masquerade behind $MASQ_IP, port 8080 forwarded to the client's port 7000)"
    if ! nat_config || ! tunfw_start "$NAT_CONFIG" || ! nat_routes_off || ! nat_servers_start; then
        FAILED=$((FAILED + 1))
        echo "FAIL nat_start"
        nat_routes_on
        return
    fi
    check nat_masquerade_download_server_sees_masquerade t_nat_download_server_sees_masquerade
    check nat_two_clients_one_source_port_two_mappings t_nat_two_clients_one_source_port
    check nat_udp_query_answered t_nat_udp_query_answered
    check nat_two_pings_one_identifier_both_answered t_nat_pings_one_identifier_two_clients
    check nat_fragmented_ping_3000_both_ways t_nat_fragmented_ping
    check nat_traceroute_shows_router_behind_server t_nat_traceroute_shows_router
    check nat_udp_closed_port_connection_refused t_nat_udp_closed_port_refused
    check nat_pmtu_upload_1MiB_through_masquerade tf_pmtu_upload_ipv4
    check nat_port_forward_reaches_lan_service_only t_nat_port_forward_reaches_lan_service_only
    if ftp_server_start; then
        check nat_ftp_active_port_through_masquerade t_nat_ftp port
        check nat_ftp_active_port_line_shorter_seq_adjusted t_nat_ftp port "$LONG_IP"
        check nat_ftp_active_eprt_through_masquerade t_nat_ftp eprt
        check nat_ftp_passive_through_masquerade t_nat_ftp pasv
        check nat_ftp_passive_to_lan_server_through_port_forward t_nat_ftp_port_forward_passive
    else
        FAILED=$((FAILED + 1))
        echo "FAIL nat_ftp_server_start"
    fi
    ftp_server_stop
    nat_routes_on
}
