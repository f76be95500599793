#!/usr/bin/env bash
# Runs every capsa fuzz target for N seconds (default 20), each from a scratch copy of
# its seed corpus in fuzz/corpus/<target>/ (the seeds in the repository are not
# changed). Exits 1 if any target crashes, panics, leaks past the RSS limit or times
# out on one input; the input is then in fuzz/artifacts/<target>/ and the end of the
# target's log (with the backtrace) is printed.
#
#   fuzz/run-short.sh            # 20 s per target (CI)
#   fuzz/run-short.sh 600        # a longer run by hand
#   FUZZ_TARGETS="spec_parse" fuzz/run-short.sh 60
#
# Needs the nightly toolchain and cargo-fuzz (`cargo +nightly install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-20}
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo +nightly install cargo-fuzz" >&2
    exit 2
fi
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! cargo +nightly fuzz build >"$work/build.log" 2>&1; then
    echo "cargo fuzz build failed:" >&2
    tail -n 40 "$work/build.log" >&2
    exit 2
fi
status=0
for t in $targets; do
    mkdir -p "$work/corpus/$t"
    log="$work/$t.log"
    # libFuzzer: the first corpus dir receives new inputs, the others are read only.
    if cargo +nightly fuzz run "$t" "$work/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
        echo "ok    $t: ${runs:-?} runs in ${secs}s, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus $(ls "$work/corpus/$t" | wc -l) new"
    else
        status=1
        echo "FAIL  $t (input saved under fuzz/artifacts/$t/):"
        tail -n 80 "$log" | sed 's/^/    /'
    fi
done
exit "$status"
