# buildah 1.28 with OCI isolation (it runs the runtime itself: create --bundle
# ... --pid-file ..., start, then delete) driving the runtime under test.
# Sourced by run.sh and by each test process. Environment from run.sh: RT
# RTLABEL RTKIND STATE_ROOT WORK CLIENTS_DIR IMG BUILDAH_ROOT BUILDAH_RUNROOT
# BUILDAH_TMPDIR (its TMPDIR: the bundles go there).
#
# Its own storage (--root/--runroot under the work dir; podman's is untouched),
# the busybox image pulled from podman's `save --format oci-archive`; no
# network (--network none). buildah passes no --root and no cgroupsPath: the
# runtime keeps its state in its default root and picks the cgroup (runc:
# /<id>, capsa: /capsa/<id>); buildah's container ids are buildah-buildahNNN.

bld() {
  TMPDIR=$BUILDAH_TMPDIR buildah --root "$BUILDAH_ROOT" --runroot "$BUILDAH_RUNROOT" --storage-driver overlay "$@"
}

b_leftovers() {
  ls "$STATE_ROOT" 2>/dev/null | grep '^buildah-buildah' | sed "s|^|state dir: $STATE_ROOT/|" || true
  ls -d /sys/fs/cgroup/*/buildah-buildah* /sys/fs/cgroup/*/*/buildah-buildah* 2>/dev/null | sed 's/^/cgroup: /' || true
  grep -F "$BUILDAH_TMPDIR/buildah" /proc/self/mountinfo | sed 's/^/mount: /' || true
  pgrep -af "^$RT .*buildah-buildah" | sed 's/^/process: /' || true
}

expect_no_leftovers() { expect_clean "a buildah container" b_leftovers; }

# The committed image has /built: read it from a mount of a new working
# container (no runtime involved).
expect_built_file() { # IMAGE
  local c m
  c=$(bld from --pull-never "$1")
  cleanup_later bld rm "$c"
  m=$(bld mount "$c")
  expect_eq "$(cat "$m/built")" hi "/built in the committed image $1"
  bld umount "$c" >/dev/null
  bld rm "$c" >/dev/null
}

# buildah bud --isolation oci: a Containerfile with a RUN step.
b_bud_run() {
  local ctx=$WORK/buildah-ctx-$RTLABEL img=localhost/capsa-clients-built-$RTLABEL:latest
  mkdir -p "$ctx"
  printf 'FROM %s\nRUN echo hi > /built && cat /built\n' "$IMG" >"$ctx/Containerfile"
  cleanup_later bld rmi -f "$img"
  expect_rc 0 bld bud --isolation oci --runtime "$RT" --network none --pull-never -t "$img" "$ctx"
  expect_contains "$OUT" "STEP 2/2: RUN echo hi > /built && cat /built"$'\n'"hi" "build output"
  expect_built_file "$img"
  expect_rc 0 bld containers -q
  expect_eq "$OUT" "" "working containers after the build"
  expect_no_leftovers
}

# A failing RUN step fails the build (buildah exits with the step's status).
b_bud_run_fails() {
  local ctx=$WORK/buildah-ctx-fail-$RTLABEL img=localhost/capsa-clients-fail-$RTLABEL:latest
  mkdir -p "$ctx"
  printf 'FROM %s\nRUN echo before; exit 7\nRUN echo not-reached\n' "$IMG" >"$ctx/Containerfile"
  expect_rc 7 bld bud --isolation oci --runtime "$RT" --network none --pull-never -t "$img" "$ctx"
  expect_contains "$OUT" before "build output"
  expect_not_contains "$OUT" not-reached "build output"
  expect_contains "$ERR" 'building at STEP "RUN echo before; exit 7": while running runtime: exit status 7' "build error"
  expect_rc 125 bld inspect --type image "$img"
  expect_contains "$ERR" "image not known" "the image of the failed build"
  expect_no_leftovers
}

# buildah from + run + commit, by hand (BUILDAH_RUNTIME instead of --runtime).
b_run_commit() {
  local c img=localhost/capsa-clients-run-$RTLABEL:latest
  c=$(bld from --pull-never --name "bld-$RTLABEL" "$IMG")
  cleanup_later bld rm "$c"
  cleanup_later bld rmi -f "$img"
  export BUILDAH_RUNTIME=$RT
  expect_rc 0 bld run --network none "$c" sh -c 'echo hi > /built && cat /built; echo to-stderr >&2'
  expect_eq "$OUT" hi stdout
  expect_contains "$ERR" to-stderr stderr
  expect_rc 0 bld run --network none --user 1000 --workingdir /tmp "$c" sh -c 'id -u; pwd'
  expect_eq "$OUT" "1000"$'\n'"/tmp" "run --user --workingdir"
  expect_rc 3 bld run --network none "$c" sh -c 'exit 3'
  expect_rc 1 bld run --network none "$c" /no/such/binary
  expect_contains "$ERR" "no such file or directory" "the runtime's error"
  expect_rc 0 bld commit "$c" "$img"
  expect_built_file "$img"
  expect_no_leftovers
}

buildah_suite() {
  export SUITE_FILE=buildah.sh
  t "buildah bud --isolation oci: RUN step, /built in the image" b_bud_run
  t "buildah bud: a failing RUN step fails the build" b_bud_run_fails
  t "buildah from/run/commit (BUILDAH_RUNTIME, --user --workingdir, exit codes, errors)" b_run_commit
}

# ------------------------------------------------ setup (run.sh, main shell)
bld_all() { bld "$@"; }
buildah_setup() {
  need_packages buildah
  export BUILDAH_ROOT=$WORK/buildah/root BUILDAH_RUNROOT=$WORK/buildah/runroot BUILDAH_TMPDIR=$WORK/buildah/tmp
  mkdir -p "$BUILDAH_TMPDIR"
  echo "# buildah: pulling the image from podman's OCI archive into its own storage"
  bld pull "oci-archive:$WORK/busybox-oci.tar" >/dev/null 2>&1 || { echo "buildah pull failed" >&2; exit 1; }
}
