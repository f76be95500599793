# Shared by run.sh and the suites (podman.sh, containerd.sh).
#
# Every test is a shell function run in a fresh `bash -eo pipefail` under
# `timeout`, with its output in $WORK/logs/<n>-<name>.log. A test fails by
# failing a command or an assertion (below); its log tail is then printed.

# ---------------------------------------------------------------- assertions

die() { echo "ASSERTION FAILED: $*" >&2; exit 1; }

# expect_rc WANT CMD...: run CMD, its stdout in $OUT, stderr in $ERR, status in $RC.
expect_rc() {
  local want=$1; shift
  run_capture "$@"
  [ "$RC" = "$want" ] || die "exit status $RC, want $want, from: $*"$'\n'"--- stdout:"$'\n'"$OUT"$'\n'"--- stderr:"$'\n'"$ERR"
}

# run_capture CMD...: like expect_rc without the check.
run_capture() {
  local o e
  o=$(mktemp) e=$(mktemp)
  set +e
  "$@" >"$o" 2>"$e"
  RC=$?
  set -e
  OUT=$(cat "$o") ERR=$(cat "$e")
  rm -f "$o" "$e"
  echo "+ $* -> $RC" >&2
  [ -z "$OUT" ] || printf '  stdout: %s\n' "$OUT" | head -40 >&2
  [ -z "$ERR" ] || printf '  stderr: %s\n' "$ERR" | head -40 >&2
}

expect_eq() { [ "$1" = "$2" ] || die "${3:-value}: got [$1], want [$2]"; }
expect_contains() { case "$1" in *"$2"*) ;; *) die "${3:-text} does not contain [$2]:"$'\n'"$1" ;; esac; }
expect_not_contains() { case "$1" in *"$2"*) die "${3:-text} contains [$2]:"$'\n'"$1" ;; *) ;; esac; }

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for: $*"
    sleep 0.1
  done
}

# cleanup_later CMD...: run CMD when the test process exits, pass or fail, so
# that a failed test does not leave its containers to the next ones.
CLEANUPS=()
cleanup_later() { CLEANUPS+=("$(printf '%q ' "$@")"); }
run_cleanups() {
  local c
  for c in "${CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
}

# ---------------------------------------------------------------- leftovers

# Everything a container with this id may leave on the host: the runtime's
# state dir, cgroups named after it, mounts naming it, processes in those cgroups.
# leftovers_of ID STATE_ROOT CGROUP_GLOB... ; prints what it finds.
leftovers_of() {
  local id=$1 root=$2; shift 2
  [ ! -e "$root/$id" ] || echo "state dir: $root/$id"
  local g d
  for g in "$@"; do
    for d in /sys/fs/cgroup/*/$g /sys/fs/cgroup/unified/$g; do
      [ -d "$d" ] || continue
      echo "cgroup: $d (procs: $(tr '\n' ' ' <"$d/cgroup.procs" 2>/dev/null))"
    done
  done
  grep -F -- "$id" /proc/self/mountinfo | sed 's/^/mount: /' || true
}

# expect_clean WHAT FUNCTION [ARGS...]: calls FUNCTION until it prints
# nothing (what is left of WHAT; the host may need a moment to tear it down),
# and fails with what it printed after 10 s.
expect_clean() {
  local what=$1 left deadline=$((SECONDS + 10)); shift
  while :; do
    left=$("$@")
    [ -n "$left" ] || return 0
    [ $SECONDS -lt $deadline ] || die "$what left behind:"$'\n'"$left"
    sleep 0.2
  done
}

# -------------------------------------------------------------------- runner

PASSED=0 FAILED=0 SKIPPED=0
FAILED_NAMES=() SKIPPED_NAMES=() KNOWN_BUG_NAMES=()
TESTNO=0

# t [--known-bug REASON] [--skip REASON] [--timeout S] NAME FUNCTION [ARGS...]
#   --known-bug: a capsa bug makes this scenario fail today. It still runs
#   with the oracle (runc); with the runtime under test it is SKIPPED LOUDLY
#   unless CLIENTS_RUN_KNOWN_BUGS=1 (then it runs and counts like any test).
#   Remove the flag when the bug is fixed.
t() {
  local known_bug="" skip="" tmo=${CLIENTS_TEST_TIMEOUT:-120}
  while :; do
    case "$1" in
      --known-bug) known_bug=$2; shift 2 ;;
      --skip) skip=$2; shift 2 ;;
      --timeout) tmo=$2; shift 2 ;;
      *) break ;;
    esac
  done
  local name="[$RTLABEL] $1" fn=$2; shift 2
  TESTNO=$((TESTNO + 1))
  local log
  log="$WORK/logs/$(printf '%03d' $TESTNO)-$RTLABEL-$(echo "$fn" | tr -c 'a-zA-Z0-9_\n-' _).log"
  if [ -n "$skip" ]; then
    SKIPPED=$((SKIPPED + 1)); SKIPPED_NAMES+=("$name: $skip")
    printf 'SKIP  %s\n      !!! %s\n' "$name" "$skip"
    return 0
  fi
  if [ -n "$known_bug" ] && [ "$RTKIND" != oracle ] && [ "${CLIENTS_RUN_KNOWN_BUGS:-0}" != 1 ]; then
    SKIPPED=$((SKIPPED + 1)); KNOWN_BUG_NAMES+=("$name: $known_bug")
    printf 'SKIP  %s\n      !!! KNOWN CAPSA BUG, not run (CLIENTS_RUN_KNOWN_BUGS=1 runs it): %s\n' "$name" "$known_bug"
    return 0
  fi
  local start=$SECONDS rc
  timeout -k 10 "$tmo" bash -eo pipefail -c '
      . "$CLIENTS_DIR/lib.sh"; . "$CLIENTS_DIR/$SUITE_FILE"
      trap run_cleanups EXIT; trap "exit 143" TERM
      "$@"' "$fn" "$fn" "$@" >"$log" 2>&1
  rc=$?
  if [ $rc = 0 ]; then
    PASSED=$((PASSED + 1))
    printf 'ok    %s (%ss)\n' "$name" $((SECONDS - start))
  else
    FAILED=$((FAILED + 1)); FAILED_NAMES+=("$name")
    [ $rc != 124 ] || echo "TIMEOUT after ${tmo}s" >>"$log"
    printf 'FAIL  %s (%ss, exit %s)%s\n' "$name" $((SECONDS - start)) $rc "${known_bug:+  [known capsa bug: $known_bug]}"
    sed 's/^/      | /' "$log" | tail -n 40
    echo "      (full log: $log)"
  fi
}
