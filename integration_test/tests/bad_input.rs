//! Bad input: each case must exit non-zero with exactly one error line on stderr and
//! nothing on stdout, and leave nothing behind (no state dir, cgroup, mount, process,
//! pid file). Wording that only capsa promises is checked under `capsa_only`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use capsa_integration_test::{
    capsa_only, mountinfo, pid_alive, read_pid_file, runc_deviates, state_pid, Bundle, Ctx,
};
use serde_json::json;

/// `create --pid-file` must fail cleanly; returns the error line.
fn create_fails(ctx: &Ctx, b: &Bundle, id: &str) -> String {
    let pid_file = ctx.base().join("init.pid");
    let out = ctx.create_with_pid_file(b, id, &pid_file);
    let line = out.assert_error_line();
    assert!(
        !pid_file.exists(),
        "a failed create must not write the pid file:\n{out}"
    );
    ctx.assert_nothing_left(id, b);
    line
}

#[test]
fn config_json_that_is_not_json() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("notjson");
    // A trailing comma on line 2.
    b.write_raw_config("{\"ociVersion\": \"1.0.2\",\n  \"process\": {\"args\": [\"sh\"],}\n}\n");
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("a JSON syntax error names config.json, the line and the column") {
        assert!(line.contains("config.json"), "{line}");
        assert!(line.contains("line 2"), "{line}");
        assert!(line.contains("column"), "{line}");
    }
}

#[test]
fn config_json_with_a_wrong_type() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("wrongtype");
    b.edit(|c| c["process"]["args"] = json!("sh"));
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("a type error names the JSON path process.args") {
        assert!(line.contains("process.args"), "{line}");
    }
}

#[test]
fn unknown_namespace_type() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("badns");
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "foo" }))
    });
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("an unknown namespace names linux.namespaces") {
        assert!(line.contains("linux.namespaces"), "{line}");
    }
}

#[test]
fn missing_config_json() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("noconfig");
    fs::remove_file(b.config_path()).expect("remove config.json");
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("config.json"),
        "the error should name config.json: {line}"
    );
}

#[test]
fn missing_rootfs_directory() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("norootfs");
    fs::remove_dir_all(b.rootfs()).expect("remove rootfs");
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("rootfs"),
        "the error should name the rootfs: {line}"
    );
}

#[test]
fn empty_process_args() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("noargs");
    b.args(&[]);
    let line = create_fails(&ctx, &b, &id);
    assert!(line.contains("args"), "the error should name args: {line}");
}

#[test]
fn ids_that_are_not_plain_names() {
    for bad in ["..", "a/b", "", "a b", "."] {
        let ctx = Ctx::new();
        // `<root>/..` is this test's own directory: a sentinel shows it was not touched.
        let sentinel = ctx.base().join("sentinel");
        fs::write(&sentinel, "keep").expect("write sentinel");
        let label = ctx.new_id("badid");
        let mut b = Bundle::new(&label);
        b.args(&["sleep", "1000"]);

        create_fails(&ctx, &b, bad);
        ctx.assert_nothing_left(&label, &b);
        for args in [
            &["state", bad][..],
            &["start", bad][..],
            &["kill", bad, "KILL"][..],
            &["delete", bad][..],
            &["delete", "--force", bad][..],
        ] {
            ctx.cmd(args).assert_error_line();
        }
        assert_eq!(
            fs::read_to_string(&sentinel).ok().as_deref(),
            Some("keep"),
            "id {bad:?} reached outside the state root"
        );
        let mut left: Vec<String> = fs::read_dir(ctx.base())
            .expect("read base dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["root", "sentinel"],
            "id {bad:?} changed {}",
            ctx.base().display()
        );
        assert_eq!(
            fs::read_dir(ctx.root()).expect("root still exists").count(),
            0,
            "id {bad:?} left state behind"
        );
    }
}

#[test]
fn unknown_id_for_state_start_kill_delete() {
    let ctx = Ctx::new();
    let id = ctx.new_id("unknown");
    for args in [
        &["state", id.as_str()][..],
        &["start", id.as_str()][..],
        &["kill", id.as_str(), "KILL"][..],
        &["delete", id.as_str()][..],
    ] {
        // containerd and podman match this wording.
        ctx.cmd(args).assert_error_mentions("does not exist");
    }
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

#[test]
fn bad_signals_are_refused_and_change_nothing() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("badsig");
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    // runc: `unknown signal "SIGFOO"`; `unable to signal init: invalid argument`.
    for sig in ["SIGFOO", "99999", "foo", "-9"] {
        ctx.kill(&id, sig).assert_error_line();
        let st = ctx.state(&id);
        assert_eq!(
            st["status"], "created",
            "kill {sig:?} changed the container: {st}"
        );
        assert_eq!(state_pid(&st), pid);
        assert!(pid_alive(pid), "kill {sig:?} killed init");
    }
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn executable_not_found_by_absolute_path() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("noexecabs");
    b.args(&["/nonexistent"]);
    // podman maps this wording to exit code 127.
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.to_lowercase().contains("no such file or directory"),
        "{line}"
    );
}

