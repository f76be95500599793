#!/usr/bin/env bash
# Boots a small qemu (TCG) VM whose host is pure cgroup v2 and runs a test
# script against a capsa binary inside it. See README.md beside this file.
#
#   run-v2.sh CAPSA_BINARY [TEST_SCRIPT [FILE...]]
#
# Each FILE is copied into /opt/capsa-vm/files/ of the VM (a dynamic ELF
# executable with its shared libraries); run-tests.sh passes the integration
# test binaries that way.
#
# Exit status: 0 when the VM printed "VM-RESULT: N passed, 0 failed";
# 1 when tests failed (or the VM hung or died after it had booted);
# 2 when something needed is missing or the VM did not boot.
#
# Environment (all optional):
#   CAPSA_VM_CACHE     cache dir for the kernel (default ${XDG_CACHE_HOME:-$HOME/.cache}/capsa-vm)
#   CAPSA_VM_KERNEL    a vmlinuz to boot instead of Debian's 6.1 kernel
#   CAPSA_VM_TIMEOUT   seconds before qemu is killed (default 300)
#   CAPSA_VM_MEMORY    guest memory in MiB (default 1024)
#   CAPSA_VM_CPUS      guest cpus (default 2)
#   CAPSA_VM_VERBOSE   1: print the whole console log even on success
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")

die() { echo "$prog: $*" >&2; exit 2; }
note() { echo "# $*" >&2; }

