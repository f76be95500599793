#!/usr/bin/env bash
# Where capsa's create spends its time: `strace -c -f` and a system-wide
# `perf record -g` over N create + start + delete cycles of the bench's
# busybox bundle, in a private mount namespace without cgroup2 (plain v1,
# as in the bench). docs/performance.md discusses the figures. Root only.
#
#   ./bench/profile.sh [--capsa PATH] [-n N]      # N cycles (default 50)
#
# Output: target/bench/profile/{strace-c.txt,perf-phases.txt,cgroup-procs.txt}
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
capsa=$repo/target/release/capsa
n=50
while (($#)); do
    case $1 in
    --capsa) capsa=$2; shift ;;
    -n) n=$2; shift ;;
    *) echo "usage: $0 [--capsa PATH] [-n N]" >&2; exit 2 ;;
    esac
    shift
done
[[ $(id -u) == 0 ]] || { echo "profile: must run as root" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile: no perf (Debian: linux-perf)" >&2; exit 2; }
command -v strace >/dev/null || { echo "profile: no strace" >&2; exit 2; }
capsa=$(realpath "$capsa")
out=$repo/target/bench/profile
mkdir -p "$out"

work=$(mktemp -d /dev/shm/capsa-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/"{proc,sys,dev,tmp,etc} "$work/b"
cp /bin/busybox "$work/rootfs/bin/"
ln -s busybox "$work/rootfs/bin/true"
"$capsa" spec --bundle "$work/b"
python3 - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/b/config.json"))
c.update(ociVersion="1.1.0")
c["process"].update(terminal=False, args=["/bin/true"])
c["root"]["path"] = f"{w}/rootfs"
json.dump(c, open(f"{w}/b/config.json", "w"), indent=1)
EOF
cat >"$work/cycle.sh" <<EOF
#!/bin/bash
for i in \$(seq \$1); do
    $capsa --root $work/root create --bundle $work/b \$2\$i
    $capsa --root $work/root start \$2\$i
    sleep 0.01
    $capsa --root $work/root delete \$2\$i
done
EOF
chmod +x "$work/cycle.sh"

# A private mount namespace with every cgroup2 mount detached.
inns() {
    unshare --mount --propagation private bash -c '
        findmnt -rn -t cgroup2 -o TARGET | sort -r | while read -r m; do umount -l "$m"; done
        exec "$@"' _ "$@"
}

freq=4999
echo "== strace -c -w -f (wall time in each syscall) over $n cycles; wait4 and clock_nanosleep are the loop's own waiting"
inns strace -c -w -f -o "$out/strace-c.txt" "$work/cycle.sh" "$n" s
head -25 "$out/strace-c.txt"

echo "== perf record -a -g -F $freq over $n cycles"
inns perf record -q -a -g -F $freq -o "$work/perf.data" "$work/cycle.sh" "$n" p 2>/dev/null
perf script -i "$work/perf.data" -F comm,pid,ip,sym,dso --comms capsa,memfd:capsa,true \
    2>/dev/null >"$work/perf.txt"
python3 "$here/perf_phases.py" "$work/perf.txt" "$n" "$freq" | tee "$out/perf-phases.txt"

echo "== the v1 cgroup migration: writes to cgroup.procs slower than 1 ms ($n cycles, perf trace)"
inns perf trace -e write --duration 1 -o "$work/trace.txt" "$work/cycle.sh" "$n" t >/dev/null 2>&1 || true
grep -c 'write(' "$work/trace.txt" | sed "s|^|slow writes: |; s|\$| of $n creates|" | tee "$out/cgroup-procs.txt"
sed -nE 's/.*\( *([0-9.]+) ms\): .*write\(.*/\1/p' "$work/trace.txt" | sort -n |
    awk '{a[NR]=$1} END {if (NR) printf "median %.2f ms, max %.2f ms\n", a[int((NR+1)/2)], a[NR]}' |
    tee -a "$out/cgroup-procs.txt"
echo "wrote $out"
