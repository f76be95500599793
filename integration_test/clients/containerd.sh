# containerd 1.6 + ctr, runtime io.containerd.runc.v2 (containerd-shim-runc-v2)
# with BinaryName = the runtime under test (ctr's --runc-binary sets exactly
# that runc option). Sourced by run.sh and by each test process. Environment
# from run.sh: RT RTLABEL RTKIND WORK CLIENTS_DIR CTR_ADDR CTR_NS CTRD_STATE IMG.
# Each runtime gets its own runc root (--runc-root), so its state dir is known:
# <runc-root>/<namespace>/<id>. The cgroup of container ID is /<namespace>/<id>.

ctr_() { ctr -a "$CTR_ADDR" -n "$CTR_NS" "$@"; }
ro() { RO=(--runtime io.containerd.runc.v2 --runc-binary "$RT" --runc-root "$WORK/ctrd/runc-root-$RTLABEL"); }
ptyrun() { python3 "$CLIENTS_DIR/ptyrun.py" "$@"; }
task_status() { ctr_ task ls | awk -v id="$1" '$1 == id { print $3 }'; }
task_pid() { ctr_ task ls | awk -v id="$1" '$1 == id { print $2 }'; }
is_task() { [ "$(task_status "$1")" = "$2" ]; }

# run_d ID [ctr run flags] -- ARGS...: ctr run -d; the task's pid in $PID.
run_d() {
  local id=$1; shift
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  ro
  cleanup_later remove_quietly "$id"
  ctr_ run -d "${RO[@]}" "${flags[@]}" "$IMG" "$id" "$@"
  wait_for 10 is_task "$id" RUNNING
  PID=$(task_pid "$id")
  echo "+ run -d $id -> pid $PID" >&2
}

# The task (if any) and the container go; then nothing of it may remain.
remove() {
  remove_quietly "$1"
  expect_no_leftovers "$1"
}
remove_quietly() {
  local id=$1 i
  ctr_ task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  for i in $(seq 50); do
    case "$(task_status "$id")" in ""|STOPPED) break ;; esac
    sleep 0.1
  done
  ctr_ task delete "$id" >/dev/null 2>&1 || true
  ctr_ container delete "$id" >/dev/null 2>&1 || true
}

c_leftovers() {
  leftovers_of "$1" "$WORK/ctrd/runc-root-$RTLABEL/$CTR_NS" "$CTR_NS/$1"
  pgrep -af "containerd-shim-runc-v2 -namespace $CTR_NS -id $1 -address $CTR_ADDR" | sed 's/^/shim: /' || true
}

expect_no_leftovers() { expect_clean "container $1" c_leftovers "$1"; }

c_run_rm() {
  local id=$RTLABEL-run
  ro
  cleanup_later remove_quietly "$id"
  expect_rc 3 ctr_ run --rm "${RO[@]}" "$IMG" "$id" sh -c 'echo hello; echo to-stderr >&2; exit 3'
  expect_eq "$OUT" hello stdout
  expect_contains "$ERR" to-stderr stderr
  expect_rc 0 ctr_ container ls -q
  expect_not_contains "$OUT" "$id" "containers after run --rm"
  expect_no_leftovers "$id"
}

# The init is the shim's child (the shim is its subreaper), in /<ns>/<id>.
c_run_detached() {
  local id=$RTLABEL-detached
  run_d "$id" -- sleep 1000
  expect_contains "$(cat /proc/$PID/cgroup)" "memory:/$CTR_NS/$id" "init's cgroup"
  local ppid
  ppid=$(awk '/^PPid:/ { print $2 }' /proc/$PID/status)
  expect_eq "$(cat /proc/$ppid/comm)" containerd-shim "parent of the init (pid $PID)"
  remove "$id"
}

# ctr sets the window size with a resize request after the start: give it a moment.
c_run_tty() {
  local id=$RTLABEL-tty
  ro
  cleanup_later remove_quietly "$id"
  expect_rc 6 ptyrun --rows 33 --cols 77 -- ctr -a "$CTR_ADDR" -n "$CTR_NS" run --rm -t "${RO[@]}" "$IMG" "$id" \
    sh -c 'tty; sleep 1; stty size; exit 6'
  expect_contains "$OUT" /dev/pts/0 tty
  expect_contains "$OUT" "33 77" "window size"
  expect_no_leftovers "$id"
}

