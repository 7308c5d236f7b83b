#!/usr/bin/env bash
# scripts/fuzz-smoke.sh [SECONDS]
#
# Run every fuzz target of fuzz/ (cargo fuzz list) for SECONDS each (default
# 60), one after another, from its tracked seeds (fuzz/corpus/TARGET/seed-*)
# and whatever corpus the campaigns left there. What a smoke run finds new
# goes to a temporary directory, so the repository's corpora do not grow. Exits
# non-zero as soon as a target crashes, leaks, times out (10 s for one input)
# or runs out of memory (libFuzzer's default 2 GiB); the crashing input is in
# fuzz/artifacts/TARGET/. Builds first (cargo-fuzz, on a stable toolchain with
# RUSTC_BOOTSTRAP=1), so SECONDS is fuzzing time. Run it under `nice -n 19` on
# a machine that has other work.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${1:-60}
case $SECONDS_EACH in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
export RUSTC_BOOTSTRAP=1
cd "$ROOT/fuzz"
cargo fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target" "corpus/$target"
    echo "== $target: ${SECONDS_EACH} s"
    if ! cargo fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
        2>"$scratch/$target.log"; then
        tail -n 40 "$scratch/$target.log" >&2
        echo "FAIL $target (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E '^stat::number_of_executed_units|^Done ' "$scratch/$target.log" || true
    echo "PASS $target"
done