if [ $# -lt 1 ]; then
  echo "usage: $prog CAPSA_BINARY [TEST_SCRIPT [FILE...]]" >&2
  exit 2
fi
capsa_bin=$1
test_script=${2:-$here/smoke.sh}
shift $(($# >= 2 ? 2 : 1))
extra_files=("$@")
for f in "${extra_files[@]}"; do [ -f "$f" ] || die "$f: no such file"; done
if [ ! -f "$capsa_bin" ] || [ ! -x "$capsa_bin" ]; then die "$capsa_bin: not an executable file"; fi
[ -f "$test_script" ] || die "$test_script: no such test script"

cache=${CAPSA_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capsa-vm}
timeout_s=${CAPSA_VM_TIMEOUT:-300}
memory=${CAPSA_VM_MEMORY:-1024}
cpus=${CAPSA_VM_CPUS:-2}

start_time=$(date +%s)

# --- host tools ------------------------------------------------------------

apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  apt_updated=1
  note "apt-get update"
  apt-get update -q >/dev/null 2>&1 || note "apt-get update failed; trying with the lists we have"
}

# Installs the Debian packages given when the command they bring is missing.
# Arguments: pairs of COMMAND PACKAGE.
need_commands() {
  local missing=() cmd pkg
  while [ $# -ge 2 ]; do
    cmd=$1 pkg=$2
    shift 2
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}: install them, or run $prog as root so that it can"
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt_update_once && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
    die "cannot install ${missing[*]}"
}

need_commands qemu-system-x86_64 qemu-system-x86 cpio cpio gzip gzip ldd libc-bin apt-get apt

# `apt-get download PKG` into the cache (as root, apt's sandbox user may not
# be able to write there, hence the option).
apt_download() {
  local pkg=$1 opts=()
  [ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
  (cd "$cache" && apt-get download -q "${opts[@]}" "$pkg" >/dev/null 2>&1) ||
    { apt_update_once && (cd "$cache" && apt-get download -q "${opts[@]}" "$pkg" >/dev/null); } ||
    die "cannot download the Debian package $pkg"
}

mkdir -p "$cache" || die "cannot create the cache dir $cache"

# --- kernel: Debian's 6.1, only its vmlinuz ---------------------------------

# The newest linux-image-6.1.*-amd64 that apt knows (the package of that
# name, not -unsigned, -dbg, -cloud or -rt).
kernel_package() {
  local pkg
  pkg=$(apt-cache search --names-only '^linux-image-6\.1\.[0-9.]+-[0-9]+-amd64$' 2>/dev/null |
    awk '{print $1}' | sort -V | tail -n 1)
  if [ -z "$pkg" ]; then
    apt_update_once
    pkg=$(apt-cache search --names-only '^linux-image-6\.1\.[0-9.]+-[0-9]+-amd64$' 2>/dev/null |
      awk '{print $1}' | sort -V | tail -n 1)
  fi
  [ -n "$pkg" ] || die "apt knows no linux-image-6.1.*-amd64 package (set CAPSA_VM_KERNEL to a vmlinuz)"
  echo "$pkg"
}

if [ -n "${CAPSA_VM_KERNEL:-}" ]; then
  kernel=$CAPSA_VM_KERNEL
  [ -f "$kernel" ] || die "CAPSA_VM_KERNEL=$kernel: no such file"
  brd_module="" # its modules are unknown: no RAM disk
else
  # Reuse a cached kernel when there is one (with its brd.ko, the RAM disk
  # module: a block device for the io.max tests); look the package up
  # otherwise.
  kernel=$(find "$cache" -maxdepth 1 -name 'vmlinuz-6.1.*-amd64' 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$kernel" ] || [ ! -f "$cache/brd-$(basename "$kernel" | sed 's/^vmlinuz-//').ko" ]; then
    pkg=$(kernel_package)
    note "downloading $pkg"
    apt_download "$pkg"
    deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*.deb" | sort -V | tail -n 1)
    [ -n "$deb" ] || die "apt-get download $pkg left no .deb in $cache"
    tmpx=$(mktemp -d)
    dpkg-deb --fsys-tarfile "$deb" |
      tar -x -C "$tmpx" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/block/brd.ko' ||
      { rm -rf "$tmpx"; die "no vmlinuz or brd.ko in $deb"; }
    for f in "$tmpx"/boot/vmlinuz-*; do mv "$f" "$cache/"; done
    for f in "$tmpx"/lib/modules/*/kernel/drivers/block/brd.ko; do
      v=${f#"$tmpx"/lib/modules/}
      mv "$f" "$cache/brd-${v%%/*}.ko"
    done
    rm -rf "$tmpx" "$deb"
    kernel=$(find "$cache" -maxdepth 1 -name 'vmlinuz-6.1.*-amd64' | sort -V | tail -n 1)
    [ -n "$kernel" ] || die "no vmlinuz-6.1.*-amd64 extracted into $cache"
  fi
  brd_module=$cache/brd-$(basename "$kernel" | sed 's/^vmlinuz-//').ko
fi

# --- busybox: must be static -------------------------------------------------

# Static: ldd fails ("not a dynamic executable") or, for a static-pie such as
# capsa's release build, says "statically linked".
is_static() {
  local out
  out=$(ldd "$1" 2>&1) || return 0
  case $out in *"statically linked"*) return 0 ;; esac
  return 1
}

busybox=""
for b in /bin/busybox /usr/bin/busybox "$cache/busybox"; do
  if [ -x "$b" ] && is_static "$b"; then busybox=$b; break; fi
done
if [ -z "$busybox" ]; then
  # Take it out of the package rather than installing busybox-static, which
  # would replace a host's dynamic busybox.
  note "downloading busybox-static"
  apt_download busybox-static
  deb=$(find "$cache" -maxdepth 1 -name 'busybox-static_*.deb' | sort -V | tail -n 1)
  [ -n "$deb" ] || die "apt-get download busybox-static left no .deb in $cache"
  tmpx=$(mktemp -d)
  dpkg-deb -x "$deb" "$tmpx"
  cp "$tmpx/bin/busybox" "$cache/busybox" 2>/dev/null || cp "$tmpx/usr/bin/busybox" "$cache/busybox" ||
    { rm -rf "$tmpx"; die "no busybox in $deb"; }
  rm -rf "$tmpx" "$deb"
  busybox=$cache/busybox
  is_static "$busybox" || die "$busybox is not static"
fi

# --- initramfs -----------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/capsa-vm.XXXXXX")
qemu_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,dev,proc,sys,run,tmp,etc,opt/capsa-vm}

# busybox with its applet links (relative, so they also work after the copy
# into the second-stage root).
cp "$busybox" "$root/bin/busybox"
"$busybox" --list-full | while read -r applet; do
  case $applet in bin/busybox) continue ;; esac
  [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# copy_with_libs SRC DEST: SRC at DEST in the initramfs, plus the shared
# libraries and loader `ldd` lists when SRC is a dynamic executable.
copy_with_libs() {
  local src=$1 dest=$2 libs lib
  mkdir -p "$root$(dirname "$dest")"
  cp "$src" "$root$dest"
  is_static "$src" && return 0
  libs=$(ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
  [ -n "$libs" ] || die "ldd $src lists no library paths"
  for lib in $libs; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# capsa, plus its shared libraries and loader when it is dynamic.
copy_with_libs "$capsa_bin" /usr/local/bin/capsa
if is_static "$capsa_bin"; then note "capsa is static"; else note "capsa is dynamic"; fi

# The extra files (test binaries, scripts).
for f in "${extra_files[@]}"; do
  copy_with_libs "$f" "/opt/capsa-vm/files/$(basename "$f")"
done
[ ${#extra_files[@]} -eq 0 ] || note "copied ${#extra_files[@]} extra files into /opt/capsa-vm/files"

# A minimal rootfs for the containers: busybox and relative applet links.
rootfs=$root/opt/capsa-vm/rootfs
mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,etc,root}
cp "$busybox" "$rootfs/bin/busybox"
"$busybox" --list | while read -r applet; do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"

cp "$test_script" "$root/opt/capsa-vm/test.sh"
cp "$here/init" "$root/init"
if [ -n "$brd_module" ] && [ -f "$brd_module" ]; then
  mkdir -p "$root/lib/modules"
  cp "$brd_module" "$root/lib/modules/brd.ko"
fi
chmod 755 "$root/init" "$root/opt/capsa-vm/test.sh"

initrd=$work/initramfs.cpio.gz
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$initrd" ||
  die "cannot build the initramfs"
note "initramfs $(du -h "$initrd" | cut -f1), kernel $(basename "$kernel")"

# --- boot --------------------------------------------------------------------

log=$work/console.log
note "booting (timeout ${timeout_s}s)"
boot_start=$(date +%s)
qemu-system-x86_64 -accel tcg -m "$memory" -smp "$cpus" \
  -nographic -no-reboot -nodefaults -serial stdio -display none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
  </dev/null >"$log" 2>&1 &
qemu_pid=$!

timed_out=0
deadline=$((boot_start + timeout_s))
booted_after=""
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ -z "$booted_after" ] && grep -q '^VM-BOOTED' "$log" 2>/dev/null; then
    booted_after=$(($(date +%s) - boot_start))
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    timed_out=1
    kill "$qemu_pid" 2>/dev/null || true
    sleep 1
    kill -9 "$qemu_pid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
end_time=$(date +%s)

# Console output uses \r\n; compare without the \r.
tr -d '\r' <"$log" >"$log.txt"

show_tail() {
  echo "----- last 100 lines of the VM console -----" >&2
  tail -n 100 "$log.txt" >&2
  echo "----- end of console -----" >&2
}

booted_line=$(grep -m1 '^VM-BOOTED' "$log.txt" || true)
result_line=$(grep '^VM-RESULT: ' "$log.txt" | tail -n 1 || true)

if [ "${CAPSA_VM_VERBOSE:-0}" = 1 ]; then
  cat "$log.txt"
elif [ -n "$booted_line" ]; then
  # What the VM found, then the test script's own output.
  grep '^VM-INFO: \(kernel\|cgroup\|subtree\|block\)' "$log.txt" || true
  sed -n '/^VM-BOOTED/,$p' "$log.txt" | grep -v '^VM-BOOTED' | grep -v '^\[ *[0-9.]*\] reboot: ' || true
fi

timing="booted after ${booted_after:-?}s (guest uptime $(echo "$booted_line" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')s), qemu ran $((end_time - boot_start))s, total $((end_time - start_time))s"

if [ "$timed_out" = 1 ]; then
  [ "${CAPSA_VM_VERBOSE:-0}" = 1 ] || show_tail
  if [ -z "$booted_line" ]; then
    echo "$prog: FAILED: the VM did not boot within ${timeout_s}s; qemu killed" >&2
    exit 2
  fi
  echo "$prog: FAILED: the tests did not finish within ${timeout_s}s; qemu killed ($timing)" >&2
  exit 1
fi

if [ -z "$booted_line" ]; then
  [ "${CAPSA_VM_VERBOSE:-0}" = 1 ] || show_tail
  echo "$prog: FAILED: the VM did not boot (qemu exited with status $qemu_status)" >&2
  exit 2
fi

if [ -z "$result_line" ]; then
  [ "${CAPSA_VM_VERBOSE:-0}" = 1 ] || show_tail
  echo "$prog: FAILED: the VM stopped without printing VM-RESULT (qemu exit status $qemu_status, $timing)" >&2
  exit 1
fi

failed=$(echo "$result_line" | sed -n 's/^VM-RESULT: [0-9]* passed, \([0-9]*\) failed.*/\1/p')
echo "# $timing" >&2
if [ "$failed" = 0 ]; then
  exit 0
fi
[ "${CAPSA_VM_VERBOSE:-0}" = 1 ] || show_tail
echo "$prog: FAILED: $result_line" >&2
exit 1
