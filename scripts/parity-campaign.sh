#!/usr/bin/env bash
# Parity campaign: netns-tests/parity/parity.sh on fresh seeds, with many
# random sequences each. Needs root and the release binary (cargo build
# --release).
#
#   scripts/parity-campaign.sh [--family 4|6|all] [--random N] [--frag N] [--ftp N] [SEED...]
#
# --family picks the corpus, as parity.sh's: 4 (the default) the IPv4 one, 6
# the IPv6 one (random sequences random6_SEED_INDEX: TCP, UDP and ICMPv6 flows
# with extension headers, hop limits and ICMPv6 errors), all both; N random
# sequences of each family picked, N defaulting to 10000; --frag N random
# fragment sequences of each family (randfrag_SEED_INDEX,
# randfrag6_SEED_INDEX; default: as --random); --ftp N random FTP lines of
# each family (default 0; DOCUMENTED lines are left out as SAME ones).
# Without a SEED, one is derived from the date and time (YYYYMMDDHHMM). The
# seeds are printed first; then, for each seed, parity.sh's
# first line, its DIFF lines (each ends with the command that replays that
# sequence alone), its "parity: sizes of what arrived" line and its
# "parity: N passed, N failed" line; SAME and SIZES lines are left out. The last line is the total. Exit 1 if any sequence differed, 2 if a
# run could not be made. PARITY_PREFIX and PARITY_TUNFW_ARGS pass through to
# parity.sh.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=10000
FRAG=
FAMILY=4
SEEDS=()
FTP=0
usage() { echo "usage: $0 [--family 4|6|all] [--random N] [--frag N] [--ftp N] [SEED...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --random) [ $# -ge 2 ] || usage; COUNT=$2; shift 2 ;;
    --frag) [ $# -ge 2 ] || usage; FRAG=$2; shift 2 ;;
    --family) [ $# -ge 2 ] || usage; FAMILY=$2; shift 2 ;;
    --ftp) [ $# -ge 2 ] || usage; FTP=$2; shift 2 ;;
    -*) usage ;;
    *) SEEDS+=("$1"); shift ;;
    esac
done
FRAG=${FRAG:-$COUNT}
[[ $COUNT =~ ^[0-9]+$ && $FRAG =~ ^[0-9]+$ && $FTP =~ ^[0-9]+$ ]] || usage
case $FAMILY in 4 | 6 | all) ;; *) usage ;; esac
for s in "${SEEDS[@]}"; do
    [[ $s =~ ^[0-9]+$ ]] || { echo "seed $s: not a non-negative integer" >&2; exit 2; }
done
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=("$(date +%Y%m%d%H%M)")
if [ "$(id -u)" != 0 ]; then
    echo "scripts/parity-campaign.sh needs root (network namespaces, TUN devices)" >&2
    exit 2
fi
BIN=${TUNFW_BIN:-$ROOT/target/release/tunfw}
[ -x "$BIN" ] || { echo "no tunfw binary at $BIN (cargo build --release)" >&2; exit 2; }

case $FAMILY in
4) what="$COUNT random and $FRAG random fragment sequences each (plus the fixed corpus)" ;;
6) what="$COUNT random and $FRAG random fragment IPv6 sequences each (plus the IPv6 fixed corpus)" ;;
all) what="$COUNT random and $FRAG random fragment sequences of each family each (plus both fixed corpora)" ;;
esac
echo "campaign: seeds ${SEEDS[*]}, $what"
passed=0 failed=0 errors=0
for seed in "${SEEDS[@]}"; do
    result=
    while IFS= read -r line; do
        case $line in
        "SAME "* | "SIZES "* | "DOCUMENTED "*) ;;
        *) echo "$line" ;;
        esac
        case $line in "parity: "*" passed, "*" failed") result=$line ;; esac
    done < <(bash "$ROOT/netns-tests/parity/parity.sh" --family "$FAMILY" --random "$COUNT" --frag "$FRAG" --ftp "$FTP" --seed "$seed" 2>&1)
    if [[ $result =~ ^parity:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
    else
        echo "seed $seed: parity.sh gave no result line"
        errors=$((errors + 1))
    fi
done
note=
[ "$errors" = 0 ] || note=", $errors runs without a result"
echo "campaign: total of ${#SEEDS[@]} seed(s): $passed passed, $failed failed$note"
[ "$errors" = 0 ] || exit 2
[ "$failed" = 0 ] || exit 1
