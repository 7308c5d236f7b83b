# FTP checks for netns-tests/run.sh (sourced): vsftpd in the server namespace,
# curl and a scripted control session (ftp_session.py) in the client namespace.

FTP_DIR=$TOPO_DIR/ftp
FTP_PID=

ftp_configs() {
    local d=$ROOT/config/default.ron
    sed 's/ftp: (ports: "21", expectation_timeout: 300, max_control_flows: 4096),/ftp: None,/' "$d" >"$TOPO_DIR/ftp-off.ron"
    # Strict: the seed firewall without its generic TCP rules, so that FTP
    # data connections pass only as RELATED (or ESTABLISHED).
    grep -v -e 'name: "tcp-out"' -e 'name: "tcp-in"' "$d" >"$TOPO_DIR/strict.ron"
    grep -v -e 'name: "tcp-out"' -e 'name: "tcp-in"' "$TOPO_DIR/ftp-off.ron" >"$TOPO_DIR/strict-off.ron"
    local f
    for f in ftp-off strict strict-off; do
        if cmp -s "$d" "$TOPO_DIR/$f.ron" || ! "$TUNFW_BIN" --check --config "$TOPO_DIR/$f.ron" >/dev/null; then
            echo "could not derive $f.ron from config/default.ron" >&2
            return 1
        fi
    done
    [ "$(grep -c 'name: "tcp-' "$TOPO_DIR/strict-off.ron")" = 0 ] && grep -q 'ftp: None' "$TOPO_DIR/strict-off.ron"
}

# ftp_server_start [6]: vsftpd on $SERVER_IP:21 (6: on [$SERVER6]:21, listen_ipv6).
ftp_server_start() {
    local listen="listen=YES
listen_ipv6=NO
listen_address=$SERVER_IP" addr=$SERVER_IP
    if [ "${1:-}" = 6 ]; then
        listen="listen=NO
listen_ipv6=YES
listen_address6=$SERVER6"
        addr=$SERVER6
    fi
    ftp_server_stop
    mkdir -p "$FTP_DIR/root" "$FTP_DIR/empty"
    chmod 755 "$FTP_DIR" "$FTP_DIR/root" "$FTP_DIR/empty"
    [ -f "$FTP_DIR/root/blob" ] || { head -c 1048576 /dev/urandom >"$FTP_DIR/root/blob"; chmod 644 "$FTP_DIR/root/blob"; }
    cat >"$FTP_DIR/vsftpd.conf" <<CONF
$listen
background=NO
anonymous_enable=YES
anon_root=$FTP_DIR/root
no_anon_password=YES
local_enable=NO
write_enable=NO
connect_from_port_20=YES
secure_chroot_dir=$FTP_DIR/empty
connect_timeout=3
accept_timeout=10
data_connection_timeout=10
idle_session_timeout=60
seccomp_sandbox=NO
pasv_enable=YES
port_enable=YES
pasv_min_port=30000
pasv_max_port=30999
CONF
    in_server vsftpd "$FTP_DIR/vsftpd.conf" >"$FTP_DIR/vsftpd.out" 2>&1 &
    FTP_PID=$!
    BG_PIDS+=($FTP_PID)
    wait_until listening_on "$NS_SERVER" -t "$addr" 21
}

ftp_server_stop() {
    [ -n "$FTP_PID" ] && kill "$FTP_PID" 2>/dev/null && wait "$FTP_PID" 2>/dev/null
    FTP_PID=
}

# ftp_restart CONFIG [6]: tunfw on CONFIG, vsftpd (re)started on the re-wired
# topology (6: on the server's IPv6 address).
ftp_restart() {
    tunfw_start "$1" && ftp_server_start "${2:-}"
}

# ftp_get MODE [6]: fetch the 1 MiB file with curl in MODE (epsv, pasv, eprt,
# port; over IPv6 only epsv and eprt, which names the client's IPv6 address);
# 0 if it arrived intact.
ftp_get() {
    local args=() url="ftp://$SERVER_IP/blob"
    case $1 in
    epsv) ;;
    pasv) args=(--disable-epsv) ;;
    eprt) args=(--ftp-port -) ;;
    port) args=(--ftp-port - --disable-eprt) ;;
    esac
    if [ "${2:-}" = 6 ]; then
        url="ftp://[$SERVER6]/blob"
        [ "$1" = eprt ] && args=(--ftp-port "$CLIENT6")
    fi
    rm -f "$FTP_DIR/got"
    in_client curl -sS -g --connect-timeout 3 --max-time 12 "${args[@]}" -o "$FTP_DIR/got" \
        "$url" 2>"$FTP_DIR/curl.err" || return 1
    cmp -s "$FTP_DIR/got" "$FTP_DIR/root/blob"
}

