#!/usr/bin/env bash
# Regenerates crates/capsa/link-order.txt, the order in which lld lays out
# capsa's functions (scripts/build-release.sh passes it to the final link).
#
# Why: the kernel maps executable file pages by fault-around, 64 KiB (16
# pages) per page fault. With the default layout the few hundred KiB of code
# a `capsa create` runs were spread over most of the 4 MB .text, so every
# command mapped ~2.9 MB of text. Listing the executed functions first, in
# the order they first run, packs them into a few windows and leaves the cold
# code (help and error rendering, regex, backtraces) unmapped.
#
# How: builds the release binary (scripts/build-release.sh), then
# bench/hot_order.py puts a uprobe on every function of its symbolised twin
# (target/release/capsa-symbols), runs the common commands on a busybox
# bundle (create, state, start, exec, events, update, ps, list, pause,
# resume, kill, delete, run, --log, delete -f, spec, features; on the host's
# hybrid cgroups, then on plain cgroup v1 as the bench sees it) and writes the
# mangled names of the functions that ran, first-run first.
#
# When: the names carry hashes that change with the toolchain, Cargo.lock,
# the release profile and build-release.sh's rustc arguments, and the set of
# functions changes with the code. Stale names cost memory, never
# correctness (lld ignores unknown names), so rerun this after a toolchain
# or dependency update or a large change to the code, and commit the file.
# Root only (uprobes, containers); state, ids and the tracing instance are
# its own (ids `order-*`, tracefs group and instance `capsa_order`).
#
#   bench/hot-order.sh [--binary PATH-WITH-SYMBOLS] [--out FILE]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
binary= out=$repo/crates/capsa/link-order.txt
while (($#)); do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--out FILE]" >&2; exit 2 ;;
    esac
done
((EUID == 0)) || { echo "hot-order: needs root (uprobes, containers)" >&2; exit 1; }
if [[ -z $binary ]]; then
    shipped=$(cd "$repo" && scripts/build-release.sh)
    binary=$(dirname "$shipped")/capsa-symbols
fi
readelf -S "$binary" | grep -q '\.symtab' || { echo "hot-order: $binary has no symbols" >&2; exit 1; }
bb=/bin/busybox
[[ -x $bb ]] && ! ldd "$bb" >/dev/null 2>&1 || { echo "hot-order: needs a static $bb (busybox-static)" >&2; exit 1; }

work=$(mktemp -d /tmp/capsa-hot-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/"{proc,sys,dev,tmp,etc} "$work/spec"
cp "$bb" "$work/rootfs/bin/busybox"
for a in true sleep sh; do ln -s busybox "$work/rootfs/bin/$a"; done
"$binary" spec --bundle "$work/spec"
for b in "true:/bin/true" "sleep:/bin/sleep 1000"; do
    name=${b%%:*} args=${b#*:}
    mkdir -p "$work/bundle-$name"
    python3 - "$work/spec/config.json" "$work/bundle-$name/config.json" "$work/rootfs" $args <<'PY'
import json, sys
src, dst, rootfs, *args = sys.argv[1:]
c = json.load(open(src))
c["process"].update(terminal=False, args=args)
c["root"]["path"] = rootfs
json.dump(c, open(dst, "w"), indent=2)
PY
done
python3 "$repo/bench/hot_order.py" --binary "$binary" --work "$work" --out "$out"
