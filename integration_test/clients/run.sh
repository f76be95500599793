#!/usr/bin/env bash
# Real clients on a runc-compatible runtime, end to end: podman 4.3 + conmon,
# containerd 1.6 + ctr, docker 20.10 (dockerd) and buildah 1.28, driven as a
# person would. See README.md.
#
#   integration_test/clients/run.sh RUNTIME_BINARY
#
# Installs what is missing (Debian packages), builds a busybox image, runs every
# scenario with runc first (the oracle: proves the scenario itself is right) and
# then with RUNTIME_BINARY. Last line: "N passed, M failed, K skipped"; exits
# non-zero when a test failed.
#
# Environment:
#   CLIENTS_ORACLE=PATH|none   oracle runtime (default: runc from PATH)
#   CLIENTS_SUITES="podman containerd docker buildah network cri"   which suites
#   CLIENTS_RUN_KNOWN_BUGS=1   also run the scenarios marked as known capsa bugs
#   CLIENTS_KEEP_WORK=1        keep the work dir (logs, storage) afterwards
#   CLIENTS_TEST_TIMEOUT=S     per-test timeout (default 120)
set -uo pipefail

CLIENTS_DIR=$(cd "$(dirname "$0")" && pwd)
export CLIENTS_DIR
. "$CLIENTS_DIR/lib.sh"

usage() { echo "usage: $0 RUNTIME_BINARY" >&2; exit 2; }
[ $# = 1 ] || usage
[ "$(id -u)" = 0 ] || { echo "$0: the clients and the runtime need root" >&2; exit 2; }
SUBJECT=$(command -v "$1" 2>/dev/null) && SUBJECT=$(realpath "$SUBJECT") ||
  { echo "$0: $1: no such runtime binary" >&2; exit 2; }
T0=$SECONDS

# ---------------------------------------------------------------- packages
need_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && return 0
  echo "# installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >/dev/null ||
    { echo "$0: cannot install ${missing[*]}" >&2; exit 2; }
}
need_packages podman conmon containerd busybox-static runc python3 util-linux procps

ORACLE=${CLIENTS_ORACLE:-$(command -v runc || true)}
[ "$ORACLE" != none ] || ORACLE=""
[ -z "$ORACLE" ] || ORACLE=$(realpath "$ORACLE")
[ "$ORACLE" != "$SUBJECT" ] || ORACLE=""
if [ -n "$ORACLE" ] && [ "$(basename "$ORACLE")" = "$(basename "$SUBJECT")" ]; then
  echo "$0: the runtime and the oracle share the name $(basename "$SUBJECT"): rename one or set CLIENTS_ORACLE=none" >&2
  exit 2
fi
RUNTIME_PATHS=("$SUBJECT" ${ORACLE:+"$ORACLE"})

# ------------------------------------------------------------------- setup
WORK=$(mktemp -d /tmp/capsa-clients.XXXXXX)
export WORK
mkdir -p "$WORK/logs"
CTRD_PID=""
DOCKERD_PID=""
CRI_PID=""

