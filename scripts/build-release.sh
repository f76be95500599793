#!/usr/bin/env bash
# Builds capsa as it ships: the release profile (Cargo.toml: lto, one codegen
# unit, panic=abort, stripped) linked as a static-pie executable, glibc
# included. A static binary starts without ld.so (no symbol lookup or
# relocation of shared libraries) and keeps fewer pages resident; capsa calls
# nothing of glibc that needs dlopen (no NSS lookups: ids are numeric).
#
# `-C target-feature=+crt-static` goes to the final crate only (`cargo rustc`):
# given to every crate, as RUSTFLAGS would, it breaks the proc-macro
# dependencies, which must stay dynamic libraries.
#
#   scripts/build-release.sh      # prints the path of the binary
set -euo pipefail
cd "$(dirname "$0")/.."
cargo rustc --release -q -p capsa --bin capsa -- -C target-feature=+crt-static
echo "${CARGO_TARGET_DIR:-$PWD/target}/release/capsa"
