#!/bin/sh
# Smoke test of capsa on a pure cgroup v2 host, run inside the VM by /init
# (busybox sh: no bash, no jq). Prints "PASS name", "FAIL name: why" or
# "SKIP name: why" per check; /init counts them.
#
# Environment: CAPSA (the binary), CAPSA_VM_ROOTFS (a busybox rootfs; made
# from /bin/busybox when missing).

CAPSA=${CAPSA:-capsa}
ROOTFS=${CAPSA_VM_ROOTFS:-/tmp/rootfs}
CG=/sys/fs/cgroup
WORK=/tmp/smoke
T=30 # seconds any one capsa command may take

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }
one_line() { tr '\n' ' ' | sed 's/ *$//'; }

capsa() { timeout "$T" "$CAPSA" "$@"; }

mkdir -p "$WORK"

# ---- rootfs and bundles ------------------------------------------------------

if [ ! -x "$ROOTFS/bin/busybox" ]; then
  mkdir -p "$ROOTFS/bin" "$ROOTFS/dev" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/tmp" "$ROOTFS/etc"
  cp /bin/busybox "$ROOTFS/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ROOTFS/bin/$applet"
  done
fi

# mkbundle NAME ARGS_JSON [RESOURCES_JSON]
# A bundle from `capsa spec`: terminal false, the shared rootfs, the given
# args, and linux.resources replaced by RESOURCES_JSON (default {}: no device
# rules). RESOURCES_JSON "keep" leaves the spec's own resources.
mkbundle() {
  b=$WORK/$1
  rm -rf "$b"
  mkdir -p "$b"
  if ! capsa spec --bundle "$b" >"$b/spec.err" 2>&1; then
    echo "capsa spec failed: $(one_line <"$b/spec.err")" >&2
    return 1
  fi
  res=${3:-"{}"}
  if [ "$res" = keep ]; then
    res_cmd=""
  else
    res_cmd="/^    \"resources\": {/,/^    }/c\\    \"resources\": $res"
  fi
  sed -e 's/"terminal": true/"terminal": false/' \
    -e "s|\"path\": \"rootfs\"|\"path\": \"$ROOTFS\"|" \
    -e "/^    \"args\": \[/,/^    \]/c\\    \"args\": $2," \
    -e "$res_cmd" \
    "$b/config.json" >"$b/config.new" && mv "$b/config.new" "$b/config.json"
  # Check that every edit took, so a change of `capsa spec`'s layout shows.
  if ! grep -q '"terminal": false' "$b/config.json" ||
    ! grep -q "\"path\": \"$ROOTFS\"" "$b/config.json" ||
    ! grep -qF "\"args\": $2," "$b/config.json"; then
    echo "editing $b/config.json with sed failed:" >&2
    cat "$b/config.json" >&2
    return 1
  fi
  if [ "$res" != keep ] && ! grep -qF "\"resources\": $res" "$b/config.json"; then
    echo "editing linux.resources in $b/config.json failed" >&2
    return 1
  fi
}

state_status() {
  capsa state "$1" 2>/dev/null | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' | head -n 1
}

state_pid() {
  capsa state "$1" 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1
}

# wait_status ID STATUS: up to 10 s.
wait_status() {
  i=0
  while [ "$i" -lt 50 ]; do
    [ "$(state_status "$1")" = "$2" ] && return 0
    sleep 0.2
    i=$((i + 1))
  done
  return 1
}

cleanup_ctr() {
  capsa delete --force "$1" >/dev/null 2>&1
}

echo "# capsa: $("$CAPSA" --version 2>&1 | head -n 1)"

# ---- 1. capsa run: its cgroup, seen from inside -------------------------------

if mkbundle run "[\"sh\", \"-c\", \"cat /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/self/mountinfo; exit 7\"]"; then
  out=$(capsa run --bundle "$WORK/run" ctr-run 2>"$WORK/run.err")
  st=$?
  if [ "$st" != 7 ]; then
    fail run-exit-status "capsa run exited $st, expected the container's 7; stderr: $(one_line <"$WORK/run.err")"
  else
    pass run-exit-status
  fi
  cgline=$(echo "$out" | grep '^0::' | head -n 1)
  if [ "$cgline" = "0::/" ] && [ "$(echo "$out" | grep -c '^[0-9]*:')" = 1 ]; then
    pass run-cgroupns-self-cgroup
  else
    fail run-cgroupns-self-cgroup "expected only 0::/ in /proc/self/cgroup, got: $(echo "$out" | grep '^[0-9]*:' | one_line)"
  fi
  if echo "$out" | grep -q ' /sys/fs/cgroup .* - cgroup2 '; then
    pass run-sees-cgroup2-mount
  else
    fail run-sees-cgroup2-mount "no cgroup2 mount at /sys/fs/cgroup inside the container: $(echo "$out" | grep -v '^[0-9]*:' | one_line)"
  fi
  if [ ! -e "$CG/capsa/ctr-run" ]; then
    pass run-cgroup-removed
  else
    fail run-cgroup-removed "$CG/capsa/ctr-run still exists after capsa run returned"
  fi
  cleanup_ctr ctr-run
