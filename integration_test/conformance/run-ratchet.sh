#!/usr/bin/env bash
# run-ratchet.sh - OCI runtime-tools conformance ratchet for capsa.
#
#   run-ratchet.sh [--all] [CAPSA_BINARY [EXTRA_REGEX]]
#
# Runs the OCI runtime-tools validation suite (the repo's sibling
# shared/oci-validation/run.sh, see docs/conformance.md) against CAPSA_BINARY
# (default: target/release/capsa if it exists, else target/debug/capsa; pass ""
# to keep the default and still give EXTRA_REGEX) and checks it against the
# committed list ratchet.txt beside this script: one validation file name per
# line, `#` starts a comment. The list only grows.
#
# Files run: only those listed in ratchet.txt, plus those whose name matches
# EXTRA_REGEX (bash regex, as run.sh takes it); --all runs all 58.
#
# Verdict per file: run.sh's PASS. For the 7 hook files (hooks, prestart,
# poststart, poststop, prestart_fail, poststart_fail, poststop_fail), whose plan
# is 1..0 so that they always "PASS", it also needs:
#   - no YAML diagnostic `"error": "<non-empty>"` in the file's .tap. Exception:
#     `hooks` compares against a misspelt expected string, so when create, start
#     and delete all succeed it always logs "Hooks MUST be called in the listed
#     order"; that exact message is its best possible outcome and is accepted.
#     Any other error (for example a failed lifecycle step) still fails it.
#   - for poststart and poststop: no "WARNING: The post... hook invoke fails" in
#     its .stderr (the test only warns when the hook never ran).
#
# Exit status: 0 when every listed file passed; 1 when a listed file regressed
# (each one is named); 2 when setup failed (no suite dir, no binary, not root,
# bad ratchet entry, run.sh failed). Files that pass but are not listed are
# printed as "newly passing".
#
# Env: OCI_VALIDATION_DIR (suite dir, default <repo>/../shared/oci-validation),
# RATCHET_FILE (default ratchet.txt beside this script), VALIDATION_TIMEOUT and
# OCI_VALIDATION_CACHE (passed to run.sh). Output: <repo>/target/oci-validation/
# <binary name>/ (<file>.tap, <file>.stderr, run.log).
set -euo pipefail

die() { echo "run-ratchet: ERROR: $*" >&2; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SUITE=${OCI_VALIDATION_DIR:-$REPO/../shared/oci-validation}
RATCHET=${RATCHET_FILE:-$HERE/ratchet.txt}
HOOK_FILES=" hooks prestart poststart poststop prestart_fail poststart_fail poststop_fail "
HOOKS_SUITE_BUG='Hooks MUST be called in the listed order'

all=0
args=()
for a in "$@"; do
  case $a in
    --all) all=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option: $a (usage: run-ratchet.sh [--all] [CAPSA_BINARY [EXTRA_REGEX]])" ;;
    *) args+=("$a") ;;
  esac
