# podman 4.3 + conmon driving the runtime under test (sourced by run.sh and by
# each test process). Environment from run.sh: RT RTLABEL RTKIND STATE_ROOT
# WORK CLIENTS_DIR IMG PODMAN_ROOT PODMAN_RUNROOT PODMAN_TMPDIR PODMAN_CONF_DIR
# CONTAINERS_CONF (the plain config: podman does not pass --log to the runtime).
#
# No systemd on this host: cgroupfs manager, file events, k8s-file logs, and
# no network (netns none). No CAP_SYS_RESOURCE: every container gets
# --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 (podman would otherwise
# ask the runtime to raise RLIMIT_NOFILE/NPROC to 1048576 and fail, with runc too).

U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# The podman command line; PODMAN_RUNTIME overrides --runtime (a name from
# [engine.runtimes] or a path).
pod_base() {
  POD=(podman --root "$PODMAN_ROOT" --runroot "$PODMAN_RUNROOT" --tmpdir "$PODMAN_TMPDIR"
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file
    --runtime "${PODMAN_RUNTIME:-$RT}")
}
pod() { pod_base; "${POD[@]}" "$@"; }
ptyrun() { python3 "$CLIENTS_DIR/ptyrun.py" "$@"; }

cid() { pod inspect --format '{{.Id}}' "$1"; }
status_of() { pod inspect --format '{{.State.Status}}' "$1"; }
exitcode_of() { pod inspect --format '{{.State.ExitCode}}' "$1"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
logs_have() { pod logs "$1" 2>&1 | grep -q -- "$2"; }
top_has() { pod top "$1" | grep -q -- "$2"; }

# Fails when anything of container ID is left on the host (waits up to 10 s:
# podman's cleanup of a detached container runs asynchronously).
expect_no_leftovers() {
  expect_clean "container $1" leftovers_of "$1" "$STATE_ROOT" "libpod_parent/libpod-$1"
}

# run_d NAME ARGS...: podman run -d, the container's id in $ID.
run_d() {
  local name=$1; shift
  cleanup_later pod rm -f -t 0 "$name"
  ID=$(pod run -d --name "$name" "${U[@]}" "$@")
  echo "+ run -d $name -> $ID" >&2
}

# ------------------------------------------------------------------ run

p_run_output() {
  expect_rc 0 pod run --rm "${U[@]}" "$IMG" sh -c 'echo to-stdout; echo to-stderr >&2; cat /etc/hostname >/dev/null'
  expect_eq "$OUT" to-stdout stdout
  expect_contains "$ERR" to-stderr stderr
}

p_run_exit_codes() {
  expect_rc 1 pod run --rm "${U[@]}" "$IMG" false
  expect_rc 42 pod run --rm "${U[@]}" "$IMG" sh -c 'exit 42'
  expect_rc 255 pod run --rm "${U[@]}" "$IMG" sh -c 'exit 255'
}

p_run_missing_binary() {
  expect_rc 127 pod run --rm "${U[@]}" "$IMG" /no/such/binary
  # the runtime's own message, through conmon's stderr pipe
  expect_contains "$ERR" 'stat /no/such/binary: no such file or directory'
  expect_contains "$ERR" 'OCI runtime attempted to invoke a command that was not found'
}

p_run_not_executable() {
  expect_rc 126 pod run --rm "${U[@]}" "$IMG" /usr/local/bin/not-executable
  expect_contains "$ERR" 'permission denied'
}

# runc checks that the entrypoint is executable before `create` returns, so
# podman gets the error from create (the oci-log / conmon), classifies it as
# "OCI permission denied" and leaves no half-made container behind.
p_run_not_executable_at_create() {
  CONTAINERS_CONF=$PODMAN_CONF_DIR/json-$RTLABEL.conf
  cleanup_later pod rm -f -t 0 "$RTLABEL-noexec"
  expect_rc 126 pod run --name "$RTLABEL-noexec" "${U[@]}" "$IMG" /usr/local/bin/not-executable
  local err=$ERR id
  id=$(cid "$RTLABEL-noexec")
  local log
  log=$(cat "$PODMAN_RUNROOT/overlay-containers/$id/userdata/oci-log" 2>&1 || true)
  echo "oci-log: $log" >&2
  pod rm -f -t 0 "$RTLABEL-noexec" >/dev/null
  expect_contains "$err" 'permission denied: OCI permission denied' "podman's error"
  expect_contains "$log" 'permission denied' oci-log
}

p_run_stdin() {
  OUT=$(echo piped-in | pod run --rm -i "${U[@]}" "$IMG" sh -c 'read l; echo "got $l"')
  expect_eq "$OUT" "got piped-in" stdout
}

p_run_it_pty() {
  pod_base
  expect_rc 4 ptyrun --rows 33 --cols 77 -- "${POD[@]}" run --rm -it "${U[@]}" "$IMG" \
    sh -c 'tty; stty size; exit 4'
  expect_contains "$OUT" /dev/pts/0 tty
  expect_contains "$OUT" "33 77" "window size"
}

p_run_rm_cleans_up() {
  local cf="$WORK/cid-$RTLABEL-rm"
  rm -f "$cf"
  expect_rc 0 pod run --rm --cidfile "$cf" "${U[@]}" "$IMG" true
  expect_no_leftovers "$(cat "$cf")"
  expect_rc 0 pod ps -a -q --filter id="$(cat "$cf")"
  expect_eq "$OUT" "" "podman ps -a after run --rm"
}

p_run_parallel() {
  local i pids=()
  for i in 1 2 3 4 5 6 7 8; do
    pod run --rm "${U[@]}" "$IMG" echo "par-$i" >"$WORK/par-$RTLABEL-$i" 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3 4 5 6 7 8; do
    wait "${pids[$((i - 1))]}" || die "parallel run $i failed: $(cat "$WORK/par-$RTLABEL-$i")"
    expect_eq "$(cat "$WORK/par-$RTLABEL-$i")" "par-$i" "parallel run $i"
  done
}

# ------------------------------------------------- errors in the config

p_missing_entrypoint_plain() {
  expect_rc 127 pod run --rm "${U[@]}" --entrypoint /no/such/entry "$IMG"
  expect_contains "$ERR" "Error: $RT: "
  expect_contains "$ERR" 'exec: "/no/such/entry": stat /no/such/entry: no such file or directory'
}

# json_oci_log_error NAME: `podman run --name NAME` with a missing entrypoint
# must fail with 127, leaving in the container's oci-log exactly one JSON
# object (podman json-decodes the whole file) whose msg is what the user sees.
json_oci_log_error() {
  local name=$1
  cleanup_later pod rm -f -t 0 "$name"
  expect_rc 127 pod run --name "$name" "${U[@]}" --entrypoint /no/such/entry "$IMG"
  local err=$ERR id
  id=$(cid "$name")
  local log="$PODMAN_RUNROOT/overlay-containers/$id/userdata/oci-log"
  [ -s "$log" ] || die "no oci-log at $log: podman did not pass --log (or the runtime did not write it)"
  local msg
  msg=$(python3 - "$log" <<'EOF2'
import json, re, sys
d = json.load(open(sys.argv[1]))   # podman: one json.Unmarshal of the whole file
assert isinstance(d, dict), d
assert d.get("level") == "error", d
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", d["time"]), d
print(d["msg"])
EOF2
  ) || die "oci-log is not one JSON error object: $(cat "$log")"
  pod rm -f -t 0 "$name" >/dev/null
  expect_contains "$msg" 'stat /no/such/entry: no such file or directory' "oci-log msg"
  expect_contains "$err" "$msg" "podman's error (should carry the oci-log msg)"
  expect_contains "$err" 'OCI runtime attempted to invoke a command that was not found'
}

# runtime_supports_json lists the runtime's basename: podman passes
# `--log-format=json --log <rundir>/oci-log` and reads the error from there.
p_missing_entrypoint_json_log() {
  CONTAINERS_CONF=$PODMAN_CONF_DIR/json-$RTLABEL.conf
  json_oci_log_error "$RTLABEL-badentry"
}

# The other way to get JSON logs without touching containers.conf: call the
# binary through a symlink whose basename is in podman's default list.
p_symlink_named_crun() {
  mkdir -p "$WORK/as-crun-$RTLABEL"
  ln -sf "$RT" "$WORK/as-crun-$RTLABEL/crun"
  PODMAN_RUNTIME=$WORK/as-crun-$RTLABEL/crun
  expect_rc 0 pod run --rm "${U[@]}" "$IMG" echo via-crun-symlink
  expect_eq "$OUT" via-crun-symlink
  json_oci_log_error "$RTLABEL-ascrun"
}

# The runtime configured by name in [engine.runtimes] (what a user would put in
# containers.conf), JSON logs on.
p_named_runtime() {
  CONTAINERS_CONF=$PODMAN_CONF_DIR/json-$RTLABEL.conf PODMAN_RUNTIME=$RTLABEL
  expect_rc 0 pod run --rm "${U[@]}" "$IMG" echo via-named-runtime
  expect_eq "$OUT" via-named-runtime
  expect_rc 0 pod info --format '{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}'
  expect_eq "$OUT" "$RTLABEL $RT" "podman info runtime"
  expect_rc 127 pod run --rm "${U[@]}" --entrypoint /no/such/entry "$IMG"
  expect_contains "$ERR" "Error: $RTLABEL: "
  expect_contains "$ERR" 'stat /no/such/entry: no such file or directory'
}

# ------------------------------------------------------------ detached

p_detach_exec() {
  run_d "$RTLABEL-exec" "$IMG" sleep 1000
  expect_rc 0 pod exec "$RTLABEL-exec" sh -c 'echo in-exec; cat /proc/1/cmdline | tr "\0" " "'
  expect_eq "$OUT" "in-exec"$'\n'"sleep 1000 " "exec output"
  expect_rc 5 pod exec "$RTLABEL-exec" sh -c 'exit 5'
  expect_rc 0 pod exec -u 1000:1000 -w /tmp -e FOO=bar "$RTLABEL-exec" sh -c 'id -u; id -g; pwd; echo $FOO'
  expect_eq "$OUT" "1000"$'\n'"1000"$'\n'"/tmp"$'\n'"bar" "exec -u -w -e"
  expect_rc 0 pod exec -d "$RTLABEL-exec" sh -c 'echo detached-exec > /tmp/det'
  wait_for 5 pod exec "$RTLABEL-exec" grep -q detached-exec /tmp/det
  expect_rc 127 pod exec "$RTLABEL-exec" /no/such/binary
  expect_contains "$ERR" 'no such file or directory'
  expect_rc 126 pod exec "$RTLABEL-exec" /usr/local/bin/not-executable
  expect_contains "$ERR" 'permission denied'
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-exec"
  expect_no_leftovers "$ID"
}

p_exec_it_pty() {
  run_d "$RTLABEL-pty" "$IMG" sleep 1000
  pod_base
  expect_rc 3 ptyrun --rows 33 --cols 77 -- "${POD[@]}" exec -it "$RTLABEL-pty" \
    sh -c 'tty; stty size; echo "TERM=$TERM"; exit 3'
  expect_contains "$OUT" /dev/pts/ tty
  expect_contains "$OUT" "33 77" "window size"
  expect_contains "$OUT" "TERM=xterm"
  # an interactive shell: what is typed reaches it, its answer comes back
  expect_rc 5 ptyrun --input 'echo typed-$((6*7))\nexit 5\n' -- "${POD[@]}" exec -it "$RTLABEL-pty" sh
  expect_contains "$OUT" typed-42 "interactive shell output"
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-pty"
  expect_no_leftovers "$ID"
}

p_logs() {
  run_d "$RTLABEL-logs" "$IMG" sh -c 'echo line-1; echo line-2 >&2; echo line-3; sleep 1000'
  wait_for 10 logs_have "$RTLABEL-logs" line-3
  expect_rc 0 pod logs "$RTLABEL-logs"
  expect_contains "$OUT" "line-1"$'\n'"line-3" "logs stdout"
  expect_contains "$ERR" "line-2" "logs stderr"
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-logs"
  expect_no_leftovers "$ID"
}

p_stop_sigterm() {
  run_d "$RTLABEL-stop" "$IMG" sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-stop" ready
  local s=$SECONDS
  expect_rc 0 pod stop -t 20 "$RTLABEL-stop"
  [ $((SECONDS - s)) -lt 10 ] || die "stop took $((SECONDS - s))s although the container exits on SIGTERM"
  expect_eq "$(exitcode_of "$RTLABEL-stop")" 0 "exit code"
  expect_contains "$(pod logs "$RTLABEL-stop")" got-term logs
  expect_rc 0 pod rm "$RTLABEL-stop"
  expect_no_leftovers "$ID"
}

p_stop_sigkill_after_timeout() {
  run_d "$RTLABEL-stopk" "$IMG" sh -c 'trap "echo ignoring-term" TERM; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-stopk" ready
  local s=$SECONDS
  expect_rc 0 pod stop -t 2 "$RTLABEL-stopk"
  local took=$((SECONDS - s))
  [ $took -ge 2 ] && [ $took -lt 10 ] || die "stop -t 2 took ${took}s"
  expect_contains "$ERR" "resorting to SIGKILL"
  expect_eq "$(exitcode_of "$RTLABEL-stopk")" 137 "exit code"
  expect_contains "$(pod logs "$RTLABEL-stopk")" ignoring-term "logs (SIGTERM was delivered first)"
  expect_rc 0 pod rm "$RTLABEL-stopk"
  expect_no_leftovers "$ID"
}

# No pid namespace of its own: stopping it must kill every process of the
# container (podman uses `kill --all`), not only its init.
p_stop_pid_host() {
  run_d "$RTLABEL-pidhost" --pid host "$IMG" sh -c 'sleep 1001 & sleep 1002 & wait'
  wait_for 10 sh -c "cat /sys/fs/cgroup/pids/libpod_parent/libpod-$ID/cgroup.procs | wc -l | grep -qx 3"
  expect_rc 0 pod stop -t 1 "$RTLABEL-pidhost"
  expect_no_leftovers "$ID"
  expect_rc 0 pod rm "$RTLABEL-pidhost"
}

p_kill() {
  run_d "$RTLABEL-kill" "$IMG" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-kill" ready
  expect_rc 0 pod kill -s USR1 "$RTLABEL-kill"
  wait_for 10 logs_have "$RTLABEL-kill" got-usr1
  expect_eq "$(status_of "$RTLABEL-kill")" running "status after USR1"
  expect_rc 0 pod kill "$RTLABEL-kill"
  wait_for 10 is_status "$RTLABEL-kill" exited
  expect_eq "$(exitcode_of "$RTLABEL-kill")" 137 "exit code after kill"
  expect_rc 0 pod rm "$RTLABEL-kill"
  expect_no_leftovers "$ID"
}

p_pause_unpause() {
  run_d "$RTLABEL-pause" "$IMG" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'
  local upper freezer
  upper=$(pod inspect --format '{{.GraphDriver.Data.UpperDir}}' "$RTLABEL-pause")
  freezer=/sys/fs/cgroup/freezer/libpod_parent/libpod-$ID/freezer.state
  wait_for 10 test -s "$upper/tmp/count"
  expect_rc 0 pod pause "$RTLABEL-pause"
  expect_eq "$(status_of "$RTLABEL-pause")" paused status
  expect_eq "$(cat "$freezer")" FROZEN "$freezer"
  local a b
  a=$(cat "$upper/tmp/count"); sleep 0.5; b=$(cat "$upper/tmp/count")
  expect_eq "$b" "$a" "counter while paused"
  expect_rc 0 pod unpause "$RTLABEL-pause"
  expect_eq "$(status_of "$RTLABEL-pause")" running status
  expect_eq "$(cat "$freezer")" THAWED "$freezer"
  wait_for 5 sh -c "[ \$(cat $upper/tmp/count) -gt $b ]"
  # a frozen container can still be killed
  expect_rc 0 pod pause "$RTLABEL-pause"
  expect_rc 0 pod kill "$RTLABEL-pause"
  wait_for 10 is_status "$RTLABEL-pause" exited
  expect_eq "$(exitcode_of "$RTLABEL-pause")" 137 "exit code after killing it paused"
  expect_rc 0 pod rm "$RTLABEL-pause"
  expect_no_leftovers "$ID"
}

p_resources() {
  expect_rc 0 pod run --rm "${U[@]}" --memory 64m --pids-limit 50 --cpus 0.5 "$IMG" sh -c '
    cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
        /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us'
  expect_eq "$OUT" "67108864"$'\n'"50"$'\n'"50000"$'\n'"100000" "memory, pids, cpu quota, cpu period"
  # the pids limit holds: the shell cannot fork 40 sleeps (and, busybox, dies
  # of it); builtins only afterwards, the cgroup is still full
  expect_rc 0 pod run --rm "${U[@]}" --pids-limit 20 "$IMG" sh -c '
    sh -c "for i in \$(seq 1 40); do sleep 30 & done; echo all-forked" 2>&1
    read c < /sys/fs/cgroup/pids/pids.current; echo "current=$c"'
  expect_contains "$OUT" "can't fork" "40 forks under --pids-limit 20"
  expect_not_contains "$OUT" "all-forked" "40 forks under --pids-limit 20"
  local cur=${OUT##*current=}
  [ "$cur" -le 20 ] || die "pids.current $cur above the limit of 20"
}

p_update_memory() {
  run_d "$RTLABEL-update" --memory 64m --cpus 0.5 "$IMG" sleep 1000
  expect_rc 0 pod exec "$RTLABEL-update" cat /sys/fs/cgroup/memory/memory.limit_in_bytes
  expect_eq "$OUT" 67108864 "memory limit before update"
  expect_rc 0 pod update --memory 128m --cpus 1.5 "$RTLABEL-update"
  expect_rc 0 pod exec "$RTLABEL-update" cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us
  expect_eq "$OUT" "134217728"$'\n'"150000" "memory limit and cpu quota after update"
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-update"
  expect_no_leftovers "$ID"
}

p_top() {
  run_d "$RTLABEL-top" "$IMG" sh -c 'sleep 1000 & wait'
  wait_for 10 top_has "$RTLABEL-top" "sleep 1000"
  expect_rc 0 pod top "$RTLABEL-top"
  expect_contains "$OUT" "USER" header
  expect_contains "$OUT" "sh -c sleep 1000 & wait" "pid 1"
  expect_rc 0 pod top "$RTLABEL-top" pid comm
  expect_contains "$OUT" "1           sh" "pid 1 comm"
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-top"
  expect_no_leftovers "$ID"
}

p_rm_force_running() {
  run_d "$RTLABEL-rmf" "$IMG" sh -c 'trap "" TERM; sleep 1000 & wait'
  wait_for 10 is_status "$RTLABEL-rmf" running
  expect_rc 0 pod rm -f -t 1 "$RTLABEL-rmf"
  expect_rc 0 pod ps -a -q --filter id="$ID"
  expect_eq "$OUT" "" "podman ps -a after rm -f"
  expect_no_leftovers "$ID"
}

p_restart() {
  run_d "$RTLABEL-restart" "$IMG" sh -c 'echo started; sleep 1000'
  expect_rc 0 pod stop -t 0 "$RTLABEL-restart"
  expect_rc 0 pod start "$RTLABEL-restart"
  wait_for 10 is_status "$RTLABEL-restart" running
  expect_rc 0 pod exec "$RTLABEL-restart" echo alive
  expect_rc 0 pod restart -t 0 "$RTLABEL-restart"
  wait_for 10 is_status "$RTLABEL-restart" running
  expect_eq "$(pod logs "$RTLABEL-restart" | grep -c started)" 3 "started lines"
  expect_rc 0 pod rm -f -t 0 "$RTLABEL-restart"
  expect_no_leftovers "$ID"
}

# Every container this suite made (podman's event log) is gone without a trace.
p_no_leftovers() {
  pod rm -a -f -t 0 >/dev/null 2>&1 || true
  local id n=0 all=""
  for id in $(pod events --stream=false --filter event=create --format '{{.ID}}' | sort -u); do
    n=$((n + 1))
    all+=$(leftovers_of "$id" "$STATE_ROOT" "libpod_parent/libpod-$id")
  done
  echo "checked $n containers" >&2
  [ $n -gt 0 ] || die "no container events: cannot check"
  [ -z "$all" ] || die "left behind:"$'\n'"$all"
  local conmons
  conmons=$(pgrep -a conmon | grep -F -- "$PODMAN_ROOT" || true)
  [ -z "$conmons" ] || die "conmon processes left: $conmons"
}

podman_suite() {
  export SUITE_FILE=podman.sh
  t "podman run --rm: stdout and stderr" p_run_output
  t "podman run: exit codes 1, 42, 255" p_run_exit_codes
  t "podman run: missing binary -> 127 with the runtime's message" p_run_missing_binary
  t "podman run: non-executable -> 126, 'permission denied'" p_run_not_executable
  t "podman run: non-executable is refused at create (OCI permission denied)" p_run_not_executable_at_create
  t "podman run -i: stdin" p_run_stdin
  t "podman run -it through a pty" p_run_it_pty
  t "podman run --rm leaves nothing behind" p_run_rm_cleans_up
  t "podman run: 8 in parallel" p_run_parallel
  t "podman: missing entrypoint reaches the user (plain stderr path)" p_missing_entrypoint_plain
  t "podman: missing entrypoint reaches the user (runtime_supports_json, --log oci-log)" p_missing_entrypoint_json_log
  t "podman: runtime through a symlink named crun (JSON logs, default config)" p_symlink_named_crun
  t "podman: runtime by name from [engine.runtimes]" p_named_runtime
  t "podman run -d + exec (output, exit codes, -u -w -e, -d, errors)" p_detach_exec
  t "podman exec -it through a pty" p_exec_it_pty
  t "podman logs (k8s-file)" p_logs
  t "podman stop: SIGTERM" p_stop_sigterm
  t "podman stop: SIGKILL after the timeout" p_stop_sigkill_after_timeout
  t "podman stop --pid host: every process dies (kill --all)" p_stop_pid_host
  t "podman kill: USR1 then SIGKILL" p_kill
  t "podman pause/unpause (freezer), kill while paused" p_pause_unpause
  t "podman run --memory/--pids-limit/--cpus seen inside" p_resources
  t "podman update --memory --cpus" p_update_memory
  t "podman top" p_top
  t "podman rm -f of a running container" p_rm_force_running
  t "podman stop/start/restart" p_restart
  t "podman: no leftovers from any container of this suite" p_no_leftovers
}
