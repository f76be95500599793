#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests,
# integration tests against real bundles as root, the OCI validation
# ratchet, the cgroup integration tests on a pure cgroup v2 host (a qemu VM), podman,
# containerd, docker and buildah driving capsa, and the benchmark harness in
# its quick mode. Installs what it needs from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root
need_packages busybox-static jq golang-go make dbus python3-dbus python3-gi iproute2 golang-github-containers-common gcc-multilib

step() { echo; echo "=== $* ($(date +%T))"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

step "build"
cargo build --workspace -q

step "unit and integration tests (as root, including the real-host cgroup tests)"
cargo test --workspace --no-fail-fast -- --include-ignored

step "OCI validation ratchet"
integration_test/conformance/run-ratchet.sh "$PWD/target/debug/capsa"

step "a pure cgroup v2 host: the cgroup integration tests and smoke tests in a qemu VM"
scripts/build-release.sh >/dev/null
integration_test/vm/run-tests.sh "$PWD/target/release/capsa"

step "real clients: podman (conmon), containerd (ctr), docker and buildah on capsa"
integration_test/clients/run.sh "$PWD/target/release/capsa"

step "benchmark harness, quick mode (checks that it runs; no timing is asserted)"
./bench/run.sh --quick --capsa "$PWD/target/release/capsa"