#[test]
fn executable_not_found_in_path() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("noexecpath");
    b.args(&["nosuchcmd"]);
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("executable file not found in $PATH"),
        "{line}"
    );
}

#[test]
fn starting_twice_fails_the_second_time() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("starttwice");
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));
    // runc: "cannot start an already running container"
    ctx.start(&id).assert_error_line();
    let st = ctx.state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(state_pid(&st), pid, "a refused start changed the container");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn start_of_a_stopped_container_fails() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("startstopped");
    b.args(&["true"]);
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");
    // runc: "cannot start a container that has stopped"
    ctx.start(&id).assert_error_line();
    assert_eq!(ctx.status(&id), "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// The host's mounts outside temp dirs (where tests legitimately work), and its
/// hostname: what a runtime confused by a symlinked rootfs could damage.
fn host_snapshot() -> (BTreeSet<String>, String) {
    let tmp = std::env::temp_dir();
    let mounts = mountinfo()
        .into_iter()
        .filter(|m| !m.mount_point.starts_with(&tmp))
        .map(|m| m.line)
        .collect();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    (mounts, hostname)
}

fn assert_host_untouched(before: &(BTreeSet<String>, String)) {
    let after = host_snapshot();
    let added: Vec<_> = after.0.difference(&before.0).collect();
    let removed: Vec<_> = before.0.difference(&after.0).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "host mounts changed: added {added:#?}, removed {removed:#?}"
    );
    assert_eq!(after.1, before.1, "host hostname changed");
}

#[test]
fn rootfs_that_is_a_symlink_to_the_host_root() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("rootfslink");
    fs::remove_dir_all(b.rootfs()).expect("remove rootfs");
    symlink("/", b.rootfs()).expect("symlink rootfs -> /");
    let before = host_snapshot();
    // runc: "invalid rootfs: not an absolute path, or a symlink"
    create_fails(&ctx, &b, &id);
    assert_host_untouched(&before);
    assert!(Path::new("/proc/self").exists(), "host /proc is gone");
}

#[test]
fn rootfs_proc_that_is_a_symlink_to_a_host_dir() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("proclink");
    let target = tempfile::Builder::new()
        .prefix("capsa-it-proc-target-")
        .tempdir()
        .expect("host target dir");
    fs::remove_dir_all(b.rootfs().join("proc")).expect("remove rootfs/proc");
    symlink(target.path(), b.rootfs().join("proc")).expect("symlink rootfs/proc");
    let before = host_snapshot();
    // runc: `error mounting "proc" to rootfs at "/proc": filesystem "proc" must be
    // mounted on ordinary directory`
    create_fails(&ctx, &b, &id);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        fs::read_dir(target.path())
            .expect("host target still exists")
            .count(),
        0,
        "something was mounted or written over the host directory {}",
        target.path().display()
    );
    assert!(
        !mountinfo().iter().any(|m| m.mount_point == target.path()),
        "a mount landed on the host directory"
    );
    assert_host_untouched(&before);
}

#[test]
fn unknown_rlimit_type() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("badrlimit");
    b.edit(|c| {
        c["process"]["rlimits"]
            .as_array_mut()
            .expect("rlimits")
            .push(json!({ "type": "RLIMIT_FOO", "soft": 1, "hard": 1 }))
    });
    // runc: "wrong rlimit value: RLIMIT_FOO"
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("RLIMIT_FOO"),
        "the error should name it: {line}"
    );
}

#[test]
fn unknown_capability() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("badcap");
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("capability set")
                .push(json!("CAP_FOO"));
        }
    });
    if runc_deviates(
        "an unknown capability must be refused at create (spec v1.0.2: values that cannot \
         be mapped to a kernel interface MUST cause an error); runc 1.1.5 ignores it with a \
         warning",
    ) {
        let out = ctx.create(&b, &id);
        out.assert_success();
        ctx.delete_force(&id).assert_silent_success();
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    let line = create_fails(&ctx, &b, &id);
    assert!(line.contains("CAP_FOO"), "the error should name it: {line}");
}

/// `process` is optional in config.json but required by `start`: create succeeds, start
/// fails with an error line and changes nothing, delete removes the container.
#[test]
fn start_without_a_process() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("noprocess");
    b.edit(|c| {
        c.as_object_mut().expect("config object").remove("process");
    });
    let create = ctx.create(&b, &id);
    if runc_deviates(
        "process is optional in config.json (required only at start), so create must \
         succeed; runc 1.1.5 refuses the create",
    ) {
        create.assert_error_line();
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    create.assert_silent_success();
    let st = ctx.state(&id);
    assert_eq!(st["status"], "created", "state after create: {st}");
    let pid = state_pid(&st);
    let line = ctx.start(&id).assert_error_line();
    if capsa_only("the error says there is no process") {
        assert!(line.contains("process"), "{line}");
    }
    let st = ctx.state(&id);
    assert_eq!(
        st["status"], "created",
        "a refused start changed the container: {st}"
    );
    assert_eq!(state_pid(&st), pid);
    assert!(pid_alive(pid), "a refused start killed init {pid}");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
