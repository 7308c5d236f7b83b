#!/usr/bin/env bash
# Run every test: Rust unit/integration tests, then the netns suite with real
# programs. Needs root (network namespaces, TUN devices); installs the Debian
# packages the suite uses when they are missing. The last line is the netns
# suite's "N passed, N failed"; the exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test-all.sh needs root (network namespaces, TUN devices): sudo -E scripts/test-all.sh" >&2
    exit 2
fi

need=(ip:iproute2 ss:iproute2 socat:socat curl:curl traceroute:traceroute ping:iputils-ping
      python3:python3 setpriv:util-linux vsftpd:vsftpd tcpdump:tcpdump iptables:iptables)
missing=()
for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true

echo "== cargo test"
cargo test --release --locked 2>&1
echo "== cargo build --release"
cargo build --release --locked 2>&1
echo "== netns suite"
exec bash netns-tests/run.sh
