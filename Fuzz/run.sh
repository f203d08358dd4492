#!/usr/bin/env bash
# Runs the fuzz targets built by Fuzz/build.sh for SECONDS each (default 8), seeded from
# Tests/Fixtures and Fuzz/seeds. New interesting inputs accumulate in OUT/corpus/<target>; a crash,
# leak, timeout or out-of-memory input is written to OUT/crashes/<target>/ and fails the run.
#
#   Fuzz/run.sh [OUT] [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-.build/fuzz}"
SECONDS_PER_TARGET="${2:-8}"
shift $(( $# > 2 ? 2 : $# ))
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(image-decoder prototype-json control-request http-response ndjson-lines)
FIX=Tests/Fixtures

seeds() {
    case "$1" in
        image-decoder) echo "$FIX/hostile $FIX/images/formats $FIX/images/product $FIX/images/testset Fuzz/seeds/prototype-json" ;;
        prototype-json) echo "Fuzz/seeds/prototype-json $FIX/hostile" ;;
        control-request) echo "Fuzz/seeds/control-request" ;;
        http-response) echo "Fuzz/seeds/http-response" ;;
        ndjson-lines) echo "Fuzz/seeds/ndjson-lines" ;;
        *) echo "unknown fuzz target $1" >&2; exit 2 ;;
    esac
}

max_len() {
    case "$1" in
        image-decoder) echo 262144 ;;
        prototype-json) echo 131072 ;;
        control-request) echo 8192 ;;
        http-response) echo 65536 ;;
        ndjson-lines) echo 65536 ;;
    esac
}

failed=0
for target in "${TARGETS[@]}"; do
    binary="$OUT/$target"
    [[ -x "$binary" ]] || { echo "fuzz: $binary is missing; run Fuzz/build.sh first" >&2; exit 2; }
    corpus="$OUT/corpus/$target"
    crashes="$OUT/crashes/$target"
    mkdir -p "$corpus" "$crashes"
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    # shellcheck disable=SC2046
    "$binary" -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=2048 -max_len="$(max_len "$target")" \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" $(seeds "$target") \
        >"$OUT/$target.log" 2>&1
    status=$?
    grep -E "^(stat::number_of_executed_units|stat::new_units_added)" "$OUT/$target.log" | sed "s/^/fuzz: $target /"
    if [[ $status -ne 0 ]]; then
        failed=1
        echo "fuzz: $target FAILED (exit $status); the input is in $crashes/, the log in $OUT/$target.log:" >&2
        grep -E "ERROR|Fatal error|precondition|SUMMARY|Test unit written" "$OUT/$target.log" | head -20 >&2
        echo "fuzz: reproduce with '$binary <file>'; fix the bug, then add the file to Tests/Fixtures/hostile" \
             "(with its expected code in manifest.json) or Fuzz/seeds/$target" >&2
    fi
done
exit $failed