done
[ ${#args[@]} -le 2 ] || die "too many arguments (usage: run-ratchet.sh [--all] [CAPSA_BINARY [EXTRA_REGEX]])"
BIN=${args[0]:-}
EXTRA=${args[1]:-}

# --- setup checks: fail loudly, never pass silently ---------------------------
[ -d "$SUITE" ] || die "OCI validation suite dir not found: $SUITE
  It is the repo's sibling shared/oci-validation (set OCI_VALIDATION_DIR to override)."
[ -x "$SUITE/run.sh" ] || die "no executable run.sh in $SUITE"
[ "$(id -u)" = 0 ] || die "the suite creates containers: run as root"
if [ -z "$BIN" ]; then
  if [ -x "$REPO/target/release/capsa" ]; then BIN=$REPO/target/release/capsa
  else BIN=$REPO/target/debug/capsa; fi
fi
{ [ -f "$BIN" ] && [ -x "$BIN" ]; } || die "capsa binary not found or not executable: $BIN (build it with cargo build)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
{ [ -f "$RATCHET" ] && [ -r "$RATCHET" ]; } || die "ratchet list not found: $RATCHET"

listed=()
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%%#*}
  line=$(echo "$line" | tr -d '[:space:]')
  [ -n "$line" ] || continue
  [[ $line =~ ^[a-z0-9_]+$ ]] || die "bad entry in $RATCHET: '$line' (one validation file name per line)"
  listed+=("$line")
done <"$RATCHET"
is_listed() { local n; for n in ${listed[@]+"${listed[@]}"}; do [ "$n" = "$1" ] && return 0; done; return 1; }

# --- what to run --------------------------------------------------------------
if [ $all = 1 ]; then
  regex=.
else
  parts=()
  [ ${#listed[@]} -gt 0 ] && parts+=("^($(IFS='|'; echo "${listed[*]}"))\$")
  [ -n "$EXTRA" ] && parts+=("($EXTRA)")
  if [ ${#parts[@]} -eq 0 ]; then
    echo "run-ratchet: $RATCHET lists no files and no regex or --all was given: nothing to check."
    echo "ratchet: 0 passed, 0 failed"
    exit 0
  fi
  regex=$(IFS='|'; echo "${parts[*]}")
fi

OUT=$REPO/target/oci-validation/$(basename "$BIN")
mkdir -p "$OUT" || die "cannot create $OUT"
rm -f "$OUT"/*.tap "$OUT"/*.stderr "$OUT/run.log"   # no stale results
echo "run-ratchet: runtime $BIN, ${#listed[@]} listed file(s), regex '$regex', output in $OUT"

set +e
OUT=$OUT "$SUITE/run.sh" "$BIN" "$regex" 2>&1 | tee "$OUT/run.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || die "run.sh failed (exit $rc); see $OUT/run.log"

# --- verdicts -----------------------------------------------------------------
# hook_problem NAME: prints why a hook file that run.sh PASSed does not count.
hook_problem() {
  local name=$1 tap=$OUT/$1.tap err
  err=$(grep -E '^ *"error": "[^"]' "$tap" | sed -E 's/^ *"error": "//; s/\\n.*//; s/",?$//' | head -3 || true)
  if [ -n "$err" ]; then
    if [ "$name" = hooks ] && [ "$err" = "$HOOKS_SUITE_BUG" ]; then
      :   # the suite-bug outcome, reached only when create/start/delete succeeded
    else
      echo "logs an error: $(echo "$err" | paste -sd';' -)"
      return
    fi
  fi
  if [ "$name" = poststart ] || [ "$name" = poststop ]; then
    if grep -q "WARNING: The post.* hook invoke fails" "$OUT/$name.stderr" 2>/dev/null; then
      echo "the $name hook was never invoked (test only warns)"
    fi
  fi
}

declare -A verdict reason
while read -r name res _; do
  if [ "$res" != PASS ] && [ "$res" != FAIL ]; then continue; fi
  verdict[$name]=$res
  reason[$name]="run.sh verdict $res"
  if [ "$res" = PASS ] && [[ $HOOK_FILES == *" $name "* ]]; then
    why=$(hook_problem "$name")
    if [ -n "$why" ]; then verdict[$name]=FAIL; reason[$name]=$why; fi
  fi
done < <(grep -E '^[a-z0-9_]+ +(PASS|FAIL) ' "$OUT/run.log")

regressions=() newly=()
for name in ${listed[@]+"${listed[@]}"}; do
  if [ -z "${verdict[$name]:-}" ]; then
    regressions+=("$name: did not run (not a validation file name?)")
  elif [ "${verdict[$name]}" != PASS ]; then
    line=$(grep -E "^$name " "$OUT/run.log" | head -1 | tr -s ' ' || true)
    regressions+=("$name: ${reason[$name]} [$line]")
  fi
done
for name in $(printf '%s\n' "${!verdict[@]}" | sort); do
  [ "${verdict[$name]}" = PASS ] && ! is_listed "$name" && newly+=("$name")
done

echo
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/run.log" | tail -1 || true)
totals=$(grep -E '^TAP totals:' "$OUT/run.log" | tail -1 || true)
echo "suite summary: ${summary:-missing from run.sh output}${totals:+ (${totals})}"
if [ ${#newly[@]} -gt 0 ]; then
  echo "newly passing: add them to ratchet.txt: ${newly[*]}"
fi
if [ ${#regressions[@]} -gt 0 ]; then
  echo "REGRESSIONS (listed in $(basename "$RATCHET") but not passing):"
  printf '  %s\n' "${regressions[@]}"
  echo "(details: $OUT/<file>.tap and .stderr)"
fi
echo "ratchet: $(( ${#listed[@]} - ${#regressions[@]} )) passed, ${#regressions[@]} failed"
[ ${#regressions[@]} -eq 0 ]