else
  fail run "cannot make the bundle"
fi

# ---- 2. create/start/state/exec/kill/delete ----------------------------------

id=ctr-life
dir=$CG/capsa/$id
if mkbundle life '["sleep", "300"]'; then
  if capsa create --bundle "$WORK/life" "$id" >"$WORK/create.out" 2>&1; then
    pass create
    st=$(state_status "$id")
    if [ "$st" = created ]; then pass state-created; else fail state-created "status is \"$st\""; fi
    if [ -d "$dir" ]; then pass cgroup-dir-exists; else fail cgroup-dir-exists "$dir is missing"; fi
    pid=$(state_pid "$id")
    if [ -n "$pid" ] && grep -qx "$pid" "$dir/cgroup.procs" 2>/dev/null; then
      pass init-in-cgroup
    else
      fail init-in-cgroup "pid \"$pid\" is not in $dir/cgroup.procs ($(one_line <"$dir/cgroup.procs" 2>&1))"
    fi
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/cgroup" 2>&1)" = "0::/capsa/$id" ]; then
      pass host-view-proc-cgroup
    else
      fail host-view-proc-cgroup "/proc/$pid/cgroup is \"$(one_line <"/proc/$pid/cgroup" 2>&1)\", expected 0::/capsa/$id"
    fi

    if capsa start "$id" >"$WORK/start.out" 2>&1; then
      pass start
    else
      fail start "$(one_line <"$WORK/start.out")"
    fi
    if wait_status "$id" running; then pass state-running; else fail state-running "status is \"$(state_status "$id")\""; fi
    if [ -d "$dir" ]; then pass cgroup-dir-while-running; else fail cgroup-dir-while-running "$dir is missing"; fi

    out=$(capsa exec "$id" sh -c 'cat /proc/self/cgroup; echo exec-ok' 2>"$WORK/exec.err")
    st=$?
    if [ "$st" = 0 ] && echo "$out" | grep -qx exec-ok; then
      pass exec
    else
      fail exec "status $st, output \"$(echo "$out" | one_line)\", stderr: $(one_line <"$WORK/exec.err")"
    fi
    if [ "$(echo "$out" | grep '^[0-9]*:')" = "0::/" ]; then
      pass exec-cgroupns
    else
      fail exec-cgroupns "exec'd process's /proc/self/cgroup: \"$(echo "$out" | grep '^[0-9]*:' | one_line)\""
    fi
    n=$(wc -l <"$dir/cgroup.procs" 2>/dev/null)
    if [ "$n" = 1 ]; then
      pass exec-left-no-process
    else
      fail exec-left-no-process "$dir/cgroup.procs has ${n:-no} lines after the exec ended"
    fi

    if capsa kill "$id" KILL >"$WORK/kill.out" 2>&1; then
      pass kill
    else
      fail kill "$(one_line <"$WORK/kill.out")"
    fi
    if wait_status "$id" stopped; then pass state-stopped; else fail state-stopped "status is \"$(state_status "$id")\""; fi
    if capsa delete "$id" >"$WORK/delete.out" 2>&1; then
      pass delete
    else
      fail delete "$(one_line <"$WORK/delete.out")"
    fi
    if [ ! -e "$dir" ]; then pass cgroup-dir-removed; else fail cgroup-dir-removed "$dir still exists after delete"; fi
    if capsa state "$id" >/dev/null 2>&1; then
      fail state-after-delete "capsa state still knows $id"
    else
      pass state-after-delete
    fi
  else
    fail create "$(one_line <"$WORK/create.out")"
  fi
  cleanup_ctr "$id"
else
  fail lifecycle "cannot make the bundle"
fi

# ---- 3. device rules: an eBPF device program on v2 --------------------------

# add_mknod BUNDLE: CAP_MKNOD in every capability set, so that a refused
# mknod is the device filter's doing.
add_mknod() {
  sed -i 's/"CAP_KILL",/"CAP_KILL", "CAP_MKNOD",/' "$WORK/$1/config.json"
  grep -q CAP_MKNOD "$WORK/$1/config.json"
}