# t_ftp_passes_related MODE [6]: the transfer works, and its data connection
# used an expectation (RELATED).
t_ftp_passes_related() {
    local before=$(ctr expect.used)
    ftp_get "$1" "${2:-}" || { note "curl: $(cat "$FTP_DIR/curl.err")"; return 1; }
    grew expect.used "$before" || { note "no expectation was used"; return 1; }
}

# The transfer works without any expectation (helper off; the data SYN is NEW).
t_ftp_passes_unrelated() {
    local before=$(ctr expect.created)
    ftp_get "$1" || { note "curl: $(cat "$FTP_DIR/curl.err")"; return 1; }
    [ "$(ctr expect.created)" = "$before" ] || { note "an expectation was created with the helper off"; return 1; }
}

# Packets the inbound rules that carry the server's control replies accepted
# (tcp-in, or ftp-control-in where there is no tcp-in).
control_replies() {
    tunfw_ctl rules | awk '$1 == "inbound" && ($5 == "tcp-in" || $5 == "ftp-control-in") { n += $3 } END { print n + 0 }'
}

# t_ftp_blocked MODE COUNTER [6]: the transfer fails, and tunfw dropped the
# data connection (COUNTER grew), while the control session went on up to the
# transfer: the server's replies (220, 230, 257, 229 or 200, ...) came in.
# (A dropped control connection would grow COUNTER too.)
t_ftp_blocked() {
    local mode=$1 counter=$2 before control
    before=$(ctr "$counter")
    control=$(control_replies)
    ! ftp_get "$mode" "${3:-}" || { note "transfer succeeded"; return 1; }
    grew "$counter" "$before" || { note "$counter did not grow"; return 1; }
    [ $(($(control_replies) - control)) -ge 4 ] ||
        { note "the control session did not get through: $(cat "$FTP_DIR/curl.err")"; return 1; }
}

session_dir() {
    local d=$TOPO_DIR/session-$1
    rm -rf "$d"
    mkdir -p "$d"
    echo "$d"
}

# A connection from port 20 to a client port nobody announced is blocked; the
# announced one passes (RELATED). Default config, helper on.
t_ftp_port20_unannounced_blocked() {
    local d ok=0 before
    d=$(session_dir port20)
    bg in_client socat -u TCP4-LISTEN:41001,bind=$CLIENT_IP,reuseaddr OPEN:"$d/announced",creat
    bg in_client socat -u TCP4-LISTEN:41002,bind=$CLIENT_IP,reuseaddr OPEN:"$d/unannounced",creat
    wait_until listening "$NS_CLIENT" -t 41001 && wait_until listening "$NS_CLIENT" -t 41002 || return 1
    bg in_client python3 "$HERE/ftp_session.py" announce $SERVER_IP $CLIENT_IP 41001 "$d"
    wait_until test -f "$d/reply" || { note "no PORT reply"; return 1; }
    grep -q '^200' "$d/reply" || { note "PORT reply: $(cat "$d/reply")"; return 1; }
    before=$(ctr drop.policy_inbound)
    echo intruder | in_server timeout 5 socat -u - TCP4:$CLIENT_IP:41002,sourceport=20,reuseaddr,connect-timeout=2 2>/dev/null && ok=1
    [ $ok = 0 ] || { note "unannounced port reached"; touch "$d/done"; return 1; }
    grew drop.policy_inbound "$before" || { note "drop not counted"; touch "$d/done"; return 1; }
    echo expected | in_server timeout 5 socat -u - TCP4:$CLIENT_IP:41001,sourceport=20,reuseaddr,connect-timeout=2 ||
        { note "announced port not reachable"; touch "$d/done"; return 1; }
    touch "$d/done"
    wait_until grep -q expected "$d/announced" || { note "announced data did not arrive"; return 1; }
}

