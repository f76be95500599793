# docker 20.10 (Debian's docker.io: dockerd + its own managed containerd 1.6 +
# containerd-shim-runc-v2) driving the runtime under test. Sourced by run.sh
# and by each test process. Environment from run.sh: RT RTLABEL RTKIND WORK
# CLIENTS_DIR DOCKER_HOST DOCKER_EXEC DOCKER_NS DOCKER_IMG.
#
# run.sh starts a private dockerd (everything under the work dir):
#   dockerd --data-root W/docker/root --exec-root W/docker/exec --pidfile W/docker/pid \
#     -H unix://W/docker/docker.sock --config-file W/docker/daemon.json \
#     --iptables=false --ip-forward=false --bridge=none \
#     --exec-opt native.cgroupdriver=cgroupfs --containerd-namespace capsa-clients-docker \
#     --add-runtime capsa=/path/to/capsa
# and every container runs with --runtime <basename of the runtime> --network none
# (runc, the oracle, is docker's built-in runtime "runc"). dockerd gives a runtime
# named NAME the runc root W/docker/exec/runtime-NAME, so the state dir of
# container ID is <that>/<namespace>/<ID>; its cgroup is /docker/<ID>.
#
# The Debian client is called by path: /usr/local/bin/docker may be a newer CLI.

DOCKER=/usr/bin/docker
U=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
dk() { "$DOCKER" "$@"; }
ptyrun() { python3 "$CLIENTS_DIR/ptyrun.py" "$@"; }
drun() { dk run --runtime "$RTLABEL" --network none "${U[@]}" "$@"; }

