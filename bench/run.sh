#!/usr/bin/env bash
# capsa beside runc, crun and youki: lifecycle latency, peak RSS, binary size,
# and the kernel's own cost (`unshare`) as the floor. docs/performance.md says
# what each figure measures. Must run as root.
#
#   ./bench/run.sh              # 50 round-robin iterations (3-6 minutes)
#   ./bench/run.sh --quick      # 5 iterations: checks that the harness works (CI)
#
# Output: a table on stdout; target/bench/results.{json,md}, chart.svg (+ chart.png
# when rsvg-convert is there).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

usage() {
    cat <<EOF
usage: $0 [--quick] [-n N] [--batch-iterations M] [--capsa PATH] [--no-youki]
          [--retry-youki] [--no-diag] [--out DIR]

  --quick               5 iterations (CI's smoke check; never a timed assertion);
                        does not build youki (uses it if a full run cached it)
  -n, --iterations N    round-robin iterations of every single-command metric (50)
  --batch-iterations M  iterations of the 20- and 100-lifecycle batches (default: N,
                        at most 20: one round of batches takes about 10 s)
  --capsa PATH          the capsa binary (default: scripts/build-release.sh here;
                        falls back to a worktree of HEAD if the tree does not build)
  --no-youki            leave youki out
  --retry-youki         try to build youki again after a cached failure
  --no-diag             leave out capsa-presealed (capsa without its own re-exec)
  --out DIR             where results go (default: target/bench)

Environment: CAPSA_BENCH_CACHE (default \${XDG_CACHE_HOME:-\$HOME/.cache}/capsa-bench)
holds the youki build; YOUKI_BUILD_TIMEOUT (seconds, default 900).
EOF
}

iterations=50
batch_iterations=
quick=0
capsa=
youki_mode=auto
diag=1
out="$repo/target/bench"
while (($#)); do
    case $1 in
    --quick) quick=1 iterations=5 ;;
    -n | --iterations) iterations=$2; shift ;;
    --batch-iterations) batch_iterations=$2; shift ;;
    --capsa) capsa=$2; shift ;;
    --no-youki) youki_mode=no ;;
    --retry-youki) youki_mode=retry ;;
    --no-diag) diag=0 ;;
    --out) out=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [[ -z $batch_iterations ]]; then
    batch_iterations=$((iterations < 20 ? iterations : 20))
fi

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 2; }

[[ $(id -u) == 0 ]] || die "must run as root (namespaces, cgroups, setns)"
t_begin=$(date +%s)
cache=${CAPSA_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/capsa-bench}
mkdir -p "$cache"
notes=()

# --- Debian packages ----------------------------------------------------------
apt_updated=0
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "apt-get install ${missing[*]}"
    if ((!apt_updated)); then
        apt-get update -qq >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
# time: /usr/bin/time (GNU) for the RSS cross-check; librsvg2-bin: the chart's PNG.
apt_install runc crun busybox-static time util-linux python3 librsvg2-bin

# --- youki --------------------------------------------------------------------
# crates.io's youki has no default features: without v1/v2/systemd/seccomp it has
# no cgroup support at all, which would not be a fair comparison.
youki_features=v1,v2,systemd,seccomp
ydir=$cache/youki
youki=
if [[ $youki_mode == no ]]; then
    notes+=("youki left out (--no-youki)")
elif [[ -x $ydir/bin/youki && "$(cat "$ydir/features" 2>/dev/null)" == "$youki_features" ]]; then
    youki=$ydir/bin/youki
elif [[ -f $ydir/FAILED && $youki_mode != retry ]]; then
    notes+=("youki left out: $(head -c 600 "$ydir/FAILED") (cached failure; --retry-youki to try again)")
elif ((quick)); then
    notes+=("youki left out: not built yet, and --quick does not build it (a full run caches it in $ydir)")
else
    # libseccomp-sys finds libseccomp through pkg-config; nothing else is native.
    apt_install libseccomp-dev pkg-config gcc libc6-dev
    say "cargo install youki --locked --features $youki_features (once; cached in $ydir)"
    rm -f "$ydir/FAILED"
    mkdir -p "$ydir"
    t0=$(date +%s)
    rc=0
    timeout "${YOUKI_BUILD_TIMEOUT:-900}" cargo install youki --locked --force \
        --features "$youki_features" --root "$ydir" --target-dir "$ydir/build" \
        >"$ydir/install.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        echo "$youki_features" >"$ydir/features"
        youki=$ydir/bin/youki
        rm -rf "$ydir/build"
        say "youki built in $(($(date +%s) - t0)) s"
    else
        if ((rc == 124)); then
            why="cargo install youki took over ${YOUKI_BUILD_TIMEOUT:-900} s"
        else
            why="cargo install youki failed (exit $rc): $(grep -m3 -E '^error' "$ydir/install.log" | tr '\n' ' ')"
        fi
        echo "$why; log: $ydir/install.log" >"$ydir/FAILED"
        notes+=("youki left out: $why")
        say "${notes[-1]}"
    fi
