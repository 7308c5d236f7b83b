# Metrics: tunfw with --metrics 127.0.0.1:9100 in its own (fw) namespace,
# scraped there with curl while traffic crosses it (sourced by run.sh).

METRICS_URL=http://127.0.0.1:9100/metrics

# scrape: the metrics text (fails when tunfw does not answer in 2 s).
scrape() { in_fw curl -sf --max-time 2 "$METRICS_URL"; }
# sample TEXT KEY: the value of the sample KEY (`name{labels}`) in TEXT, or "missing".
sample() { awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "missing" }' <<<"$1"; }
# rule_key TEXT DIRECTION NAME: the key of the named rule's packet counter in TEXT.
rule_key() { grep -o "^tunfw_rule_packets_total{direction=\"$2\",number=\"[0-9]*\",rule=\"$3\"}" <<<"$1"; }
# sample_grew KEY BEFORE AFTER: the sample is in both scrapes and went up.
sample_grew() {
    local b a
    b=$(sample "$2" "$1") a=$(sample "$3" "$1")
    [ "$b" != missing ] && [ "$a" != missing ] && [ "$a" -gt "$b" ] ||
        { note "$1: $b -> $a"; return 1; }
}

t_metrics_scrape_is_prometheus_text() {
    local head code
    head=$(in_fw curl -sf --max-time 2 -D - -o /dev/null "$METRICS_URL") || { note "no answer"; return 1; }
    grep -qi '^content-type: text/plain; version=0.0.4' <<<"$head" || { note "headers: $head"; return 1; }
    scrape | grep -q '^# TYPE tunfw_packets_total counter$' || { note "no TYPE line"; return 1; }
    code=$(in_fw curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:9100/other)
    [ "$code" = 404 ] || { note "/other: $code"; return 1; }
    code=$(in_fw curl -s --max-time 2 -o /dev/null -w '%{http_code}' -X POST "$METRICS_URL")
    [ "$code" = 405 ] || { note "POST: $code"; return 1; }
}

t_metrics_counters_move_with_traffic() {
    local before after
    before=$(scrape) || { note "first scrape failed"; return 1; }
    in_client ping -c 3 -i 0.2 -W 1 $SERVER_IP >/dev/null || { note "ping failed"; return 1; }
    in_client curl -sf --max-time 10 -o /dev/null http://$SERVER_IP:8080/blob || { note "download failed"; return 1; }
    after=$(scrape) || { note "second scrape failed"; return 1; }
    sample_grew 'tunfw_packets_total{side="lan"}' "$before" "$after" &&
        sample_grew 'tunfw_forwarded_packets_total{side="lan"}' "$before" "$after" &&
        sample_grew 'tunfw_forwarded_packets_total{side="wan"}' "$before" "$after" &&
        sample_grew 'tunfw_received_bytes_total{side="wan"}' "$before" "$after" &&
        sample_grew "$(rule_key "$before" outbound icmp-out)" "$before" "$after" &&
        sample_grew "$(rule_key "$before" inbound tcp-in)" "$before" "$after" &&
        sample_grew 'tunfw_conntrack_inserted_total' "$before" "$after" || return 1
    # The census sees the download's flow (TIME_WAIT or later) and the ping's.
    [ "$(sample "$after" 'tunfw_conntrack_entries{protocol="icmp",state="replied"}')" -ge 1 ] ||
        { note "census: $(grep '^tunfw_conntrack_entries{' <<<"$after" | grep -v ' 0$')"; return 1; }
    note "lan packets $(sample "$before" 'tunfw_packets_total{side="lan"}') -> $(sample "$after" 'tunfw_packets_total{side="lan"}')"
}