# PORT naming another address than the client's opens nothing (FTP bounce).
t_ftp_port_other_address_opens_nothing() {
    local d before_ref before_exp before_drop ok=0
    d=$(session_dir bounce)
    bg in_client socat -u TCP4-LISTEN:41003,bind=$CLIENT_IP,reuseaddr OPEN:"$d/got",creat
    wait_until listening "$NS_CLIENT" -t 41003 || return 1
    before_ref=$(ctr ftp.refused_address)
    before_exp=$(ctr expect.created)
    bg in_client python3 "$HERE/ftp_session.py" announce $SERVER_IP 10.201.1.99 41003 "$d"
    wait_until test -f "$d/reply" || { note "no PORT reply"; return 1; }
    grew ftp.refused_address "$before_ref" || { note "refusal not counted"; touch "$d/done"; return 1; }
    [ "$(ctr expect.created)" = "$before_exp" ] || { note "an expectation was created"; touch "$d/done"; return 1; }
    before_drop=$(ctr drop.policy_inbound)
    echo intruder | in_server timeout 5 socat -u - TCP4:$CLIENT_IP:41003,sourceport=20,reuseaddr,connect-timeout=2 2>/dev/null && ok=1
    touch "$d/done"
    [ $ok = 0 ] || { note "connection from port 20 passed"; return 1; }
    grew drop.policy_inbound "$before_drop"
}

# After PASV, a connection to another server port is not RELATED (strict config:
# it is dropped), while the announced port works.
t_ftp_pasv_other_port_not_related() {
    local d port before ok=0
    d=$(session_dir pasv)
    bg in_server socat -u TCP4-LISTEN:31500,bind=$SERVER_IP,reuseaddr,fork OPEN:/dev/null
    wait_until listening "$NS_SERVER" -t 31500 || return 1
    bg in_client python3 "$HERE/ftp_session.py" pasv $SERVER_IP "$d"
    wait_until test -f "$d/pasv_port" || { note "no PASV reply"; return 1; }
    port=$(cat "$d/pasv_port")
    [ "$port" != 31500 ] || { note "vsftpd announced the decoy port"; touch "$d/done"; return 1; }
    before=$(ctr drop.policy_outbound)
    in_client timeout 5 socat -u /dev/null TCP4:$SERVER_IP:31500,connect-timeout=2 2>/dev/null && ok=1
    [ $ok = 0 ] || { note "unannounced server port reached"; touch "$d/done"; return 1; }
    grew drop.policy_outbound "$before" || { note "drop not counted"; touch "$d/done"; return 1; }
    in_client timeout 5 socat -u /dev/null TCP4:$SERVER_IP:$port,connect-timeout=2 ||
        { note "announced port $port not reachable"; touch "$d/done"; return 1; }
    touch "$d/done"
}

# scripted_retr SESSION COUNTER: run an ftp_session.py RETR session (strict
# config: the active transfer works only as RELATED), compare the file, and
# require tunfw's COUNTER to grow (no COUNTER: no counter check).
scripted_retr() {
    local d before want
    d=$(session_dir "$1")
    [ -z "$2" ] || before=$(ctr "$2")
    in_client timeout 30 python3 "$HERE/ftp_session.py" "$1" $SERVER_IP $CLIENT_IP blob "$d" ||
        { note "session failed"; return 1; }
    want=$(sha256sum <"$FTP_DIR/root/blob" | cut -d' ' -f1)
    [ "$(cat "$d/sha256")" = "$want" ] || { note "sha256 mismatch"; return 1; }
    [ -z "$2" ] || grew "$2" "$before" || { note "counter $2 did not grow"; return 1; }
}

