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
# tunfw in fragments: each was reassembled, and nmap's were cut again
# towards the server.
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

# --- a fragment attack from the WAN ------------------------------------------
# FRAG_ATTACK_SECS (default 20) of frag_attack.py from the server, at the
# client's addresses as fast as this machine sends: incomplete datagrams with
# fresh ids and tiny overlapping fragments, both families. Meanwhile the
# client pings the server (plain and -s 3000, both families: the fragmented
# replies must still meet in the reassembler, which evicts the attack's
# oldest queues to make room) and downloads the 1 MiB file over and over.
# Thresholds (below) come from measurements on the project's shared 2-core
# machine, with margin (README, "The netns suite").
FRAG_ATTACK_SECS=${FRAG_ATTACK_SECS:-20}
# The default config's reassembly cap (defrag.high_thresh, Linux's 4 MiB).
FRAG_CAP=4194304
# The attack waits in tfw-wan's fragment queue (the device's ninth, where
# tunfw's steering program sends fragments), whose ring (queue_len, 2048)
# it keeps full; the plain pings' replies and the download's segments wait
# in the packet queues, which tunfw reads as often. Answered at least (plain
# pings, -s 3000 pings), average RTT under. Measured: plain pings all
# answered. The fragmented replies share the full fragment ring with the
# attack, so how many find room depends on how much faster the attacker
# writes than tunfw reads: measured 33-48%, floor low; what tunfw decides is
# held exactly by the accounting of where each echo went (below): every
# request crossed tunfw and every reply it accepted reached the client.
# With eviction disabled no fragmented reply completes (0 of 64). Before the
# fragment queue (one ring for all) plain pings got 13-94%.
FRAG_ATTACK_PING_PCT=90
FRAG_ATTACK_FPING_PCT=10
FRAG_ATTACK_RTT_MS=50
# Downloads: one at least every FRAG_ATTACK_DL_EVERY s of attack, each
# under FRAG_ATTACK_DL_MAX_S s. Measured 19 in 20 s, slowest 0.02 s (one
# ring for all: 1-16, slowest up to 25.8 s, one timed out at 60 s).
FRAG_ATTACK_DL_EVERY=4
FRAG_ATTACK_DL_MAX_S=10
# Drops besides the attack's overlapping fragments (measured 1 or 2:
# drop.ipv6_scope, link-local IPv6 never forwarded).
FRAG_ATTACK_OTHER_DROPS=20
# tunfw's VmRSS may grow by the cap and this much (measured: +1.8 MiB).
FRAG_ATTACK_RSS_SLACK_KIB=4096

# snmp NS NAME...: the namespace's kernel counters NAME (nstat's names), in order.
snmp() {
    local ns=$1
    shift
    ip netns exec "$ns" nstat -asz "$@" |
        awk -v names="$*" '{ v[$1] = $2 } END { n = split(names, k, " "); for (i = 1; i <= n; i++) printf "%d ", v[k[i]] }'
}
# echo_counts: ICMP and ICMPv6 counters of the client, the server and
# tunfw's rules: client echo requests out and ICMP messages in (v4, v6),
# server echo replies out (v4, v6), tunfw's icmp-out, icmpv6-out, icmp-in,
# icmpv6-in. The client counts every message in, not only echo replies:
# icmp-in also accepts errors RELATED to the client's flows (one CI run saw
# one more ICMPv6 message accepted than echo replies arrived), and every
# ICMP message the client receives crossed tunfw.
echo_counts() {
    snmp "$NS_CLIENT" IcmpOutEchos Icmp6OutEchos IcmpInMsgs Icmp6InMsgs
    snmp "$NS_SERVER" IcmpOutEchoReps Icmp6OutEchoReplies
    echo "$(rule_pkts outbound icmp-out) $(rule_pkts outbound icmpv6-out) $(rule_pkts inbound icmp-in) $(rule_pkts inbound icmpv6-in)"
}

# nstat_moved BEFORE AFTER REGEX: "name +delta" of the counters matching
# REGEX that differ between two `nstat -asz` outputs.
nstat_moved() {
    awk -v re="$3" 'FNR == NR { a[$1] = $2; next }
        $1 ~ re && $2 != a[$1] { printf "%s +%d ", $1, $2 - a[$1] }' "$1" "$2"
}

vmrss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$TUNFW_PID/status"; }