t_metrics_drop_reason_labelled() {
    local before after
    before=$(scrape) || return 1
    echo intruder | in_server socat -u - UDP4-SENDTO:$CLIENT_IP:6001
    WAIT_SECS=5 wait_until eval '[ "$(sample "$(scrape)" '"'"'tunfw_dropped_packets_total{reason="policy_inbound"}'"'"')" -gt "$(sample "$before" '"'"'tunfw_dropped_packets_total{reason="policy_inbound"}'"'"')" ]' ||
        { note "policy_inbound drops did not grow"; return 1; }
    after=$(scrape)
    grep -q '^tunfw_dropped_packets_total{reason="policy_inbound"} [1-9]' <<<"$after" || return 1
    note "$(grep '^tunfw_dropped_packets_total{reason="policy_inbound"}' <<<"$after")"
}

t_metrics_ctl_prints_the_text() {
    local text
    text=$(tunfw_ctl metrics) || { note "ctl metrics failed"; return 1; }
    grep -q '^# TYPE tunfw_packets_total counter$' <<<"$text" &&
        grep -q '^tunfw_packets_total{side="lan"} [1-9]' <<<"$text" &&
        grep -q '^tunfw_conntrack_entries_limit [1-9]' <<<"$text" ||
        { note "$(head -5 <<<"$text")"; return 1; }
}

# Connections that never send (a slowloris, more than the server's 8
# slots) and one that sends half a request: forwarding, scrapes and ctl go
# on; the server evicts the oldest and closes the rest at its deadline.
t_metrics_stalled_clients_do_not_stop_forwarding() {
    local pids=() i before after ok=0
    before=$(scrape) || return 1
    for i in $(seq 10); do
        in_fw bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100; sleep 8' 2>/dev/null &
        pids+=($!)
    done
    in_fw bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100; printf "GET /metrics HTTP/1.1\r\nHost: x\r\n" >&3; sleep 8' 2>/dev/null &
    pids+=($!)
    WAIT_SECS=5 wait_until eval '[ "$(in_fw ss -Htn state established "( sport = :9100 )" | wc -l)" -ge 8 ]' ||
        note "only $(in_fw ss -Htn state established '( sport = :9100 )' | wc -l) held"
    in_client ping -c 3 -i 0.2 -W 1 $SERVER_IP >/dev/null || { note "ping failed while held"; ok=1; }
    in_client curl -sf --max-time 10 -o /dev/null http://$SERVER_IP:8080/blob || { note "download failed while held"; ok=1; }
    after=$(scrape) || { note "scrape failed while held"; ok=1; }
    tunfw_ctl metrics >/dev/null || { note "ctl metrics failed while held"; ok=1; }
    [ $ok = 0 ] && sample_grew 'tunfw_metrics_http_evicted_total' "$before" "$after" &&
        sample_grew 'tunfw_forwarded_packets_total{side="lan"}' "$before" "$after" || ok=1
    note "evicted $(sample "$after" tunfw_metrics_http_evicted_total), clients $(sample "$after" tunfw_metrics_http_clients)"
    for i in "${pids[@]}"; do kill "$i" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
    return $ok
}

metrics_suite() {
    echo "== metrics (--metrics 127.0.0.1:9100 in tunfw's namespace, scraped with curl)"
    TUNFW_EXTRA_ARGS=(--metrics 127.0.0.1:9100)
    tunfw_start || { TUNFW_EXTRA_ARGS=(); FAILED=$((FAILED + 1)); echo "FAIL metrics_start"; return; }
    start_servers >/dev/null 2>&1
    wait_until scrape || note "no scrape answered"
    check metrics_scrape_is_prometheus_text t_metrics_scrape_is_prometheus_text
    check metrics_counters_move_with_traffic t_metrics_counters_move_with_traffic
    check metrics_drop_reason_labelled t_metrics_drop_reason_labelled
    check metrics_ctl_prints_the_text t_metrics_ctl_prints_the_text
    check metrics_stalled_clients_do_not_stop_forwarding t_metrics_stalled_clients_do_not_stop_forwarding
    TUNFW_EXTRA_ARGS=()
    tunfw_start || { FAILED=$((FAILED + 1)); echo "FAIL metrics_restart"; }
}
