#!/usr/bin/env bash
# Builds capsa, makes a busybox bundle with `capsa spec` whose root is an
# overlay of two read-only image layers and a writable container layer (as
# containerd and podman build one), and runs it in new pid, network, mount,
# ipc, uts and cgroup namespaces. Then two containers on a bridge: a
# createRuntime hook plugs each into `capsa-demo0` with a veth pair, and one
# pings the other.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
require_root
need_packages busybox-static jq iproute2 util-linux
capsa=$(scripts/build-release.sh)

bundle=$(mktemp -d -t capsa-demo.XXXXXX)
bridge=capsa-demo0
cleanup() {
  "$capsa" --root "$bundle/state" delete --force "demo-$$-a" >/dev/null 2>&1 || true
  ip link del "$bridge" 2>/dev/null || true
  umount "$bundle/rootfs" 2>/dev/null || true
  rm -rf "$bundle"
}
trap cleanup EXIT
# Image layer 1: busybox. Image layer 2: an "app". Then the container's own
# writable layer; overlayfs shows the union at rootfs/.
base=$bundle/layers/busybox app=$bundle/layers/app
mkdir -p "$base/bin" "$base"/{proc,sys,dev,tmp,etc} "$app/app" "$bundle"/{upper,work,rootfs}
cp /bin/busybox "$base/bin/busybox"
for c in sh cat echo hostname ip ls ps grep ping sleep; do ln -s busybox "$base/bin/$c"; done
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

# ------------------------------------------------------------ networking
# Two containers on the bridge capsa-demo0 (10.77.0.1/24 on the host side).
# Their root is the busybox layer itself, read-only. The createRuntime hook
# runs on the host once the container's network namespace exists, with the
# container's state (its pid) on stdin: it makes the bridge if needed, a veth
# pair, moves one end into the container as eth0 with the address given, and
# puts the other on the bridge. When a container goes, its namespace goes and
# the kernel destroys the veth with it.
cat > "$bundle/net-hook.sh" <<'HOOK'
set -eu
addr=$1 bridge=$2
pid=$(jq -r .pid)
if ! ip link show "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge
  ip addr add 10.77.0.1/24 dev "$bridge"
  ip link set "$bridge" up
fi
host=cd$pid container=cd${pid}c
ip link add "$host" type veth peer name "$container"
ip link set "$container" netns "$pid"
ip link set "$host" master "$bridge" up
nsenter --net="/proc/$pid/ns/net" sh -c "
  ip link set $container name eth0
  ip addr add $addr dev eth0
  ip link set eth0 up
  ip link set lo up"
HOOK
net_bundle() { # DIR ADDRESS ARGS_JSON
  mkdir -p "$1"
  "$capsa" spec --bundle "$1"
  jq --arg root "$base" --arg hook "$bundle/net-hook.sh" --arg addr "$2" --arg br "$bridge" \
     --argjson args "$3" '
    .root = {path: $root, readonly: true} | .process.terminal = false | .process.args = $args
    | .process.capabilities |= with_entries(.value += ["CAP_NET_RAW"])
    | .hooks.createRuntime = [{path: "/bin/sh", args: ["sh", $hook, $addr, $br],
                               env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}]' \
    "$1/config.json" > "$1/config.tmp" && mv "$1/config.tmp" "$1/config.json"
}
net_bundle "$bundle/a" 10.77.0.2/24 '["sleep", "60"]'
net_bundle "$bundle/b" 10.77.0.3/24 \
  '["sh", "-c", "ip -o -4 addr show eth0 | cut -d\\  -f2,7; ping -c 3 -W 2 10.77.0.2"]'
echo
echo "# capsa create demo-$$-a (10.77.0.2), then capsa run demo-$$-b (10.77.0.3), which pings it"
"$capsa" --root "$bundle/state" create --bundle "$bundle/a" "demo-$$-a"
"$capsa" --root "$bundle/state" start "demo-$$-a"
echo "# on the host, $bridge has the veth of demo-$$-a: $(ip -o link show master "$bridge" | cut -d: -f2 | cut -d@ -f1 | tr -d " ")"
"$capsa" --root "$bundle/state" run --bundle "$bundle/b" "demo-$$-b"
"$capsa" --root "$bundle/state" delete --force "demo-$$-a"
ip link del "$bridge"
echo "# both containers and the bridge $bridge are gone"
