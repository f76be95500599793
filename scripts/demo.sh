#!/usr/bin/env bash
# Builds capsa, makes a busybox bundle with `capsa spec` whose root is an
# overlay of two read-only image layers and a writable container layer (as
# containerd and podman build one), and runs it in new pid, network, mount,
# ipc, uts and cgroup namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root
need_packages busybox-static jq
cargo build --release -q -p capsa
capsa=$PWD/target/release/capsa

bundle=$(mktemp -d -t capsa-demo.XXXXXX)
cleanup() { umount "$bundle/rootfs" 2>/dev/null || true; rm -rf "$bundle"; }
trap cleanup EXIT
# Image layer 1: busybox. Image layer 2: an "app". Then the container's own
# writable layer; overlayfs shows the union at rootfs/.
base=$bundle/layers/busybox app=$bundle/layers/app
mkdir -p "$base/bin" "$base"/{proc,sys,dev,tmp,etc} "$app/app" "$bundle"/{upper,work,rootfs}
cp /bin/busybox "$base/bin/busybox"
for c in sh cat echo hostname ip ls ps grep; do ln -s busybox "$base/bin/$c"; done
echo "root:x:0:0:root:/:/bin/sh" > "$base/etc/passwd"
echo 'echo "app:      hello from the app layer, on an $(grep -m1 " / " /proc/mounts | cut -d" " -f3) root"' > "$app/app/hello.sh"
mount -t overlay overlay -o "lowerdir=$app:$base,upperdir=$bundle/upper,workdir=$bundle/work" "$bundle/rootfs"

"$capsa" spec --bundle "$bundle"
script='echo "pid:      $$ (I am the init of my own pid namespace)"
echo "hostname: $(hostname)"
echo "network:  $(ip -o link | cut -d: -f2 | tr -d " " | tr "\n" " ")"
echo "cgroup:   $(grep memory /proc/self/cgroup) (its own cgroup namespace)"
sh /app/hello.sh
echo "written by the container" > /app/note
echo "ps:"; ps'
jq --arg s "$script" '.process.terminal = false | .process.args = ["sh", "-c", $s] | .root.readonly = false' \
  "$bundle/config.json" > "$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"

echo "# capsa run demo-$$ (bundle $bundle)"
"$capsa" --root "$bundle/state" run --bundle "$bundle" "demo-$$"
echo "# the container's write went to its own layer: $(cat "$bundle/upper/app/note"); the app layer has no note: $(ls "$app/app")"