cleanup() {
  set +e
  local rt id p
  if [ -n "${PODMAN_ROOT:-}" ]; then
    pod_all rm -a -f -t 0 >/dev/null 2>&1
    # what podman could not remove (a runtime that misbehaved): the runtimes
    # delete it themselves, its conmon goes
    for id in $(pod_all ps -a -q --no-trunc 2>/dev/null); do
      for rt in "${RUNTIME_PATHS[@]}"; do "$rt" delete --force "$id" >/dev/null 2>&1; done
    done
    for p in $(pgrep -f "conmon .*$WORK/podman"); do kill "$p" 2>/dev/null; done
    pod_all rm -a -f -t 0 >/dev/null 2>&1
    pod_all rmi -a -f >/dev/null 2>&1
  fi
  if [ -n "$CTRD_PID" ]; then
    local c
    for c in $(ctr -a "$CTR_ADDR" -n "$CTR_NS" container ls -q 2>/dev/null); do
      ctr -a "$CTR_ADDR" -n "$CTR_NS" task delete -f "$c" >/dev/null 2>&1
      ctr -a "$CTR_ADDR" -n "$CTR_NS" container delete "$c" >/dev/null 2>&1
    done
    kill "$CTRD_PID" 2>/dev/null
    local i
    for i in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CTRD_PID" 2>/dev/null
    # shims and containers containerd could not clean up
    for rt in "${RUNTIME_PATHS[@]}"; do
      for id in $(ls "$WORK/ctrd/runc-root-$(basename "$rt")/$CTR_NS" 2>/dev/null); do
        "$rt" --root "$WORK/ctrd/runc-root-$(basename "$rt")/$CTR_NS" delete --force "$id" >/dev/null 2>&1
      done
    done
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CTR_ADDR"); do kill -9 "$p" 2>/dev/null; done
    # the namespace's parent cgroups (made by the runtimes), when empty
    rmdir /sys/fs/cgroup/*/"$CTR_NS" /sys/fs/cgroup/unified/"$CTR_NS" 2>/dev/null
  fi
  if [ -n "$DOCKERD_PID" ]; then
    /usr/bin/docker ps -a -q | xargs -r /usr/bin/docker rm -f >/dev/null 2>&1
    kill "$DOCKERD_PID" 2>/dev/null
    for i in $(seq 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DOCKERD_PID" 2>/dev/null
    for rt in "${RUNTIME_PATHS[@]}"; do
      for id in $(ls "$DOCKER_EXEC/runtime-$(basename "$rt")/$DOCKER_NS" 2>/dev/null); do
        "$rt" --root "$DOCKER_EXEC/runtime-$(basename "$rt")/$DOCKER_NS" delete --force "$id" >/dev/null 2>&1
      done
    done
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $DOCKER_EXEC/"); do kill -9 "$p" 2>/dev/null; done
    for p in $(pgrep -f "containerd --config $DOCKER_EXEC/"); do kill -9 "$p" 2>/dev/null; done
    rmdir /sys/fs/cgroup/*/docker 2>/dev/null
  fi
  [ -z "$CRI_PID" ] || cri_cleanup
  if [ -n "${BUILDAH_ROOT:-}" ]; then
    bld_all rm -a >/dev/null 2>&1
    bld_all rmi -a -f >/dev/null 2>&1
  fi
  # whatever is still mounted under the work dir (podman's overlay storage), deepest first
  awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m"; done
  if [ "${CLIENTS_KEEP_WORK:-0}" = 1 ]; then
    echo "# kept $WORK"
  else
    if [ "$FAILED" != 0 ]; then
      local keep
      keep=$(mktemp -d /tmp/capsa-clients-logs.XXXXXX)
      cp -a "$WORK/logs/." "$keep/"
      echo "# logs of this run: $keep"
    fi
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# An image with busybox-static only (nothing is pulled): every applet as a
# symlink, a root user, and a file that is not executable.
echo "# building the busybox image"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp,proc,sys,dev,root,usr/local/bin}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in $("$ROOTFS/bin/busybox" --list); do
  [ -e "$ROOTFS/bin/$a" ] || ln -s busybox "$ROOTFS/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$ROOTFS/etc/group"
printf '#!/bin/sh\necho should not run\n' >"$ROOTFS/usr/local/bin/not-executable"
chmod 0644 "$ROOTFS/usr/local/bin/not-executable"
chmod 1777 "$ROOTFS/tmp"
tar -C "$ROOTFS" -cf "$WORK/busybox.tar" .
export IMG=localhost/capsa-clients-busybox:latest

# -------------------------------------------------------------- podman setup
export PODMAN_ROOT=$WORK/podman/storage PODMAN_RUNROOT=$WORK/podman/runroot \
  PODMAN_TMPDIR=$WORK/podman/libpod PODMAN_CONF_DIR=$WORK/podman