# A PORT command split across two segments: tunfw keeps the first piece and
# parses the line when the second arrives (ftp.split_commands).
t_ftp_split_port_command() { scripted_retr split-retr ftp.split_commands; }

# One write of a NOOP line exactly one MSS long and a PORT line behind it.
# With offloads the client's TCP hands tunfw one super-packet; tunfw cuts it
# into its two segments for the helper (offload.resegmented), which sees the
# PORT line start the second one, as on the wire. Inspected as one packet,
# the PORT line would be missed and the active transfer blocked.
t_ftp_port_behind_full_segment() {
    if [ "$OFFLOAD" = on ]; then
        scripted_retr super-retr offload.resegmented
    else
        scripted_retr super-retr ""
    fi
}

ftp_suite() {
    ftp_configs || { FAILED=$((FAILED + 1)); echo "FAIL ftp_configs"; return; }

    echo "== FTP, default config (helper on port 21)"
    ftp_restart "" || { FAILED=$((FAILED + 1)); echo "FAIL ftp_start"; return; }
    check ftp_passive_epsv_related t_ftp_passes_related epsv
    check ftp_passive_pasv_related t_ftp_passes_related pasv
    check ftp_active_eprt_related t_ftp_passes_related eprt
    check ftp_active_port_related t_ftp_passes_related port
    check ftp_port20_to_unannounced_port_blocked t_ftp_port20_unannounced_blocked
    check ftp_port_naming_other_address_opens_nothing t_ftp_port_other_address_opens_nothing

    echo "== FTP, default rules, helper off"
    ftp_restart "$TOPO_DIR/ftp-off.ron" || { FAILED=$((FAILED + 1)); echo "FAIL ftp_start"; return; }
    check ftp_nohelper_passive_epsv_passes_as_new t_ftp_passes_unrelated epsv
    check ftp_nohelper_passive_pasv_passes_as_new t_ftp_passes_unrelated pasv
    check ftp_nohelper_active_eprt_blocked t_ftp_blocked eprt drop.policy_inbound
    check ftp_nohelper_active_port_blocked t_ftp_blocked port drop.policy_inbound

    echo "== FTP, strict rules (no generic TCP), helper on"
    ftp_restart "$TOPO_DIR/strict.ron" || { FAILED=$((FAILED + 1)); echo "FAIL ftp_start"; return; }
    check ftp_strict_passive_epsv_related t_ftp_passes_related epsv
    check ftp_strict_passive_pasv_related t_ftp_passes_related pasv
    check ftp_strict_active_eprt_related t_ftp_passes_related eprt
    check ftp_strict_active_port_related t_ftp_passes_related port
    check ftp_strict_pasv_other_port_not_related t_ftp_pasv_other_port_not_related
    check ftp_strict_split_port_command t_ftp_split_port_command
    check ftp_strict_port_behind_full_segment t_ftp_port_behind_full_segment

    echo "== FTP, strict rules, helper off"
    ftp_restart "$TOPO_DIR/strict-off.ron" || { FAILED=$((FAILED + 1)); echo "FAIL ftp_start"; return; }
    check ftp_strict_nohelper_passive_epsv_blocked t_ftp_blocked epsv drop.policy_outbound
    check ftp_strict_nohelper_passive_pasv_blocked t_ftp_blocked pasv drop.policy_outbound
    check ftp_strict_nohelper_active_eprt_blocked t_ftp_blocked eprt drop.policy_inbound
    check ftp_strict_nohelper_active_port_blocked t_ftp_blocked port drop.policy_inbound
    ftp_server_stop
}
