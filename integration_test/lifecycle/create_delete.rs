//! create, state, start, kill and delete of one container, the pid file, and an id
//! that is taken already.

use std::fs;
use std::path::Path;
use std::time::Duration;

use capsa_integration_test::{
    cgroup_dirs, ns_of, pid_alive, proc_cgroups, read_pid_file, state_pid, wait_for_file, Bundle,
    Ctx,
};

use crate::{assert_state, WAIT};

#[test]
fn create_state_start_kill_delete() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("life");
    let out = b.with_out_dir();
    b.sh("echo started > /out/started; exec sleep 1000");
    let pid_file = ctx.base().join("init.pid");

    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();

    // The pid file: decimal, no newline, a live process.
    let pid = read_pid_file(&pid_file);
    assert!(
        pid_alive(pid),
        "init pid {pid} from the pid file is not alive"
    );

    // Placed in /capsa-test/<id> in every v1 hierarchy before create returns.
    let v1: Vec<_> = proc_cgroups(pid)
        .into_iter()
        .filter(|c| c.hierarchy != 0)
        .collect();
    assert!(!v1.is_empty(), "no v1 cgroup lines for pid {pid}");
    for c in &v1 {
        assert_eq!(
            c.path,
            b.cgroup_path(),
            "init is not in the container cgroup of hierarchy {}:{}",
            c.hierarchy,
            c.controllers
        );
    }
    for dir in cgroup_dirs(b.cgroup_path()) {
        if dir.starts_with("/sys/fs/cgroup/unified") {
            continue; // v1 controllers are what hybrid mode requires
        }
        assert!(dir.is_dir(), "cgroup {} was not created", dir.display());
    }

    // In its own namespaces.
    let p = pid.to_string();
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(
            ns_of(&p, ns),
            ns_of("self", ns),
            "init shares the host's {ns} namespace"
        );
    }

    // The user program must not run before start.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !out.join("started").exists(),
        "the user program ran before start"
    );

    let st = ctx.state(&id);
    assert_state(&st, &id, &b, "created");
    assert_eq!(state_pid(&st), pid, "state pid differs from the pid file");

    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("started"), WAIT);
    let st = ctx.state(&id);
    assert_state(&st, &id, &b, "running");
    assert_eq!(state_pid(&st), pid, "pid changed across start");

    ctx.kill(&id, "KILL").assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    let st = ctx.state(&id);
    assert_state(&st, &id, &b, "stopped");
    // runc 1.1.5 reports pid 0 once the container has stopped (containerd reads it).
    assert_eq!(st["pid"], 0, "a stopped container reports pid 0: {st}");
    assert!(!pid_alive(pid), "init {pid} still alive after SIGKILL");

    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
    ctx.cmd(&["state", &id])
        .assert_error_mentions("does not exist");
}

#[test]
fn kill_accepts_every_signal_form() {
    let ctx = Ctx::new();
    for sig in ["9", "KILL", "SIGKILL", "sigkill"] {
        let (id, mut b) = ctx.id_and_bundle("killform");
        b.args(&["sleep", "1000"]);
        ctx.create_and_start(&b, &id);
        ctx.wait_for_status(&id, "running");
        let out = ctx.kill(&id, sig);
        assert!(out.success(), "kill with signal {sig:?} failed:\n{out}");
        out.assert_silent_success();
        ctx.wait_for_status(&id, "stopped");
        ctx.delete(&id).assert_silent_success();
        ctx.assert_nothing_left(&id, &b);
    }
}