c_exec() {
  local id=$RTLABEL-exec
  run_d "$id" -- sleep 1000
  expect_rc 0 ctr_ task exec --exec-id e1 "$id" sh -c 'echo from-exec; echo exec-err >&2; tr "\\0" " " </proc/1/cmdline'
  expect_eq "$OUT" "from-exec"$'\n'"sleep 1000 " stdout
  expect_contains "$ERR" exec-err stderr
  expect_rc 4 ctr_ task exec --exec-id e2 "$id" sh -c 'exit 4'
  expect_rc 0 ctr_ task exec --exec-id e3 --user 1000 --cwd /tmp "$id" sh -c 'id -u; pwd'
  expect_eq "$OUT" "1000"$'\n'"/tmp" "exec --user --cwd"
  # errors of exec carry the runtime's message
  expect_rc 1 ctr_ task exec --exec-id e4 "$id" /no/such/binary
  expect_contains "$ERR" "OCI runtime exec failed: "
  expect_contains "$ERR" 'stat /no/such/binary: no such file or directory'
  expect_rc 1 ctr_ task exec --exec-id e5 "$id" /usr/local/bin/not-executable
  expect_contains "$ERR" 'permission denied'
  remove "$id"
}

c_exec_tty() {
  local id=$RTLABEL-exectty
  run_d "$id" -- sleep 1000
  expect_rc 3 ptyrun --rows 33 --cols 77 -- ctr -a "$CTR_ADDR" -n "$CTR_NS" task exec -t --exec-id t1 "$id" \
    sh -c 'tty; sleep 1; stty size; exit 3'
  expect_contains "$OUT" /dev/pts/ tty
  expect_contains "$OUT" "33 77" "window size"
  expect_rc 5 ptyrun --input 'echo typed-$((6*7))\nexit 5\n' -- ctr -a "$CTR_ADDR" -n "$CTR_NS" task exec -t --exec-id t2 "$id" sh
  expect_contains "$OUT" typed-42 "interactive shell output"
  remove "$id"
}

# ps (the runtime's `ps --format json`) lists the init and a detached exec;
# kill --exec-id signals only that process.
c_ps_exec_detached_kill() {
  local id=$RTLABEL-ps
  run_d "$id" -- sleep 1000
  expect_rc 0 ctr_ task exec -d --exec-id bg "$id" sleep 999
  wait_for 10 sh -c "ctr -a $CTR_ADDR -n $CTR_NS task ps $id | tail -n +2 | wc -l | grep -qx 2"
  expect_rc 0 ctr_ task ps "$id"
  expect_contains "$OUT" "$PID" "task ps"
  local execpid
  execpid=$(echo "$OUT" | awk -v p="$PID" 'NR > 1 && $1 != p { print $1 }')
  expect_eq "$(tr '\0' ' ' </proc/$execpid/cmdline)" "sleep 999 " "the other pid of task ps"
  expect_rc 0 ctr_ task kill --exec-id bg -s SIGKILL "$id"
  wait_for 10 sh -c "ctr -a $CTR_ADDR -n $CTR_NS task ps $id | tail -n +2 | wc -l | grep -qx 1"
  expect_eq "$(task_status "$id")" RUNNING "init after killing the exec"
  remove "$id"
}

c_pause_resume() {
  local id=$RTLABEL-pause
  run_d "$id" -- sh -c 'while :; do sleep 0.1; done'
  local freezer=/sys/fs/cgroup/freezer/$CTR_NS/$id/freezer.state
  expect_rc 0 ctr_ task pause "$id"
  expect_eq "$(task_status "$id")" PAUSED status
  expect_eq "$(cat "$freezer")" FROZEN "$freezer"
  expect_rc 0 ctr_ task resume "$id"
  expect_eq "$(task_status "$id")" RUNNING status
  expect_eq "$(cat "$freezer")" THAWED "$freezer"
  # a paused task can be killed
  expect_rc 0 ctr_ task pause "$id"
  expect_rc 0 ctr_ task kill -s SIGKILL "$id"
  wait_for 10 is_task "$id" STOPPED
  expect_rc 0 ctr_ task delete "$id"
  remove "$id"
}

c_metrics() {
  local id=$RTLABEL-metrics
  run_d "$id" --memory-limit 67108864 --cpus 0.5 -- sh -c 'sleep 1000 & wait'
  expect_rc 0 ctr_ task metrics "$id"
  expect_contains "$OUT" "memory.limit_in_bytes    67108864" "metrics table"
  expect_contains "$OUT" "pids.current             2" "metrics table"
  expect_rc 0 ctr_ task metrics --format json "$id"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["pids"]["current"] == 2, d["pids"]; assert d["memory"]["usage"]["limit"] == 67108864, d["memory"]["usage"]' "$OUT" ||
    die "metrics json: $OUT"
  expect_eq "$(cat /sys/fs/cgroup/cpu/$CTR_NS/$id/cpu.cfs_quota_us)" 50000 "cpu.cfs_quota_us"
  remove "$id"
}