# ping_stats FILE: "RECEIVED TRANSMITTED AVG_MS" of a ping -q output.
ping_stats() {
    awk '/packets transmitted/ { tx = $1; rx = $4 }
         /^rtt/ { split($4, a, "/"); avg = a[2] }
         END { printf "%d %d %s\n", rx, tx, (avg == "" ? "-1" : avg) }' "$1"
}

tf_attack() {
    local d=$TOPO_DIR/attack secs=$FRAG_ATTACK_SECS apid rss0 rss1 ring0 ring1 k i fam ok=1 e0 e1
    local -A c0 c1
    local names="defrag.evicted defrag.dropped.overlap defrag.queued defrag.reassembled in.wan loop.fragment_queue_read.wan drop.total drop.fragment drop.ipv6_scope"
    mkdir -p "$d"
    for k in $names; do c0[$k]=$(ctr "$k"); done
    read -r -a e0 < <(echo_counts)
    ip netns exec "$NS_CLIENT" nstat -asz >"$d/client.nstat0"
    ip -n "$NS_CLIENT" -s -s link show tfw-lan >"$d/client.link0"
    rss0=$(vmrss_kib)
    ring0=$(in_server cat /sys/class/net/tfw-wan/statistics/tx_dropped)
    # ip netns exec execs python: $! is the attacker's own pid, which kill
    # reaches (behind a shell function such as in_server, $! is a subshell's).
    ip netns exec "$NS_SERVER" python3 "$HERE/frag_attack.py" tfw-wan "$secs" $SERVER_IP $CLIENT_IP $SERVER6 $CLIENT6 \
        >"$d/attack.json" 2>"$d/attack.err" &
    apid=$!
    BG_PIDS+=($apid)
    # The attack is on once tunfw reads it.
    wait_grew in.wan $((c0[in.wan] + 10000)) || { kill $apid; note "$(cat "$d/attack.err")"; return 1; }
    # Pings for the attack's time less 4 s (its start, and a margin at its end).
    local n=$(((secs > 6 ? secs - 4 : 2) * 10)) nf=$(((secs > 6 ? secs - 4 : 2) * 4)) pids=()
    in_client ping -4 -q -c $n -i 0.1 -W 1 $SERVER_IP >"$d/ping4" 2>&1 & pids+=($!)
    in_client ping -6 -q -c $n -i 0.1 -W 1 $SERVER6 >"$d/ping6" 2>&1 & pids+=($!)
    in_client ping -4 -q -c $nf -i 0.25 -W 1 -s 3000 $SERVER_IP >"$d/fping4" 2>&1 & pids+=($!)
    in_client ping -6 -q -c $nf -i 0.25 -W 1 -s 3000 $SERVER6 >"$d/fping6" 2>&1 & pids+=($!)
    # Downloads, one a second, while the attack lasts.
    local dl_ok=0 dl_bad=0 dl_max=0 t want got
    want=$(sha256sum <"$TOPO_DIR/www/blob" | cut -d' ' -f1)
    while kill -0 $apid 2>/dev/null; do
        t=$(in_client curl -sS --max-time 60 -o "$d/blob" -w '%{time_total}' http://$SERVER_IP:8080/blob 2>>"$d/curl.err") || t=fail
        got=$(sha256sum <"$d/blob" | cut -d' ' -f1)
        if [ "$t" != fail ] && [ "$got" = "$want" ]; then
            dl_ok=$((dl_ok + 1))
            dl_max=$(awk -v a=$dl_max -v b=$t 'BEGIN { print (b > a ? b : a) }')
        else
            dl_bad=$((dl_bad + 1))
        fi
        rm -f "$d/blob"
        sleep 1
    done
    wait "${pids[@]}"
    wait $apid || { note "attacker failed: $(cat "$d/attack.err")"; return 1; }
    read -r -a e1 < <(echo_counts)
    ip netns exec "$NS_CLIENT" nstat -asz >"$d/client.nstat1"
    ip -n "$NS_CLIENT" -s -s link show tfw-lan >"$d/client.link1"
    rss1=$(vmrss_kib)
    ring1=$(in_server cat /sys/class/net/tfw-wan/statistics/tx_dropped)
    for k in $names; do c1[$k]=$(ctr "$k"); done
    local hw max mem
    hw=$(ctr defrag.memory_high_water) max=$(ctr defrag.memory_max) mem=$(ctr defrag.memory)
    note "attack: $(cat "$d/attack.json"); $((ring1 - ring0)) more found tfw-wan's ring full (tx_dropped)"
    note "counters: $(for k in $names; do printf '%s +%d ' "$k" $((c1[$k] - c0[$k])); done)"
    note "memory: high water $hw of max $max (now $mem); tunfw VmRSS $rss0 -> $rss1 KiB"
    note "downloads: $dl_ok ok, $dl_bad failed, slowest ${dl_max}s"
    local f rx tx avg
    for f in ping4 ping6 fping4 fping6; do
        read -r rx tx avg < <(ping_stats "$d/$f")
        note "$f: $rx/$tx answered, avg ${avg} ms"
        local pct=$FRAG_ATTACK_PING_PCT
        [[ $f == f* ]] && pct=$FRAG_ATTACK_FPING_PCT
        [ "$tx" -gt 0 ] && [ $((rx * 100)) -ge $((tx * pct)) ] || { note "$f: under $pct% answered"; ok=0; }
        awk -v a="$avg" -v m=$FRAG_ATTACK_RTT_MS 'BEGIN { exit !(a >= 0 && a < m) }' || { note "$f: average RTT not under $FRAG_ATTACK_RTT_MS ms"; ok=0; }
    done
    # Where the echoes went, each family: every request the client sent
    # crossed tunfw, and every ICMP message tunfw accepted (the replies and
    # any RELATED error) reached the client. As
    # tunfw dropped nothing but the attack's overlaps (below), the replies
    # the server sent and tunfw did not accept never reached it: they were
    # lost in tfw-wan's ring (tx_dropped).
    local sent req rep srv got
    for i in 0 1; do
        fam=$((i ? 6 : 4))
        sent=$((e1[i] - e0[i])) req=$((e1[6 + i] - e0[6 + i])) got=$((e1[2 + i] - e0[2 + i]))
        srv=$((e1[4 + i] - e0[4 + i])) rep=$((e1[8 + i] - e0[8 + i]))
        note "IPv$fam echoes: client sent $sent, tunfw forwarded $req; server replied $srv, tunfw accepted and forwarded $rep ICMP messages, client got $got"
        [ "$req" = "$sent" ] && [ "$got" = "$rep" ] || {
            note "IPv$fam: requests or ICMP messages lost between tunfw and the client (tunfw tx_error.lan $(ctr tx_error.lan);" \
                "client's kernel: $(ip netns exec "$NS_CLIENT" nstat -asz IpReasmFails IpReasmTimeout Ip6ReasmFails Ip6ReasmTimeout Icmp6InCsumErrors IcmpInCsumErrors Ip6InDiscards | awk '{ printf "%s %s ", $1, $2 }'))"
            note "IPv$fam: the client's counters that moved: $(nstat_moved "$d/client.nstat0" "$d/client.nstat1" '^(Icmp|Ip6|Ip[A-Z])')"
            note "IPv$fam: tfw-lan in the client, before: $(tr -s ' \n' ' ' <"$d/client.link0")"
            note "IPv$fam: tfw-lan in the client, after: $(tr -s ' \n' ' ' <"$d/client.link1")"
            ok=0
        }
    done
    # Messages besides echo replies (RELATED errors), for the record.
    local others
    others=$(nstat_moved "$d/client.nstat0" "$d/client.nstat1" '^Icmp6?In' |
        awk '{ for (i = 1; i < NF; i += 2) if ($i !~ /^Icmp6?In(Msgs|EchoReps|EchoReplies|Type129)$/) printf "%s %s ", $i, $(i + 1) }')
    [ -z "$others" ] || note "the client also received: $others"
    [ $dl_bad = 0 ] && [ $dl_ok -ge $((secs / FRAG_ATTACK_DL_EVERY > 0 ? secs / FRAG_ATTACK_DL_EVERY : 1)) ] ||
        { note "downloads failed or fewer than one every $FRAG_ATTACK_DL_EVERY s: $(tail -3 "$d/curl.err")"; ok=0; }
    awk -v a="$dl_max" -v m=$FRAG_ATTACK_DL_MAX_S 'BEGIN { exit !(a < m) }' || { note "a download took ${dl_max}s, not under $FRAG_ATTACK_DL_MAX_S s"; ok=0; }
    # The attack went to the fragment queue: nine in ten packets tunfw read
    # from tfw-wan came from there.
    local fq=$((c1[loop.fragment_queue_read.wan] - c0[loop.fragment_queue_read.wan])) inw=$((c1[in.wan] - c0[in.wan]))
    [ $((fq * 10)) -ge $((inw * 9)) ] || { note "only $fq of the $inw packets read from tfw-wan came from its fragment queue"; ok=0; }
    [ "$max" = $FRAG_CAP ] || { note "defrag.memory_max $max is not the default cap $FRAG_CAP"; ok=0; }
    [ "$hw" -le "$max" ] && [ "$mem" -le "$max" ] || { note "memory over the cap"; ok=0; }
    [ $((hw * 100)) -ge $((max * 90)) ] || { note "the attack did not fill the reassembler (high water under 90% of the cap)"; ok=0; }
    [ $((rss1 - rss0)) -le $((FRAG_CAP / 1024 + FRAG_ATTACK_RSS_SLACK_KIB)) ] ||
        { note "VmRSS grew by $((rss1 - rss0)) KiB, more than the cap and $FRAG_ATTACK_RSS_SLACK_KIB KiB"; ok=0; }
    local other=$((c1[drop.total] - c0[drop.total] - (c1[defrag.dropped.overlap] - c0[defrag.dropped.overlap])))
    [ $other -le $FRAG_ATTACK_OTHER_DROPS ] || { note "tunfw dropped $other packets besides the overlapping fragments"; ok=0; }
    [ $((c1[defrag.evicted] - c0[defrag.evicted])) -ge 10000 ] || { note "fewer than 10,000 queues evicted"; ok=0; }
    [ $((c1[defrag.dropped.overlap] - c0[defrag.dropped.overlap])) -ge 10000 ] || { note "fewer than 10,000 overlaps dropped"; ok=0; }
    [ $ok = 1 ]
}
# tf_pmtu_upload_ipv4: 1 MiB uploaded from the client to the router
# namespace, behind the server's MTU 1280 link: the client's 1500-byte DF
# segments do not fit, the server answers ICMP fragmentation needed, which
# tunfw lets in as RELATED (the icmp-in rule counts it: no echo runs
# meanwhile), the client lowers its path MTU and the upload completes.
tf_pmtu_upload_ipv4() {
    local port=7206 blob="$TOPO_DIR/upload4.blob" got="$TOPO_DIR/upload4.got" rpid cpid rc=0 before
    in_client ip route get $ROUTER_IP | grep -q " mtu 1280 " && { note "the client knew the path MTU before the upload"; return 1; }
    before=$(rule_pkts inbound icmp-in)
    # The router's own side of the link at 1500: it advertises MSS 1460, so
    # the client's segments fill 1500 bytes and meet the server's 1280.
    ip -n "$NS_ROUTER" link set tfw-rs mtu 1500
    [ -s "$blob" ] || head -c 1048576 /dev/urandom >"$blob"
    rm -f "$got"
    in_router timeout 15 socat -u TCP4-LISTEN:$port,bind=$ROUTER_IP,reuseaddr CREATE:"$got" &
    rpid=$!
    wait_until listening_on "$NS_ROUTER" -t $ROUTER_IP $port || { kill $rpid; return 1; }
    in_client timeout 15 socat -u OPEN:"$blob" TCP4:$ROUTER_IP:$port 2>/dev/null &
    cpid=$!
    wait $rpid || rc=$?
    kill $cpid 2>/dev/null
    wait $cpid 2>/dev/null
    ip -n "$NS_ROUTER" link set tfw-rs mtu $SERVER_ROUTER_MTU
    note "upload: $(stat -c %s "$got" 2>/dev/null || echo 0) of 1048576 bytes arrived (listener rc=$rc); icmp-in +$(($(rule_pkts inbound icmp-in) - before))"
    [ $rc = 0 ] && cmp -s "$got" "$blob" || return 1
    in_client ip route get $ROUTER_IP | grep -q " mtu 1280 " || { note "the client did not learn the path MTU"; return 1; }
    [ "$(rule_pkts inbound icmp-in)" -gt "$before" ] || { note "icmp-in did not count the fragmentation needed"; return 1; }
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
    check frag_pmtu_upload_1MiB_frag_needed_related_ipv4 tf_pmtu_upload_ipv4
    check frag_syn_scan_open_closed_ipv4_nmap tf_frag_scan 4
    check frag_syn_scan_open_closed_ipv6 tf_frag_scan 6
    check frag_attack_${FRAG_ATTACK_SECS}s_lan_keeps_working_memory_at_cap tf_attack
}