#[test]
fn kill_without_signal_sends_sigterm() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("killterm");
    let out = b.with_out_dir();
    // pid 1 of a pid namespace only gets signals it has a handler for: the trap proves
    // TERM arrived (SIGKILL would leave no file).
    b.sh(
        "trap 'echo TERM > /out/got; exit 0' TERM; touch /out/ready; \
         while :; do sleep 0.1; done",
    );
    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("ready"), WAIT);
    ctx.cmd(&["kill", &id]).assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    assert_eq!(
        fs::read_to_string(out.join("got"))
            .unwrap_or_default()
            .trim(),
        "TERM",
        "the container did not see SIGTERM"
    );
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_kills_a_running_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("delforce");
    b.args(&["sleep", "1000"]);
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    ctx.start(&id).assert_silent_success();
    ctx.wait_for_status(&id, "running");
    ctx.delete_force(&id).assert_silent_success();
    assert!(!pid_alive(pid), "init {pid} survived delete --force");
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_of_a_created_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("delcreated");
    b.args(&["sleep", "1000"]);
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "init {pid} is not alive after create");
    assert_eq!(ctx.status(&id), "created");
    ctx.delete_force(&id).assert_silent_success();
    assert!(!pid_alive(pid), "init {pid} survived delete --force");
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn delete_without_force_refuses_a_running_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("delrunning");
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "running");
    // runc: "cannot delete container <id> that is not stopped: running"
    ctx.delete(&id).assert_error_line();
    assert_eq!(
        ctx.status(&id),
        "running",
        "a refused delete changed the container"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_of_an_unknown_id_succeeds() {
    let ctx = Ctx::new();
    // A bystander in the same state root must not be touched.
    let (other, mut b) = ctx.id_and_bundle("bystander");
    b.args(&["sleep", "1000"]);
    ctx.create(&b, &other).assert_silent_success();
    let pid = state_pid(&ctx.state(&other));

    let id = ctx.new_id("nosuch");
    // Callers run it blindly during cleanup, so it must exit 0.
    ctx.delete_force(&id).assert_silent_success();
    assert!(
        !ctx.root().join(&id).exists(),
        "delete --force of an unknown id created state"
    );
    assert_eq!(ctx.status(&other), "created", "the bystander changed");
    assert!(pid_alive(pid), "the bystander's init died");

    ctx.delete_force(&other).assert_silent_success();
    ctx.assert_nothing_left(&other, &b);
}

#[test]
fn kill_of_a_stopped_container_fails() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("killstopped");
    b.args(&["true"]);
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");
    for sig in ["KILL", "TERM"] {
        // containerd and CRI-O match this wording.
        ctx.kill(&id, sig)
            .assert_error_mentions("container not running");
    }
    assert_eq!(ctx.status(&id), "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn creating_an_existing_id_fails_and_keeps_the_first() {
    let ctx = Ctx::new();
    let (id, mut first) = ctx.id_and_bundle("dupid");
    first.args(&["sleep", "1000"]);
    let pf1 = ctx.base().join("first.pid");
    ctx.create_with_pid_file(&first, &id, &pf1)
        .assert_silent_success();
    let pid = read_pid_file(&pf1);

    // Same id, same cgroup path: a careless rollback would tear down the first one.
    let mut second = Bundle::new(&id);
    second.args(&["sleep", "1000"]);
    let pf2 = ctx.base().join("second.pid");
    ctx.create_with_pid_file(&second, &id, &pf2)
        .assert_error_line();
    assert!(!pf2.exists(), "a failed create wrote its pid file");

    let st = ctx.state(&id);
    assert_state(&st, &id, &first, "created");
    assert_eq!(state_pid(&st), pid);
    assert!(pid_alive(pid), "the first container's init died");
    for c in proc_cgroups(pid).iter().filter(|c| c.hierarchy != 0) {
        assert_eq!(c.path, first.cgroup_path(), "first init lost its cgroup");
    }
    for dir in cgroup_dirs(first.cgroup_path()) {
        if !dir.starts_with("/sys/fs/cgroup/unified") {
            assert!(
                dir.is_dir(),
                "first container's cgroup {} is gone",
                dir.display()
            );
        }
    }

    ctx.start(&id).assert_silent_success();
    assert_eq!(ctx.status(&id), "running");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &first);
    ctx.assert_nothing_left(&id, &second);
}

/// The pid file: written by a successful create only, as the decimal init pid with no
/// newline and nothing else beside it (no temp file left over); a failed create leaves
/// no pid file at all.
#[test]
fn pid_file_is_written_on_success_only() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("pidfile");
    b.args(&["sleep", "1000"]);
    let dir = ctx.base().join("pids");
    fs::create_dir(&dir).expect("create pid file dir");
    let pid_file = dir.join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let bytes = fs::read(&pid_file).expect("read pid file");
    let pid = read_pid_file(&pid_file);
    assert_eq!(
        bytes,
        pid.to_string().into_bytes(),
        "pid file must be exactly the decimal pid"
    );
    assert_eq!(
        state_pid(&ctx.state(&id)),
        pid,
        "pid file differs from state"
    );
    assert!(pid_alive(pid), "init {pid} from the pid file is not alive");
    assert_eq!(
        dir_entries(&dir),
        ["init.pid"],
        "create left something beside the pid file"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);

    // A create that fails late (its program does not exist) writes no pid file.
    let (bad, mut bb) = ctx.id_and_bundle("pidfilefail");
    bb.args(&["/nonexistent"]);
    let failed_pid_file = dir.join("failed.pid");
    ctx.create_with_pid_file(&bb, &bad, &failed_pid_file)
        .assert_error_line();
    assert!(
        !failed_pid_file.exists(),
        "a failed create wrote its pid file"
    );
    assert_eq!(
        dir_entries(&dir),
        ["init.pid"],
        "a failed create left something in the pid file directory"
    );
    ctx.assert_nothing_left(&bad, &bb);
}

/// Sorted names of the entries of `dir`.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