# The config as `capsa spec` writes it: deny every device. The default
# devices stay usable; a block device cannot even be made.
id=ctr-devices
script='head -c1 /dev/null >/dev/null && echo null-ok; head -c1 /dev/full >/dev/null && echo full-ok; head -c1 /dev/zero >/dev/null && echo zero-ok; mknod /dev/blk7 b 7 0 && echo mknod-ok; true'
if mkbundle devices "[\"sh\", \"-c\", \"$script\"]" keep && add_mknod devices; then
  if ! grep -q '"devices"' "$WORK/devices/config.json"; then
    fail devices-default "capsa spec no longer writes linux.resources.devices"
  else
    out=$(capsa run --bundle "$WORK/devices" "$id" 2>"$WORK/devices.err")
    st=$?
    err=$(one_line <"$WORK/devices.err")
    if [ "$st" != 0 ]; then
      fail devices-default "capsa run exited $st: $err"
    elif [ "$(echo "$out" | one_line)" = "null-ok full-ok zero-ok" ]; then
      pass devices-default-devices-usable
    else
      fail devices-default-devices-usable "stdout \"$(echo "$out" | one_line)\", stderr: $err"
    fi
    if [ "$st" = 0 ] && ! echo "$out" | grep -q mknod-ok && echo "$err" | grep -q 'Operation not permitted'; then
      pass devices-mknod-refused
    else
      fail devices-mknod-refused "mknod of b 7:0 was not refused with EPERM: stdout \"$(echo "$out" | one_line)\", stderr: $err"
    fi
    echo "# devices-default stderr: $err"
    if [ ! -e "$CG/capsa/$id" ]; then pass devices-cgroup-removed; else fail devices-cgroup-removed "$CG/capsa/$id left"; fi
  fi
  cleanup_ctr "$id"
else
  fail devices "cannot make the bundle"
fi

# Rules of its own: mknod of b 7:0 allowed, reading it still refused.
id=ctr-devices-m
script='mknod /dev/blk7 b 7 0 && echo mknod-ok; head -c1 /dev/blk7 >/dev/null && echo read-ok; head -c1 /dev/null >/dev/null && echo null-ok; true'
res='{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "m"}]}'
if mkbundle devices-m "[\"sh\", \"-c\", \"$script\"]" "$res" && add_mknod devices-m; then
  out=$(capsa run --bundle "$WORK/devices-m" "$id" 2>"$WORK/devices-m.err")
  st=$?
  err=$(one_line <"$WORK/devices-m.err")
  echo "# devices-m stderr: $err"
  if [ "$st" = 0 ] && [ "$(echo "$out" | one_line)" = "mknod-ok null-ok" ] &&
    echo "$err" | grep -q 'blk7.*Operation not permitted'; then
    pass devices-read-refused
  else
    fail devices-read-refused "status $st, stdout \"$(echo "$out" | one_line)\", stderr: $err"
  fi
  cleanup_ctr "$id"
else
  fail devices-m "cannot make the bundle"
fi

# ---- 4. resource limits (SKIP while capsa answers "not supported") ----------

# limit_check NAME RESOURCES_JSON FILE EXPECTED
limit_check() {
  name=$1 id=ctr-$1
  if ! mkbundle "$name" '["sleep", "300"]' "$2"; then
    fail "$name" "cannot make the bundle"
    return
  fi
  if ! capsa create --bundle "$WORK/$name" "$id" >"$WORK/$name.out" 2>&1; then
    if grep -qi 'not supported' "$WORK/$name.out"; then
      skip "$name" "$(one_line <"$WORK/$name.out")"
    else
      fail "$name" "create failed: $(one_line <"$WORK/$name.out")"
    fi
    cleanup_ctr "$id"
    return
  fi
  got=$(cat "$CG/capsa/$id/$3" 2>&1)
  if [ "$got" = "$4" ]; then
    pass "$name"
  else
    fail "$name" "$CG/capsa/$id/$3 is \"$got\", expected \"$4\""
  fi
  cleanup_ctr "$id"
  [ ! -e "$CG/capsa/$id" ] || fail "$name-cleanup" "$CG/capsa/$id left after delete --force"
}

limit_check memory-limit '{"memory": {"limit": 67108864}}' memory.max 67108864
limit_check pids-limit '{"pids": {"limit": 32}}' pids.max 32

# ---- leftovers -----------------------------------------------------------------

left=$("$CAPSA" list --quiet 2>&1)
if [ -z "$left" ]; then
  pass no-containers-left
else
  fail no-containers-left "capsa list shows: $(echo "$left" | one_line)"
fi
exit 0
