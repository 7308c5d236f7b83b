#!/usr/bin/env bash
# tunfw test topology: build, start tunfw in it, tear down.
#
#   client ns            fw ns (tunfw)            server ns                router ns
#   10.201.1.2/24  <-- tfw-lan | tfw-wan -->  10.201.2.2/24  -- veth --  10.201.3.2/24
#                                              10.201.3.1/24              (no default route)
#   fd00:201:0:1::2/64                        fd00:201:0:2::2/64         fd00:201:0:3::2/64
#                                             fd00:201:0:3::1/64
#
# IPv6 runs beside IPv4 on the same links, from the ULA prefix fd00:201::/48
# (nodad: usable at once). The server forwards IPv6 too. The server <-> router
# link has MTU 1280 (the IPv6 minimum) while the router announces the MSS of
# a 1500-byte link (advmss 1440 on its IPv6 routes, as a host on an Ethernet
# behind a narrower link): a client's full-size IPv6 segments towards the
# router need the server's ICMPv6 packet too big (IPv4 to the router carries
# only small packets in the suite).
#
# tunfw runs inside the fw namespace on two persistent TUN devices it attaches
# to. Once it runs, the script moves tfw-lan into the client namespace and
# tfw-wan into the server namespace, so every packet between client and server
# is read by tunfw from one device and written to the other: tunfw is the only
# hop between them. The server forwards to the router namespace, so routers on
# the path (TTL exceeded, unreachable) can be tested. With tunfw stopped the
# devices and routes stay and nothing passes.
#
# Use:  source scripts/netns.sh; topo_up; tunfw_start CONFIG; ...; topo_down
# or:   scripts/netns.sh up | down | start [CONFIG] | stop
# All namespaces are named ${TOPO_PREFIX}-*; only addresses 10.201.0.0/16 and
# fd00:201::/48 assigned here, inside these namespaces, are used.

TOPO_PREFIX=${TOPO_PREFIX:-tunfwt}
NS_CLIENT=$TOPO_PREFIX-client
NS_FW=$TOPO_PREFIX-fw
NS_SERVER=$TOPO_PREFIX-server
NS_ROUTER=$TOPO_PREFIX-router
CLIENT_IP=10.201.1.2
TUNFW_LAN_IP=10.201.1.1
SERVER_IP=10.201.2.2
TUNFW_WAN_IP=10.201.2.1
SERVER_ROUTER_SIDE_IP=10.201.3.1
ROUTER_IP=10.201.3.2
UNROUTED_IP=10.201.5.5
CLIENT6=fd00:201:0:1::2
TUNFW_LAN6=fd00:201:0:1::1
SERVER6=fd00:201:0:2::2
TUNFW_WAN6=fd00:201:0:2::1
SERVER_ROUTER_SIDE6=fd00:201:0:3::1
ROUTER6=fd00:201:0:3::2
SERVER_ROUTER_MTU=1280
TOPO_DIR=${TOPO_DIR:-/tmp/$TOPO_PREFIX}
TUNFW_CONTROL=$TOPO_DIR/control.sock
TUNFW_LOG=$TOPO_DIR/tunfw.log
TUNFW_BIN=${TUNFW_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/release/tunfw}
TUNFW_PID=
TUNFW_EXTRA_ARGS=()
TUNFW_MODE_ARGS=()
TUNFW_RUN_AS=()

in_client() { ip netns exec "$NS_CLIENT" "$@"; }
in_server() { ip netns exec "$NS_SERVER" "$@"; }
in_router() { ip netns exec "$NS_ROUTER" "$@"; }
in_fw() { ip netns exec "$NS_FW" "$@"; }

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

topo_down() {
    tunfw_stop
    ns_destroy "$NS_CLIENT" "$NS_FW" "$NS_SERVER" "$NS_ROUTER"
}

