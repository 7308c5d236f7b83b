# Shell helpers shared by scripts/netns.sh, scripts/bench.sh and
# netns-tests/parity/parity.sh (sourced).

# wait_until CMD...: poll CMD every 50 ms until it succeeds, at most
# $WAIT_SECS (default 10) seconds; non-zero if it never did.
wait_until() {
    local deadline=$((SECONDS + ${WAIT_SECS:-10}))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.05
    done
}

# ns_destroy NS...: kill what runs in each namespace and delete it.
ns_destroy() {
    local ns
    for ns in "$@"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    return 0
}

# ns_create NS...: fresh namespaces (destroying old ones of the same name), loopback up.
ns_create() {
    ns_destroy "$@"
    local ns
    for ns in "$@"; do
        ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
    done
}