fi

# --- capsa --------------------------------------------------------------------
if [[ -z $capsa ]]; then
    say "scripts/build-release.sh (the static release binary)"
    if (cd "$repo" && scripts/build-release.sh >&2); then
        capsa=$repo/target/release/capsa
    else
        # Someone's half-finished change: build the last commit instead.
        wt=/tmp/capsa-bench-wt
        say "the work tree does not build; building HEAD in $wt"
        if [[ ! -d $wt ]]; then
            git -C "$repo" worktree add --detach "$wt" HEAD >&2
        else
            git -C "$wt" checkout -q --detach "$(git -C "$repo" rev-parse HEAD)"
        fi
        (cd "$wt" && CARGO_TARGET_DIR=/tmp/capsa-bench-target scripts/build-release.sh >&2)
        capsa=/tmp/capsa-bench-target/release/capsa
        notes+=("capsa built from HEAD $(git -C "$repo" rev-parse --short HEAD) (the work tree did not build)")
    fi
fi
capsa=$(realpath "$capsa")
[[ -x $capsa ]] || die "no capsa binary at $capsa"

# How current the hot-code link order is (scripts/build-release.sh): the share
# of crates/capsa/link-order.txt's names that the binary still has. Code and
# dependency changes make names go stale, and RSS creeps up; regenerate with
# bench/hot-order.sh when this falls.
symbols=$(dirname "$capsa")/capsa-symbols
order=$repo/crates/capsa/link-order.txt
if [[ -r $symbols && -r $order ]] && command -v nm >/dev/null; then
    found=$(nm --defined-only "$symbols" 2>/dev/null | awk '{print $NF}' | sort -u |
        comm -12 - <(sort -u "$order") | wc -l)
    notes+=("link order: $found of $(wc -l <"$order") names of crates/capsa/link-order.txt are in this capsa (bench/hot-order.sh regenerates it)")
    say "${notes[-1]}"
else
    notes+=("link order: not checked (no $symbols next to the binary)")
fi

# --- the bundle ---------------------------------------------------------------
# State roots and the bundle live on tmpfs, as /run does on a usual host
# (here /run and /tmp are on the root disk).
base=/tmp
[[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] && base=/dev/shm
work=$(mktemp -d "$base/capsa-bench.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/rootfs/bin"
bb=/bin/busybox
[[ -x $bb ]] || die "no $bb (busybox-static)"
if ldd "$bb" >/dev/null 2>&1; then die "$bb is not static (install busybox-static)"; fi
cp "$bb" "$work/rootfs/bin/busybox"
for a in true sleep sh; do ln -s busybox "$work/rootfs/bin/$a"; done
mkdir -p "$work/rootfs/"{proc,sys,dev,tmp,etc}
mkdir -p "$work/spec"
"$capsa" spec --bundle "$work/spec"

runtimes=(--runtime "capsa=$capsa" --runtime "capsa-hybrid=$capsa")
runtimes+=(--runtime "crun=$(command -v crun)" --runtime "runc=$(command -v runc)")
[[ -n $youki ]] && runtimes+=(--runtime "youki=$youki")
args=(--spec-template "$work/spec/config.json" --work "$work" --out "$out"
    --iterations "$iterations" --batch-iterations "$batch_iterations")
((quick)) && args+=(--quick)
((diag)) || args+=(--no-diag)
for n in "${notes[@]}"; do args+=(--note "$n"); done

say "measuring: $iterations iterations, $batch_iterations parallel batches"
rc=0
python3 "$here/bench.py" "${runtimes[@]}" "${args[@]}" || rc=$?

# The cost of compiling a seccomp profile: Docker's default as podman ships it
# (Debian's containers-common), in capsa's release build.
profile=/usr/share/containers/seccomp.json
if [[ -r $profile ]]; then
    say "seccomp: compiling $profile"
    n=200
    ((quick)) && n=20
    if (cd "$repo" && cargo build --release -q -p capsa-linux --example seccomp_compile >&2) &&
        "$repo/target/release/examples/seccomp_compile" "$profile" "$n" >"$out/seccomp.json"; then
        python3 - "$out/seccomp.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"seccomp profile compile ({r['entries']} entries -> {r['filters']} filters, "
      f"{r['instructions']} BPF instructions): median {r['median_us']} us, "
      f"p95 {r['p95_us']} us over {r['iterations']}")
PY
    else
        say "seccomp: the compile benchmark failed"
        rc=1
    fi
else
    say "seccomp: $profile missing (Debian's containers-common, installed with podman): not measured"
fi

if [[ -f $out/chart.svg ]] && command -v rsvg-convert >/dev/null; then
    rsvg-convert -o "$out/chart.png" "$out/chart.svg" && echo "wrote $out/chart.png"
fi
echo "bench: $(($(date +%s) - t_begin)) s in all"
exit $rc
