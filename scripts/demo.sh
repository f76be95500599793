#!/usr/bin/env bash
# Builds capsa, makes a busybox bundle with `capsa spec`, and runs it in new
# pid, network, mount, ipc, uts and cgroup namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root
need_packages busybox-static jq
cargo build --release -q -p capsa
capsa=$PWD/target/release/capsa

bundle=$(mktemp -d -t capsa-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs"/{proc,sys,dev,tmp,etc}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for c in sh cat echo hostname ip ls ps; do ln -s busybox "$bundle/rootfs/bin/$c"; done
echo "root:x:0:0:root:/:/bin/sh" > "$bundle/rootfs/etc/passwd"

"$capsa" spec --bundle "$bundle"
script='echo "pid:      $$ (I am the init of my own pid namespace)"
echo "hostname: $(hostname)"
echo "network:  $(ip -o link | cut -d: -f2 | tr -d " " | tr "\n" " ")"
echo "cgroup:   $(grep memory /proc/self/cgroup)"
echo "ps:"; ps'
jq --arg s "$script" '.process.terminal = false | .process.args = ["sh", "-c", $s]' \
  "$bundle/config.json" > "$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"

echo "# capsa run demo-$$ (bundle $bundle)"
"$capsa" --root "$bundle/state" run --bundle "$bundle" "demo-$$"