c_kill_and_delete() {
  local id=$RTLABEL-kill
  run_d "$id" -- sh -c 'trap "echo got-term; exit 7" TERM; while :; do sleep 0.1; done'
  expect_rc 0 ctr_ task kill -s SIGTERM "$id"
  wait_for 10 is_task "$id" STOPPED
  expect_rc 0 ctr_ task delete "$id"
  expect_contains "$ERR" "exit code 7" "task delete"
  expect_rc 0 ctr_ container delete "$id"
  expect_no_leftovers "$id"
  # --all: every process of the container gets the signal (init survives
  # SIGTERM here and exits only once both its children are gone)
  id=$RTLABEL-killall
  run_d "$id" -- sh -c 'trap "echo init-got-term" TERM; sleep 1001 & sleep 1002 & wait; wait; echo children-gone'
  wait_for 10 sh -c "[ \$(wc -l < /sys/fs/cgroup/pids/$CTR_NS/$id/cgroup.procs) = 3 ]"
  expect_rc 0 ctr_ task kill --all -s SIGTERM "$id"
  wait_for 10 is_task "$id" STOPPED
  expect_rc 0 ctr_ task delete "$id"
  expect_rc 0 ctr_ container delete "$id"
  expect_no_leftovers "$id"
  # delete --force of a running task
  id=$RTLABEL-delforce
  run_d "$id" -- sleep 1000
  expect_rc 0 ctr_ task delete --force "$id"
  expect_rc 0 ctr_ container delete "$id"
  expect_no_leftovers "$id"
}

c_failed_create() {
  local id=$RTLABEL-badcreate
  ro
  cleanup_later remove_quietly "$id"
  expect_rc 1 ctr_ run --rm "${RO[@]}" "$IMG" "$id" /no/such/binary
  # the shim read the runtime's --log (log.json): its last level=error line
  expect_contains "$ERR" 'OCI runtime create failed: '
  expect_contains "$ERR" 'exec: "/no/such/binary": stat /no/such/binary: no such file or directory: unknown'
  expect_not_contains "$ERR" 'unable to retrieve OCI runtime error'
  ctr_ container delete "$id" >/dev/null 2>&1 || true
  expect_no_leftovers "$id"
}

c_failed_create_not_executable() {
  local id=$RTLABEL-noexec
  ro
  cleanup_later remove_quietly "$id"
  expect_rc 1 ctr_ run --rm "${RO[@]}" "$IMG" "$id" /usr/local/bin/not-executable
  ctr_ container delete "$id" >/dev/null 2>&1 || true
  expect_no_leftovers "$id"
  expect_contains "$ERR" 'OCI runtime create failed: '
  expect_contains "$ERR" 'permission denied: unknown'
}

c_parallel() {
  local i pids=()
  ro
  for i in 1 2 3 4 5 6; do
    ctr_ run --rm "${RO[@]}" "$IMG" "$RTLABEL-par$i" echo "par-$i" >"$WORK/cpar-$RTLABEL-$i" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3 4 5 6; do
    wait "${pids[$((i - 1))]}" || die "parallel run $i failed: $(cat "$WORK/cpar-$RTLABEL-$i")"
    expect_eq "$(cat "$WORK/cpar-$RTLABEL-$i")" "par-$i" "parallel run $i"
    expect_no_leftovers "$RTLABEL-par$i"
  done
}

c_no_leftovers() {
  local left=""
  left+=$(ctr_ container ls -q | grep "^$RTLABEL-" | sed 's/^/container: /' || true)
  left+=$(ls "$WORK/ctrd/runc-root-$RTLABEL/$CTR_NS" 2>/dev/null | sed 's/^/runtime state: /' || true)
  left+=$(ls -d /sys/fs/cgroup/*/"$CTR_NS"/"$RTLABEL"-* 2>/dev/null | sed 's/^/cgroup: /' || true)
  left+=$(grep -F "$CTRD_STATE/" /proc/self/mountinfo | sed 's/^/mount: /' || true)
  left+=$(pgrep -af "containerd-shim-runc-v2 .*-address $CTR_ADDR" | sed 's/^/shim: /' || true)
  [ -z "$left" ] || die "left behind:"$'\n'"$left"
}

containerd_suite() {
  export SUITE_FILE=containerd.sh
  t "ctr run --rm: output, exit code, cleanup" c_run_rm
  t "ctr run -d: init is the shim's child, in /<ns>/<id>" c_run_detached
  t "ctr run -t through a pty" c_run_tty
  t "ctr task exec (output, exit code, --user --cwd, errors)" c_exec
  t "ctr task exec -t through a pty" c_exec_tty
  t "ctr task ps, exec -d, kill --exec-id" c_ps_exec_detached_kill
  t "ctr task pause/resume (freezer), kill while paused" c_pause_resume
  t "ctr task metrics (--memory-limit, --cpus)" c_metrics
  t "ctr task kill (TERM, --all), delete, delete --force" c_kill_and_delete
  t "ctr run: failed create surfaces the runtime's last JSON error line" c_failed_create
  t "ctr run: non-executable is refused at create" c_failed_create_not_executable
  t "ctr run: 6 in parallel" c_parallel
  t "containerd: no leftovers from any container of this suite" c_no_leftovers
}
