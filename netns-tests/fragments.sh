#!/usr/bin/env bash
# Fragment checks of the netns suite (sourced by run.sh): datagrams larger
# than the TUN MTU cross tunfw in fragments, which tunfw reassembles before
# tracking (the rules see ports) and cuts again on output. Every check also
# reads tunfw's reassembly counters, so a datagram that went round tunfw
# (it cannot: tunfw is the only hop) or was never fragmented fails it.

# An echo server for UDP datagrams of any size (socat's 8 KiB buffer would
# cut a 60,000-byte one), on both families.
frag_servers_start() {
    local addr
    for addr in "$SERVER_IP" "$SERVER6"; do
        bg in_server python3 -c '
import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a, 5151))
while True:
    d, peer = s.recvfrom(70000)
    s.sendto(d, peer)
' "$addr"
    done
    # A TCP port for the fragmented SYN scans to find open (port 9 is closed).
    bg in_server socat TCP4-LISTEN:5153,bind=$SERVER_IP,reuseaddr,fork EXEC:true
    bg in_server socat TCP6-LISTEN:5153,bind=[$SERVER6],reuseaddr,fork EXEC:true
    wait_until listening_on "$NS_SERVER" -u "$SERVER_IP" 5151 && wait_until listening_on "$NS_SERVER" -u "$SERVER6" 5151 &&
        wait_until listening_on "$NS_SERVER" -t "$SERVER_IP" 5153 && wait_until listening_on "$NS_SERVER" -t "$SERVER6" 5153
}

# tf_ping FAMILY SIZE: ping -s SIZE crosses tunfw, reassembled both ways.
tf_ping() {
    local fam=$1 size=$2 dst=$SERVER_IP before=$(ctr defrag.reassembled) out=$(ctr defrag.fragments_out.lan)
    [ "$fam" = 6 ] && dst=$SERVER6
    in_client ping -"$fam" -c 2 -i 0.3 -W 2 -s "$size" "$dst" >/dev/null || { note "ping -s $size failed"; return 1; }
    [ $(($(ctr defrag.reassembled) - before)) -ge 4 ] || { note "defrag.reassembled grew by less than 4"; return 1; }
    [ "$(ctr defrag.fragments_out.lan)" -gt "$out" ] || { note "no fragments written towards the server"; return 1; }
}

# tf_udp FAMILY SIZE: a SIZE-byte UDP datagram is answered whole (sha256).
tf_udp() {
    local fam=$1 size=$2 dst=$SERVER_IP before=$(ctr defrag.reassembled)
    [ "$fam" = 6 ] && dst=$SERVER6
    in_client python3 - "$dst" "$size" <<'PY' || return 1
import hashlib, os, socket, sys
dst, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
data = os.urandom(size)
for attempt in range(3):
    s.sendto(data, (dst, 5151))
    try:
        got = s.recv(70000)
        break
    except socket.timeout:
        got = b""
if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
    print(f"    got {len(got)} bytes of {size}")
    sys.exit(1)
PY
    [ $(($(ctr defrag.reassembled) - before)) -ge 2 ] || { note "defrag.reassembled grew by less than 2"; return 1; }
}

# tf_udp_intrusion FAMILY: a fragmented datagram the server starts is NEW
# inbound: the rules see its ports and the policy drops it, counted once.
tf_udp_intrusion() {
    local fam=$1 src=$SERVER_IP dst=$CLIENT_IP before=$(ctr drop.policy_inbound) re=$(ctr defrag.reassembled)
    local got="$TOPO_DIR/frag-intrusion-$fam"
    [ "$fam" = 6 ] && src=$SERVER6 dst=$CLIENT6
    : >"$got"
    bg in_client python3 -c '
import socket, sys
a, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a, 6161))
d = s.recv(70000)
open(out, "a").write(str(len(d)))
' "$dst" "$got"
    wait_until listening_on "$NS_CLIENT" -u "$dst" 6161 || return 1
    in_server python3 -c '
import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x" * 4000, (a, 6161))
' "$dst"
    wait_grew drop.policy_inbound "$before" || return 1
    [ "$(ctr defrag.reassembled)" -gt "$re" ] || { note "not reassembled: the rules did not see the datagram"; return 1; }
    [ $(($(ctr drop.policy_inbound) - before)) -eq 1 ] || { note "dropped more than once: $(($(ctr drop.policy_inbound) - before))"; return 1; }
    [ ! -s "$got" ] || { note "client received $(cat "$got") bytes"; return 1; }
}

# tf_frag_scan FAMILY: a fragmented SYN scan of an open and a closed port
# through tunfw sees them open and closed, not "filtered" (as when
# fragments were dropped): IPv4 `nmap -f -sS` (three fragments of 8 bytes
# a SYN), IPv6 frag_syn_scan.py (nmap refuses -f with -6). The SYNs crossed
# tunfw in fragments: each was reassembled; IPv4 ones were cut again towards
# the server (an IPv6 datagram no longer than its largest fragment leaves
# whole, as from Linux).
tf_frag_scan() {
    local fam=$1 re=$(ctr defrag.reassembled) fo=$(ctr defrag.fragments_out.lan) out
    if [ "$fam" = 4 ]; then
        out=$(in_client nmap -4 -n -Pn -f -sS --max-retries 2 -p 5153,9 $SERVER_IP 2>&1)
    else
        out=$(in_client python3 "$HERE/frag_syn_scan.py" tfw-lan $CLIENT6 $SERVER6 5153 9 2>&1)
    fi
    grep -Eq '^5153/tcp +open' <<<"$out" && grep -Eq '^9/tcp +closed' <<<"$out" ||
        { note "$out"; return 1; }
    [ $(($(ctr defrag.reassembled) - re)) -ge 2 ] || { note "defrag.reassembled grew by less than 2: the SYNs were not fragments"; return 1; }
    [ "$fam" = 6 ] || [ $(($(ctr defrag.fragments_out.lan) - fo)) -ge 4 ] || { note "the SYNs did not leave in fragments"; return 1; }
    note "$(grep -E '^[0-9]+/tcp' <<<"$out" | tr -s ' ' | paste -sd, -); $(($(ctr defrag.reassembled) - re)) SYNs reassembled"
}

fragments_suite() {
    echo "== fragments (reassembled before tracking, cut again on output)"
    tunfw_start "" && frag_servers_start || { FAILED=$((FAILED + 1)); echo "FAIL fragments_start"; return; }
    check frag_ping_3000_ipv4 tf_ping 4 3000
    check frag_ping_20000_ipv4 tf_ping 4 20000
    check frag_ping_3000_ipv6 tf_ping 6 3000
    check frag_ping_20000_ipv6 tf_ping 6 20000
    check frag_udp_4000_answered_ipv4 tf_udp 4 4000
    check frag_udp_60000_answered_ipv4 tf_udp 4 60000
    check frag_udp_4000_answered_ipv6 tf_udp 6 4000
    check frag_udp_60000_answered_ipv6 tf_udp 6 60000
    check frag_udp_server_initiated_blocked_ipv4 tf_udp_intrusion 4
    check frag_udp_server_initiated_blocked_ipv6 tf_udp_intrusion 6
    check frag_syn_scan_open_closed_ipv4_nmap tf_frag_scan 4
    check frag_syn_scan_open_closed_ipv6 tf_frag_scan 6
}
