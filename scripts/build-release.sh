#!/usr/bin/env bash
# Builds capsa as it ships: the release profile (Cargo.toml: lto, one codegen
# unit, panic=abort) linked as a static-pie executable, glibc included, then
# stripped. A static binary starts without ld.so (no symbol lookup or
# relocation of shared libraries) and keeps fewer pages resident; capsa calls
# nothing of glibc that needs dlopen (no NSS lookups: ids are numeric).
#
# `-C target-feature=+crt-static` goes to the final crate only (`cargo rustc`):
# given to every crate, as RUSTFLAGS would, it breaks the proc-macro
# dependencies, which must stay dynamic libraries.
#
# The link order (crates/capsa/link-order.txt, written by bench/hot-order.sh):
# lld places the functions the common commands run first and together, so the
# kernel's fault-around (64 KiB of file pages mapped per page fault) maps hot
# code, not the cold code (help and error rendering, regex, backtraces) that
# used to share the windows. That cut the peak RSS of `capsa create` by about
# a third (docs/performance.md). The names in the file are mangled with hashes
# that follow the toolchain, Cargo.lock, the profile and these very rustc
# arguments: after a change of any of them, run bench/hot-order.sh. A stale
# name is ignored (--no-warn-symbol-ordering), so a stale file costs memory,
# never the build. The path is relative to the workspace root, where cargo runs
# rustc and rustc runs the linker; it must not vary between checkouts, since
# cargo hashes the arguments into the final crate's symbol names.
#
# Stripping comes after the link (Cargo.toml keeps `strip = false`): the strip
# setting is part of every crate's metadata hash, so stripping in the profile
# would give the shipped binary other symbol names than the symbolised twin
# the ordering is measured on. `target/release/capsa-symbols` keeps that twin
# (same layout, with its symbol table) for bench/hot-order.sh and nm.
#
#   scripts/build-release.sh      # prints the path of the binary
set -euo pipefail
cd "$(dirname "$0")/.."
out=${CARGO_TARGET_DIR:-$PWD/target}/release
# cargo does not know the linker reads link-order.txt: a new order relinks
# through a touch of main.rs (a build script watching the file would change
# the crate's symbol hashes, and so the names in the file).
order=crates/capsa/link-order.txt
sum=$(sha256sum "$order" | cut -d' ' -f1)
if [[ $(cat "$out/link-order.sha256" 2>/dev/null) != "$sum" ]]; then
    touch crates/capsa/src/main.rs
fi
cargo rustc --release -q -p capsa --bin capsa -- -C target-feature=+crt-static \
    -C link-arg=-Wl,--symbol-ordering-file=crates/capsa/link-order.txt \
    -C link-arg=-Wl,--no-warn-symbol-ordering
echo "$sum" >"$out/link-order.sha256"
# A fresh link leaves an unstripped binary; an up-to-date one was stripped by
# the previous run and its twin is still current.
if readelf -S "$out/capsa" | grep -q '\.symtab'; then
    ln -f "$out/capsa" "$out/capsa-symbols"
    # A new file, renamed over: strip in place would write through the links.
    strip --strip-all -o "$out/capsa.stripped" "$out/capsa-symbols"
    mv -f "$out/capsa.stripped" "$out/capsa"
fi
echo "$out/capsa"