d_state_root() { echo "$DOCKER_EXEC/runtime-$RTLABEL/$DOCKER_NS"; }
status_of() { dk inspect --format '{{.State.Status}}' "$1"; }
exitcode_of() { dk inspect --format '{{.State.ExitCode}}' "$1"; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
logs_have() { dk logs "$1" 2>&1 | grep -q -- "$2"; }

# run_d NAME ARGS...: docker run -d, the container's id in $ID.
run_d() {
  local name=$1; shift
  cleanup_later dk rm -f "$name"
  ID=$(drun -d --name "$name" "$@")
  echo "+ run -d $name -> $ID" >&2
  wait_for 10 is_status "$name" running
}

# Fails when anything of container ID is left on the host: the runtime's state
# dir, the cgroups /docker/ID, mounts naming it, its shim.
d_leftovers() {
  leftovers_of "$1" "$(d_state_root)" "docker/$1"
  pgrep -af "containerd-shim-runc-v2 -namespace $DOCKER_NS -id $1 " | sed 's/^/shim: /' || true
}

expect_no_leftovers() { expect_clean "container $1" d_leftovers "$1"; }

# ------------------------------------------------------------------ scenarios

d_run_output() {
  local name=$RTLABEL-run
  cleanup_later dk rm -f "$name"
  expect_rc 3 drun --name "$name" "$DOCKER_IMG" sh -c 'echo to-stdout; echo to-stderr >&2; exit 3'
  expect_eq "$OUT" to-stdout stdout
  expect_contains "$ERR" to-stderr stderr
  local id
  id=$(dk inspect --format '{{.Id}}' "$name")
  expect_eq "$(dk inspect --format '{{.HostConfig.Runtime}}' "$name")" "$RTLABEL" "the container's runtime"
  expect_eq "$(exitcode_of "$name")" 3 "exit code in inspect"
  expect_rc 0 dk rm "$name"
  expect_no_leftovers "$id"
  expect_rc 0 drun --rm "$DOCKER_IMG" true
  expect_rc 42 drun --rm "$DOCKER_IMG" sh -c 'exit 42'
}

# dockerd maps the runtime's error text: "no such file or directory" -> 127,
# "permission denied" -> 126.
d_run_errors() {
  expect_rc 127 drun --rm "$DOCKER_IMG" /no/such/binary
  expect_contains "$ERR" 'no such file or directory'
  expect_rc 126 drun --rm "$DOCKER_IMG" /usr/local/bin/not-executable
  expect_contains "$ERR" 'permission denied'
}

d_run_stdin() {
  expect_rc 0 sh -c "echo piped-in | $DOCKER run --runtime $RTLABEL --network none ${U[*]} --rm -i $DOCKER_IMG sh -c 'read l; echo got-\$l'"
  expect_eq "$OUT" got-piped-in stdout
}

# docker sets the window size with a resize after the start: give it a moment.
d_run_it_pty() {
  expect_rc 4 ptyrun --rows 33 --cols 77 -- "$DOCKER" run --runtime "$RTLABEL" --network none "${U[@]}" --rm -it \
    "$DOCKER_IMG" sh -c 'tty; sleep 1; stty size; exit 4'
  expect_contains "$OUT" /dev/pts/0 tty
  expect_contains "$OUT" "33 77" "window size"
}

d_exec_it_pty() {
  run_d "$RTLABEL-pty" "$DOCKER_IMG" sleep 1000
  expect_rc 3 ptyrun --rows 33 --cols 77 -- "$DOCKER" exec -it "$RTLABEL-pty" sh -c 'tty; sleep 1; stty size; exit 3'
  expect_contains "$OUT" /dev/pts/ tty
  expect_contains "$OUT" "33 77" "window size"
  expect_rc 5 ptyrun --input 'echo typed-$((6*7))\nexit 5\n' -- "$DOCKER" exec -it "$RTLABEL-pty" sh
  expect_contains "$OUT" typed-42 "interactive shell output"
  expect_rc 0 dk rm -f "$RTLABEL-pty"
  expect_no_leftovers "$ID"
}

d_detach_exec() {
  run_d "$RTLABEL-exec" "$DOCKER_IMG" sleep 1000
  expect_rc 0 dk exec "$RTLABEL-exec" sh -c 'echo from-exec; echo exec-err >&2; tr "\\0" " " </proc/1/cmdline'
  expect_eq "$OUT" "from-exec"$'\n'"sleep 1000 " stdout
  expect_contains "$ERR" exec-err stderr
  expect_rc 5 dk exec "$RTLABEL-exec" sh -c 'exit 5'
  expect_rc 0 dk exec -u 1000 -w /tmp -e FOO=bar "$RTLABEL-exec" sh -c 'id -u; pwd; echo $FOO'
  expect_eq "$OUT" "1000"$'\n'"/tmp"$'\n'"bar" "exec -u -w -e"
  expect_rc 0 dk exec -d "$RTLABEL-exec" sh -c 'echo detached > /tmp/d'
  wait_for 10 dk exec "$RTLABEL-exec" test -s /tmp/d
  # docker 20.10 prints an exec's start error on stdout
  expect_rc 126 dk exec "$RTLABEL-exec" /no/such/binary
  expect_contains "$OUT$ERR" 'OCI runtime exec failed: '
  expect_contains "$OUT$ERR" 'stat /no/such/binary: no such file or directory'
  expect_rc 126 dk exec "$RTLABEL-exec" /usr/local/bin/not-executable
  expect_contains "$OUT$ERR" 'permission denied'
  # the init is the shim's child, in /docker/<id>
  local pid ppid
  pid=$(dk inspect --format '{{.State.Pid}}' "$RTLABEL-exec")
  expect_contains "$(cat /proc/$pid/cgroup)" "memory:/docker/$ID" "init's cgroup"
  ppid=$(awk '/^PPid:/ { print $2 }' /proc/$pid/status)
  expect_eq "$(cat /proc/$ppid/comm)" containerd-shim "parent of the init (pid $pid)"
  expect_rc 0 dk rm -f "$RTLABEL-exec"
  expect_no_leftovers "$ID"
}

d_stop() {
  run_d "$RTLABEL-stop" "$DOCKER_IMG" sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-stop" ready
  expect_rc 0 dk stop -t 10 "$RTLABEL-stop"
  expect_eq "$(exitcode_of "$RTLABEL-stop")" 7 "exit code after SIGTERM"
  expect_contains "$(dk logs "$RTLABEL-stop")" got-term logs
  expect_rc 0 dk rm "$RTLABEL-stop"
  expect_no_leftovers "$ID"
  # SIGTERM ignored: SIGKILL after the timeout
  run_d "$RTLABEL-stopk" "$DOCKER_IMG" sh -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-stopk" ready
  local t0=$SECONDS
  expect_rc 0 dk stop -t 2 "$RTLABEL-stopk"
  [ $((SECONDS - t0)) -ge 2 ] || die "stop -t 2 took less than 2 s"
  expect_eq "$(exitcode_of "$RTLABEL-stopk")" 137 "exit code after SIGKILL"
  expect_rc 0 dk rm "$RTLABEL-stopk"
  expect_no_leftovers "$ID"
}

d_kill() {
  run_d "$RTLABEL-kill" "$DOCKER_IMG" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.1; done'
  wait_for 10 logs_have "$RTLABEL-kill" ready
  expect_rc 0 dk kill -s USR1 "$RTLABEL-kill"
  wait_for 10 logs_have "$RTLABEL-kill" got-usr1
  expect_eq "$(status_of "$RTLABEL-kill")" running "status after USR1"
  expect_rc 0 dk kill "$RTLABEL-kill"
  wait_for 10 is_status "$RTLABEL-kill" exited
  expect_eq "$(exitcode_of "$RTLABEL-kill")" 137 "exit code after kill"
  expect_rc 0 dk rm "$RTLABEL-kill"
  expect_no_leftovers "$ID"
}

d_pause_unpause() {
  run_d "$RTLABEL-pause" "$DOCKER_IMG" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done'
  local upper freezer
  upper=$(dk inspect --format '{{.GraphDriver.Data.UpperDir}}' "$RTLABEL-pause")
  freezer=/sys/fs/cgroup/freezer/docker/$ID/freezer.state
  wait_for 10 test -s "$upper/tmp/count"
  expect_rc 0 dk pause "$RTLABEL-pause"
  expect_eq "$(status_of "$RTLABEL-pause")" paused status
  expect_eq "$(cat "$freezer")" FROZEN "$freezer"
  local a b
  a=$(cat "$upper/tmp/count"); sleep 0.5; b=$(cat "$upper/tmp/count")
  expect_eq "$b" "$a" "counter while paused"
  expect_rc 0 dk unpause "$RTLABEL-pause"
  expect_eq "$(status_of "$RTLABEL-pause")" running status
  expect_eq "$(cat "$freezer")" THAWED "$freezer"
  wait_for 5 sh -c "[ \$(cat $upper/tmp/count) -gt $b ]"
  # a paused container can still be removed by force
  expect_rc 0 dk pause "$RTLABEL-pause"
  expect_rc 0 dk rm -f "$RTLABEL-pause"
  expect_no_leftovers "$ID"
}

# stats come from the shim reading the container's cgroups (/docker/<id>)
d_stats() {
  run_d "$RTLABEL-stats" --memory 64m "$DOCKER_IMG" sh -c 'sleep 1000 & sleep 1000 & wait'
  wait_for 10 sh -c "[ \$(cat /sys/fs/cgroup/pids/docker/$ID/pids.current) -ge 3 ]"
  expect_rc 0 dk stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' "$RTLABEL-stats"
  expect_contains "$OUT" "$RTLABEL-stats " name
  expect_contains "$OUT" " / 64MiB 3" "memory limit and pids"
  expect_not_contains "$OUT" " 0B / " "memory usage"
  expect_rc 0 dk rm -f "$RTLABEL-stats"
  expect_no_leftovers "$ID"
}

# Writes land in the container's overlay upper dir, survive a stop/start,
# show in `docker diff` and `docker cp`, and do not reach the image.
d_overlay_write() {
  run_d "$RTLABEL-rw" "$DOCKER_IMG" sh -c 'mkdir /data && echo written > /data/f && rm /bin/vi && echo ready; sleep 1000'
  wait_for 10 logs_have "$RTLABEL-rw" ready
  local upper
  upper=$(dk inspect --format '{{.GraphDriver.Data.UpperDir}}' "$RTLABEL-rw")
  expect_eq "$(cat "$upper/data/f")" written "the file in the upper dir"
  grep -F " / " /proc/$(dk inspect --format '{{.State.Pid}}' "$RTLABEL-rw")/mountinfo | grep -q overlay ||
    die "the container's / is not an overlay mount"
  expect_rc 0 dk diff "$RTLABEL-rw"
  expect_contains "$OUT" "A /data/f" "docker diff"
  expect_contains "$OUT" "D /bin/vi" "docker diff"
  expect_rc 0 dk stop -t 0 "$RTLABEL-rw"
  expect_rc 0 dk start "$RTLABEL-rw"
  wait_for 10 is_status "$RTLABEL-rw" running
  expect_rc 0 dk exec "$RTLABEL-rw" cat /data/f
  expect_eq "$OUT" written "the file after stop/start"
  expect_rc 0 dk cp "$RTLABEL-rw:/data/f" "$WORK/docker-cp-$RTLABEL"
  expect_eq "$(cat "$WORK/docker-cp-$RTLABEL")" written "docker cp"
  expect_rc 0 dk rm -f "$RTLABEL-rw"
  expect_no_leftovers "$ID"
  expect_rc 0 drun --rm "$DOCKER_IMG" sh -c 'test ! -e /data && test -e /bin/vi && echo pristine'
  expect_eq "$OUT" pristine "a new container of the image"
}

d_rm_force_running() {
  run_d "$RTLABEL-rmf" "$DOCKER_IMG" sh -c 'trap "" TERM; sleep 1000 & wait'
  expect_rc 0 dk rm -f "$RTLABEL-rmf"
  expect_rc 0 dk ps -a -q --no-trunc --filter id="$ID"
  expect_eq "$OUT" "" "docker ps -a after rm -f"
  expect_no_leftovers "$ID"
}

# Every container this runtime ran is gone without a trace.
d_no_leftovers() {
  dk ps -a -q --filter name="^$RTLABEL-" | xargs -r "$DOCKER" rm -f >/dev/null 2>&1 || true
  local left=""
  left+=$(dk ps -a --format '{{.Names}}' --filter name="^$RTLABEL-" | sed 's/^/container: /' || true)
  left+=$(ls "$(d_state_root)" 2>/dev/null | sed 's/^/runtime state: /' || true)
  left+=$(ls -d /sys/fs/cgroup/*/docker/* 2>/dev/null | grep -E '/[0-9a-f]{64}$' | sed 's/^/cgroup: /' || true)
  left+=$(grep -F "$DOCKER_EXEC/" /proc/self/mountinfo | grep -v '/netns/' | sed 's/^/mount: /' || true)
  left+=$(pgrep -af "containerd-shim-runc-v2 -namespace $DOCKER_NS " | sed 's/^/shim: /' || true)
  [ -z "$left" ] || die "left behind:"$'\n'"$left"
}

docker_suite() {
  export SUITE_FILE=docker.sh
  t "docker run: stdout, stderr, exit codes" d_run_output
  t "docker run: missing binary -> 127, non-executable -> 126" d_run_errors
  t "docker run -i: stdin" d_run_stdin
  t "docker run -it through a pty" d_run_it_pty
  t "docker exec -it through a pty" d_exec_it_pty
  t "docker run -d + exec (output, exit code, -u -w -e, -d, errors)" d_detach_exec
  t "docker stop: SIGTERM, then SIGKILL after the timeout" d_stop
  t "docker kill: USR1 then SIGKILL" d_kill
  t "docker pause/unpause (freezer), rm -f while paused" d_pause_unpause
  t "docker stats --no-stream" d_stats
  t "docker: a container writes to its overlay rootfs" d_overlay_write
  t "docker rm -f of a running container" d_rm_force_running
  t "docker: no leftovers from any container of this suite" d_no_leftovers
}

# ------------------------------------------------ setup (run.sh, main shell)
# Installs docker.io, starts the private dockerd (DOCKERD_PID, for run.sh's
# cleanup) with a runtime per basename in RUNTIME_PATHS (runc is built in),
# and imports the busybox tarball as DOCKER_IMG.
docker_setup() {
  need_packages docker.io
  export DOCKER_DIR=$WORK/docker
  export DOCKER_EXEC=$DOCKER_DIR/exec DOCKER_NS=capsa-clients-docker
  export DOCKER_HOST=unix://$DOCKER_DIR/docker.sock DOCKER_IMG=capsa-clients-busybox:latest
  export DOCKER_CONFIG=$DOCKER_DIR/client   # the client's config, not ~/.docker
  mkdir -p "$DOCKER_DIR/client"
  echo '{}' >"$DOCKER_DIR/client/config.json"   # buildah reads it too
  echo '{}' >"$DOCKER_DIR/daemon.json"
  local rt args=()
  for rt in "${RUNTIME_PATHS[@]}"; do
    [ "$(basename "$rt")" = runc ] || args+=(--add-runtime "$(basename "$rt")=$rt")
  done
  echo "# docker: starting dockerd, importing the image"
  dockerd --data-root "$DOCKER_DIR/root" --exec-root "$DOCKER_EXEC" --pidfile "$DOCKER_DIR/pid" \
    -H "$DOCKER_HOST" --config-file "$DOCKER_DIR/daemon.json" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    --exec-opt native.cgroupdriver=cgroupfs --containerd-namespace "$DOCKER_NS" \
    --containerd-plugins-namespace "$DOCKER_NS-plugins" "${args[@]}" >"$WORK/logs/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 300); do "$DOCKER" version >/dev/null 2>&1 && break; sleep 0.1; done
  "$DOCKER" version >/dev/null 2>&1 || { echo "dockerd did not start:"; tail "$WORK/logs/dockerd.log"; exit 1; }
  "$DOCKER" import "$WORK/busybox.tar" "$DOCKER_IMG" >/dev/null ||
    { echo "docker import failed" >&2; exit 1; }
}
