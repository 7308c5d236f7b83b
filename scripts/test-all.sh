#!/usr/bin/env bash
# Run every check and test: cargo fmt --check, clippy (-D warnings) and
# cargo doc (-D warnings), then the Rust unit/integration tests, then the
# netns suite with real programs. Needs root (network namespaces, TUN
# devices); installs the Debian packages the suite uses and the rustfmt and
# clippy components when they are missing. The last line is the netns suite's
# "N passed, N failed"; the exit status is non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "scripts/test-all.sh needs root (network namespaces, TUN devices): run it as root," >&2
    echo "or with sudo keeping your environment and PATH (for cargo): sudo -E env PATH=\"\$PATH\" scripts/test-all.sh" >&2
    exit 2
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test-all.sh: cargo is not on PATH (PATH=$PATH); under sudo, keep yours:" >&2
    echo "sudo -E env PATH=\"\$PATH\" scripts/test-all.sh" >&2
    exit 2
fi

need=(ip:iproute2 ss:iproute2 socat:socat curl:curl traceroute:traceroute ping:iputils-ping
      python3:python3 setpriv:util-linux vsftpd:vsftpd tcpdump:tcpdump iptables:iptables
      hping3:hping3 nmap:nmap)
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

for comp in rustfmt:fmt clippy:clippy; do
    if ! cargo "${comp#*:}" --version >/dev/null 2>&1; then
        echo "== installing: rustup component ${comp%%:*}"
        rustup component add "${comp%%:*}"
    fi
done
# Static checks first; all three run, and any failure fails the script.
failed_checks=()
echo "== cargo fmt --check"
cargo fmt --check 2>&1 || failed_checks+=("cargo fmt --check")
echo "== cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings 2>&1 || failed_checks+=("cargo clippy")
echo "== cargo doc --no-deps --locked (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked 2>&1 || failed_checks+=("cargo doc")
echo "== module import cycles (scripts/module-cycles.py)"
python3 scripts/module-cycles.py src 2>&1 || failed_checks+=("module import cycles")
if [ ${#failed_checks[@]} -gt 0 ]; then
    echo "checks failed: ${failed_checks[*]}" >&2
    exit 1
fi

echo "== cargo test"
cargo test --release --locked 2>&1
echo "== cargo build --release"
cargo build --release --locked 2>&1
echo "== netns suite"
exec bash netns-tests/run.sh