mkdir -p "$PODMAN_CONF_DIR"
pod_all() {
  podman --root "$PODMAN_ROOT" --runroot "$PODMAN_RUNROOT" --tmpdir "$PODMAN_TMPDIR" \
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file "$@"
}
# No systemd here: cgroupfs, file events, k8s-file logs; no network at all.
# runtime_supports_json is podman's default list: a runtime named "capsa" gets
# no --log-format=json / --log from podman (errors travel via conmon's stderr).
write_containers_conf() { # FILE [EXTRA_JSON_RUNTIME NAME PATH]
  {
    echo '[containers]'
    echo 'netns = "none"'
    echo 'log_driver = "k8s-file"'
    echo '[engine]'
    echo 'cgroup_manager = "cgroupfs"'
    echo 'events_logger = "file"'
    if [ $# -gt 1 ]; then
      echo "runtime_supports_json = [\"$2\", \"crun\", \"runc\", \"kata\", \"runsc\", \"youki\", \"krun\"]"
      echo '[engine.runtimes]'
      echo "$3 = [\"$4\"]"
    fi
  } >"$1"
}
export CONTAINERS_CONF=$PODMAN_CONF_DIR/containers.conf
write_containers_conf "$CONTAINERS_CONF"

# ---------------------------------------------------------- containerd setup
export CTR_NS=capsa-clients CTR_ADDR=$WORK/ctrd/containerd.sock CTRD_STATE=$WORK/ctrd/state
mkdir -p "$WORK/ctrd"
cat >"$WORK/ctrd/config.toml" <<EOF
version = 2
root = "$WORK/ctrd/root"
state = "$CTRD_STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTR_ADDR"
[ttrpc]
  address = "$CTR_ADDR.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/ctrd/opt"
EOF

SUITES=${CLIENTS_SUITES:-podman containerd docker buildah network cri}
echo "# podman: importing the image"
pod_all import "$WORK/busybox.tar" "$IMG" >/dev/null 2>&1 || { echo "podman import failed" >&2; exit 1; }
case " $SUITES " in *" containerd "*|*" buildah "*)
  pod_all save --format oci-archive -o "$WORK/busybox-oci.tar" "$IMG" >/dev/null 2>&1 ||
    { echo "podman save failed" >&2; exit 1; } ;;
esac
case " $SUITES " in *" containerd "*)
  echo "# containerd: starting it, importing the image (an OCI archive made by podman save)"
  containerd --config "$WORK/ctrd/config.toml" >"$WORK/logs/containerd.log" 2>&1 &
  CTRD_PID=$!
  for _ in $(seq 100); do ctr -a "$CTR_ADDR" version >/dev/null 2>&1 && break; sleep 0.1; done
  ctr -a "$CTR_ADDR" version >/dev/null 2>&1 || { echo "containerd did not start:"; tail "$WORK/logs/containerd.log"; exit 1; }
  ctr -a "$CTR_ADDR" -n "$CTR_NS" images import "$WORK/busybox-oci.tar" >/dev/null ||
    { echo "ctr images import failed" >&2; exit 1; } ;;
esac

. "$CLIENTS_DIR/podman.sh"
. "$CLIENTS_DIR/containerd.sh"
. "$CLIENTS_DIR/docker.sh"
. "$CLIENTS_DIR/buildah.sh"
. "$CLIENTS_DIR/cri.sh"
. "$CLIENTS_DIR/network.sh"
# docker: a private dockerd; buildah: its own storage (both in their files)
case " $SUITES " in *" docker "*) docker_setup ;; esac
case " $SUITES " in *" buildah "*) buildah_setup ;; esac
case " $SUITES " in *" cri "*) cri_setup ;; esac   # a private containerd with its CRI plugin

# ------------------------------------------------------------------- suites
RUNTIMES=()
[ -z "$ORACLE" ] || RUNTIMES+=("oracle:$ORACLE")
RUNTIMES+=("subject:$SUBJECT")

for entry in "${RUNTIMES[@]}"; do
  export RTKIND=${entry%%:*} RT=${entry#*:}
  export RTLABEL
  RTLABEL=$(basename "$RT")
  # the runtime's default state root (podman passes no --root)
  case "$RTLABEL" in
    runc) export STATE_ROOT=/run/runc ;;
    *) export STATE_ROOT=${CLIENTS_STATE_ROOT:-/run/capsa} ;;
  esac
  write_containers_conf "$PODMAN_CONF_DIR/json-$RTLABEL.conf" "$RTLABEL" "$RTLABEL" "$RT"
  echo
  echo "=== $RTLABEL ($RTKIND): $RT  ($(date +%T))"
  for s in $SUITES; do "${s}_suite"; done
done

# ------------------------------------------------------------------ summary
echo
trap - EXIT
cleanup
if [ ${#KNOWN_BUG_NAMES[@]} -gt 0 ]; then
  echo "!!! ${#KNOWN_BUG_NAMES[@]} scenario(s) SKIPPED because of known capsa bugs (they pass with runc):"
  printf '!!!   %s\n' "${KNOWN_BUG_NAMES[@]}"
fi
if [ ${#SKIPPED_NAMES[@]} -gt 0 ]; then
  echo "!!! skipped:"
  printf '!!!   %s\n' "${SKIPPED_NAMES[@]}"
fi
if [ ${#FAILED_NAMES[@]} -gt 0 ]; then
  echo "FAILED:"
  printf '  %s\n' "${FAILED_NAMES[@]}"
fi
echo "# took $((SECONDS - T0))s"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