topo_up() {
    topo_down
    mkdir -p "$TOPO_DIR"
    ns_create "$NS_CLIENT" "$NS_FW" "$NS_SERVER" "$NS_ROUTER" || return 1
    # server <-> router
    ip link add tfw-sr netns "$NS_SERVER" type veth peer name tfw-rs netns "$NS_ROUTER" || return 1
    ip -n "$NS_SERVER" addr add $SERVER_ROUTER_SIDE_IP/24 dev tfw-sr
    ip -n "$NS_SERVER" link set tfw-sr up
    ip -n "$NS_ROUTER" addr add $ROUTER_IP/24 dev tfw-rs
    ip -n "$NS_ROUTER" link set tfw-rs up
    ip -n "$NS_ROUTER" route add 10.201.1.0/24 via $SERVER_ROUTER_SIDE_IP
    ip -n "$NS_ROUTER" route add 10.201.2.0/24 via $SERVER_ROUTER_SIDE_IP
    in_server sysctl -qw net.ipv4.ip_forward=1
    in_router sysctl -qw net.ipv4.ip_forward=1
    ip -n "$NS_SERVER" route add 10.201.5.0/24 via $ROUTER_IP
    ip -n "$NS_SERVER" link set tfw-sr mtu $SERVER_ROUTER_MTU
    ip -n "$NS_ROUTER" link set tfw-rs mtu $SERVER_ROUTER_MTU
    ip -n "$NS_SERVER" addr add $SERVER_ROUTER_SIDE6/64 dev tfw-sr nodad
    ip -n "$NS_ROUTER" addr add $ROUTER6/64 dev tfw-rs nodad
    ip -n "$NS_ROUTER" -6 route add fd00:201:0:1::/64 via $SERVER_ROUTER_SIDE6 advmss 1440
    ip -n "$NS_ROUTER" -6 route add fd00:201:0:2::/64 via $SERVER_ROUTER_SIDE6 advmss 1440
    in_server sysctl -qw net.ipv6.conf.all.forwarding=1
    # The TUN devices start in the fw namespace, persistent, so that tunfw attaches to them.
    ip -n "$NS_FW" tuntap add dev tfw-lan mode tun multi_queue || return 1
    ip -n "$NS_FW" tuntap add dev tfw-wan mode tun multi_queue || return 1
}

# Move the TUN devices to where they are wired (client/server) ...
topo_wire_devices() {
    ip -n "$NS_FW" link set tfw-lan netns "$NS_CLIENT" || return 1
    ip -n "$NS_FW" link set tfw-wan netns "$NS_SERVER" || return 1
    ip -n "$NS_CLIENT" addr add $CLIENT_IP/24 dev tfw-lan
    ip -n "$NS_CLIENT" link set tfw-lan up
    ip -n "$NS_CLIENT" route add 10.201.0.0/16 dev tfw-lan
    ip -n "$NS_CLIENT" addr add $CLIENT6/64 dev tfw-lan nodad
    ip -n "$NS_CLIENT" -6 route add fd00:201::/48 dev tfw-lan
    ip -n "$NS_SERVER" addr add $SERVER_IP/24 dev tfw-wan
    ip -n "$NS_SERVER" link set tfw-wan up
    ip -n "$NS_SERVER" route add 10.201.1.0/24 dev tfw-wan
    ip -n "$NS_SERVER" addr add $SERVER6/64 dev tfw-wan nodad
    ip -n "$NS_SERVER" -6 route add fd00:201:0:1::/64 dev tfw-wan
}

# ... and back into the fw namespace, so that a new tunfw can attach.
topo_unwire_devices() {
    ip -n "$NS_CLIENT" link set tfw-lan netns "$NS_FW" 2>/dev/null
    ip -n "$NS_SERVER" link set tfw-wan netns "$NS_FW" 2>/dev/null
    ip -n "$NS_FW" link show tfw-lan >/dev/null 2>&1 && ip -n "$NS_FW" link show tfw-wan >/dev/null 2>&1
}

tunfw_ctl() { "$TUNFW_BIN" ctl --control "$TUNFW_CONTROL" "$@"; }

# tunfw_start [CONFIG]: start tunfw on CONFIG (default: embedded), wait until it
# answers on its control socket, then wire the devices. TUNFW_MODE_ARGS and
# TUNFW_EXTRA_ARGS (arrays) add arguments; TUNFW_RUN_AS (an array, e.g. setpriv ...) prefixes
# the command.
tunfw_start() {
    tunfw_stop
    topo_unwire_devices || { echo "topology: TUN devices missing" >&2; return 1; }
    local args=(--lan tfw-lan --wan tfw-wan --control "$TUNFW_CONTROL")
    [ -n "${1:-}" ] && args+=(--config "$1")
    args+=("${TUNFW_MODE_ARGS[@]}" "${TUNFW_EXTRA_ARGS[@]}")
    ip netns exec "$NS_FW" "${TUNFW_RUN_AS[@]}" "$TUNFW_BIN" "${args[@]}" >>"$TUNFW_LOG" 2>&1 &
    TUNFW_PID=$!
    if ! wait_until tunfw_ctl stats; then
        echo "tunfw did not come up; log:" >&2
        tail -5 "$TUNFW_LOG" >&2
        return 1
    fi
    topo_wire_devices
}

# tunfw_stop: SIGTERM, wait; returns tunfw's exit code (0 when none was running).
tunfw_stop() {
    [ -n "$TUNFW_PID" ] || return 0
    local rc=0
    kill -TERM "$TUNFW_PID" 2>/dev/null
    wait "$TUNFW_PID" || rc=$?
    TUNFW_PID=
    return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    case "${1:-}" in
    up) topo_up ;;
    down) topo_down ;;
    start)
        topo_up && tunfw_start "${2:-}" && echo "tunfw running (pid $TUNFW_PID); client: ip netns exec $NS_CLIENT ..., stop: $0 down" && disown
        ;;
    *) echo "usage: $0 up|down|start [CONFIG]" >&2; exit 2 ;;
    esac
fi
