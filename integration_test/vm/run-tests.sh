#!/usr/bin/env bash
# capsa's cgroup integration tests on a pure cgroup v2 host: builds the
# Rust test binaries (cargo test --no-run), and boots the VM of run-v2.sh
# with them, smoke.sh and cargo-tests.sh, which runs them there against
# capsa alone (no runc in the VM). See README.md beside this file.
#
#   run-tests.sh [--release] [CAPSA_BINARY]
#
# --release builds the test binaries with the release profile (LTO: slow
# to build, no faster to run, as the harness mostly waits); by default they
# are the debug ones `cargo test` builds anyway, stripped. CAPSA_BINARY
# defaults to target/release/capsa, built when missing.
#
# Exit status: run-v2.sh's (0 all passed, 1 failures, 2 setup problems).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 2; }

profile=()
if [ "${1:-}" = --release ]; then
  profile=(--release)
  shift
fi
cd "$repo"
target=${CARGO_TARGET_DIR:-target}
capsa_bin=${1:-}
if [ -z "$capsa_bin" ]; then
  capsa_bin=$target/release/capsa
  [ -x "$capsa_bin" ] || scripts/build-release.sh >/dev/null || die "cannot build capsa"
fi

# What runs in the VM: each test file, with libtest filters where only a
# part of the file is about cgroups. lifecycle's create_state_start_kill_delete
# and creating_an_existing_id_fails_and_keeps_the_first check v1 hierarchies
# (cgroup_v2 has the v2 form of their placement checks), so they stay out.
plan=(
  "resources"
  "devices"
  "events"
  "cgroups"
  "lifecycle delete_force delete_without_force run_exits run_killed run_detach kill_of_a_stopped"
  "cli go_flag_spellings exec_refuses_unsupported_flags racing_creates"
)
tests=()
for line in "${plan[@]}"; do tests+=(--test "${line%% *}"); done

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing (apt-get install $2)"; }
need jq jq
need strip binutils

echo "# building the test binaries: cargo test ${profile[*]} --no-run ${tests[*]}" >&2
json=$(cargo test "${profile[@]}" -q -p capsa-integration-test --no-run --message-format=json "${tests[@]}") ||
  die "cargo test --no-run failed"

work=$(mktemp -d "${TMPDIR:-/tmp}/capsa-vm-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
for line in "${plan[@]}"; do
  name=${line%% *}
  exe=$(echo "$json" | jq -r --arg n "$name" \
    'select(.reason == "compiler-artifact" and .target.name == $n and .executable != null) | .executable' |
    tail -n 1)
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then die "cargo built no test binary for $name"; fi
  # Stripped: a debug test binary drops from ~16 MB to ~2 MB.
  strip -o "$work/$name" "$exe"
  echo "$line" >>"$work/plan"
done
cp "$here/smoke.sh" "$work/smoke.sh"

files=("$work/plan" "$work/smoke.sh")
for line in "${plan[@]}"; do files+=("$work/${line%% *}"); done
# The tests take 2-2.5 minutes of a 2-core TCG guest; leave room for a busy host.
export CAPSA_VM_TIMEOUT=${CAPSA_VM_TIMEOUT:-600}
"$here/run-v2.sh" "$capsa_bin" "$here/cargo-tests.sh" "${files[@]}"
