#!/bin/sh
# Runs capsa's Rust integration test binaries inside the VM (busybox sh), as
# run-tests.sh sets them up, and turns libtest's output into the
# "PASS name" / "FAIL name: why" / "SKIP name: why" lines /init counts.
#
# $CAPSA_VM_FILES holds the binaries and `plan`, one line per binary:
#   NAME [FILTER...]      (libtest filters: substrings of test names)
# and optionally smoke.sh, run first.
#
# A binary fails the run when a test FAILED, when it printed no
# "test result:" summary (it crashed or hung), when the summary's count
# differs from the "... ok" lines seen, or when its filters matched nothing.

FILES=${CAPSA_VM_FILES:-/opt/capsa-vm/files}
THREADS=${CAPSA_VM_TEST_THREADS:-3}
T=${CAPSA_VM_TEST_TIMEOUT:-240} # seconds one binary may take
OUT=/tmp/cargo-tests

mkdir -p "$OUT"
if [ -f "$FILES/smoke.sh" ]; then
  echo "# ---- smoke.sh"
  sh "$FILES/smoke.sh" || echo "FAIL smoke.sh: it exited with status $?"
fi

[ -f "$FILES/plan" ] || { echo "FAIL cargo-tests: no $FILES/plan"; exit 1; }

# The harness runs capsa only (no runc in the VM): CAPSA_RUNTIME names it.
export CAPSA_RUNTIME="${CAPSA:-/usr/local/bin/capsa}"
export RUST_BACKTRACE=0

while read -r name filters; do
  case $name in '' | '#'*) continue ;; esac
  bin=$FILES/$name
  if [ ! -x "$bin" ]; then
    echo "FAIL $name: $bin is missing"
    continue
  fi
  echo "# ---- $name ${filters:+(filters: $filters)}"
  start=$(cut -d' ' -f1 /proc/uptime)
  # stdout (libtest's lines and the failures' captured output) is shown
  # as it comes; stderr holds the harness's loud SKIPPED notices, which
  # could otherwise land in the middle of a "test x ... ok" line.
  # shellcheck disable=SC2086 # the filters are words
  (cd /tmp && timeout "$T" "$bin" --test-threads="$THREADS" $filters 2>"$OUT/$name.err") |
    tee "$OUT/$name.out"
  end=$(cut -d' ' -f1 /proc/uptime)
  sed -n 's/^test \(.*\) \.\.\. ok$/PASS '"$name"'::\1/p' "$OUT/$name.out"
  sed -n 's/^test \(.*\) \.\.\. FAILED$/FAIL '"$name"'::\1: see its output above/p' "$OUT/$name.out"
  sed -n 's/^test \(.*\) \.\.\. ignored\(.*\)$/SKIP '"$name"'::\1: ignored\2/p' "$OUT/$name.out"
  grep -v '^$' "$OUT/$name.err" | sed -n 's/^!!!!!!!! \(.*\)$/SKIP '"$name"': \1/p'
  grep -v '^$' "$OUT/$name.err" | grep -v '^!!!!!!!! ' | sed 's/^/# stderr: /'

  summary=$(grep '^test result: ' "$OUT/$name.out" | tail -n 1)
  ok_lines=$(grep -c '^test .* \.\.\. ok$' "$OUT/$name.out")
  failed_lines=$(grep -c '^test .* \.\.\. FAILED$' "$OUT/$name.out")
  passed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) passed;.*/\1/p')
  failed=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed;.*/\1/p')
  echo "# $name: ${summary:-no summary}, took $(echo "$start $end" | awk '{printf "%.1f", $2 - $1}')s"
  if [ -z "$summary" ]; then
    echo "FAIL $name: no libtest summary line: the binary crashed or timed out (${T}s)"
  elif [ "$passed" != "$ok_lines" ]; then
    echo "FAIL $name: the summary says $passed passed but $ok_lines '... ok' lines were seen"
  elif [ "$failed" != "$failed_lines" ]; then
    echo "FAIL $name: the summary says $failed failed but $failed_lines '... FAILED' lines were seen"
  elif [ "$passed" = 0 ] && [ "$failed" = 0 ]; then
    echo "FAIL $name: no test ran (filters: ${filters:-none})"
  fi
done <"$FILES/plan"
exit 0
