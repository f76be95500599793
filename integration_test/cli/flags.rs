//! Go-`flag` spellings of options (single dash, `=`, bool values), and the options
//! capsa refuses by name.

use std::fs;

use capsa_integration_test::{capsa_only, path_str, pid_alive, read_pid_file, state_pid, Ctx};
use serde_json::Value;

use crate::log_file::{check_json_error_line, single_log_line};
use crate::raw;

/// `--root=<dir>`, `-root <dir>`, `--log-format=json`, `create --bundle=… --pid-file=…`,
/// `kill -a <id> 9` and `delete -f <id>`, end to end.
#[test]
fn go_flag_spellings_single_dash_and_equals() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("goflags1");
    let root = path_str(ctx.root()).to_string();
    let root_eq = format!("--root={root}");
    let pid_file = ctx.base().join("init.pid");
    let log = ctx.base().join("log.json");
    let log_eq = format!("--log={}", path_str(&log));

    // containerd/conmon: create --bundle=<b> --pid-file=<p> <id>, here with -root <dir>.
    let bundle_eq = format!("--bundle={}", b.path_str());
    let pid_eq = format!("--pid-file={}", path_str(&pid_file));
    raw(&["-root", &root, "create", &bundle_eq, &pid_eq, &id], None).assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "init {pid} is not alive");
    assert_eq!(ctx.status(&id), "created");

    // CRI-O: --root=<dir>; podman: --log-format=json.
    raw(
        &[&root_eq, &log_eq, "--log-format=json", "start", &id],
        None,
    )
    .assert_silent_success();
    let out = raw(&[&root_eq, "--log-format=json", "state", &id], None);
    out.assert_success();
    assert!(out.stderr.is_empty(), "state wrote to stderr:\n{out}");
    let st: Value = serde_json::from_str(&out.stdout).expect("state JSON");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(state_pid(&st), pid);

    // A failing call with --log-format=json still writes one JSON error line.
    let missing = format!("{id}-missing");
    let out = raw(
        &[
            "-root",
            &root,
            &log_eq,
            "--log-format=json",
            "state",
            &missing,
        ],
        None,
    );
    out.assert_error_mentions("does not exist");
    check_json_error_line(&single_log_line(&log, &out), "does not exist");

    // CRI-O: kill -a <id> <signum>.
    raw(&[&root_eq, "kill", "-a", &id, "9"], None).assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    assert!(!pid_alive(pid), "init {pid} survived kill -a 9");

    raw(&[&root_eq, "delete", "-f", &id], None).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// `kill --all=true <id> KILL` and `delete --force=true <id>` (of a running container).
#[test]
fn go_flag_spellings_bool_values() {
    let ctx = Ctx::new();
    let root_eq = format!("--root={}", path_str(ctx.root()));

    let (id, b) = ctx.sleeper("goflags2");
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));
    raw(&[&root_eq, "kill", "--all=true", &id, "KILL"], None).assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    assert!(!pid_alive(pid), "init {pid} survived kill --all=true KILL");
    raw(&[&root_eq, "delete", "--force=true", &id], None).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);

    // delete --force=true / -f on a running container kills it.
    for force in ["--force=true", "-f"] {
        let (id, b) = ctx.sleeper("goflags3");
        ctx.create_and_start(&b, &id);
        let pid = state_pid(&ctx.state(&id));
        raw(&[&root_eq, "delete", force, &id], None).assert_silent_success();
        assert!(!pid_alive(pid), "init {pid} survived delete {force}");
        ctx.assert_nothing_left(&id, &b);
    }
}

#[test]
fn checkpoint_help_says_unsupported() {
    if !capsa_only("`checkpoint --help` exits non-zero (podman's probe; capsa has no checkpoint)") {
        return;
    }
    let out = raw(&["checkpoint", "--help"], None);
    assert!(
        !out.success() && out.code().is_some(),
        "podman probes checkpoint support with `checkpoint --help`: it must fail:\n{out}"
    );
}

#[test]
fn exec_refuses_unsupported_flags_by_name() {
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("exec");
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));

    // What containerd and conmon send, plus a sub-cgroup that does not exist: every
    // runtime fails (neither finds such a sub-cgroup), and a failed exec writes no pid
    // file and leaves the container as it was.
    let process = ctx.base().join("process.json");
    fs::write(
        &process,
        serde_json::to_string(&b.config()["process"]).expect("process JSON"),
    )
    .expect("write process.json");
    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--cgroup",
        "no-such-sub-cgroup",
        "--process",
        path_str(&process),
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
    ]);
    let line = out.assert_error_line();
    if capsa_only("capsa's error names the missing sub-cgroup") {
        assert!(
            line.contains("no-such-sub-cgroup"),
            "the error should name the sub-cgroup:\n{out}"
        );
    }
    assert!(!pid_file.exists(), "a refused exec wrote the pid file");

    // The other exec flags capsa does not implement are refused by name, not ignored.
    if capsa_only("exec --apparmor and --process-label are refused by name") {
        for (flag, value) in [
            ("--apparmor", "unconfined"),
            ("--process-label", "system_u:system_r:container_t:s0"),
        ] {
            let out = ctx.cmd(&["exec", flag, value, &id, "true"]);
            let line = out.assert_error_line();
            assert!(line.contains(flag), "the error should name {flag}:\n{out}");
        }
    }
    // --pidfd-socket (runc 1.2; capsa has it): one message with one fd, a pidfd of
    // the exec'd process.
    if capsa_only("exec --pidfd-socket sends a pidfd (runc 1.1.5 has no such flag)") {
        let socket = capsa_integration_test::ConsoleSocket::bind(ctx.base().join("pidfd.sock"));
        let out = ctx.cmd(&[
            "exec",
            "--detach",
            "--pidfd-socket",
            socket.path_str(),
            &id,
            "sleep",
            "1",
        ]);
        out.assert_silent_success();
        let got = socket.recv_master(std::time::Duration::from_secs(10));
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&got.master)
        ))
        .expect("readlink of the received fd");
        assert!(
            link.to_string_lossy().contains("pidfd"),
            "not a pidfd: {link:?}"
        );
    }

    // Nothing ran: the exec that works still does, and only the init is left.
    let ok = ctx.cmd(&["exec", &id, "true"]);
    ok.assert_success();
    let st = ctx.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(state_pid(&st), pid);
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
