//! What the exec'd process gets: its output and exit status, args, env, cwd, user and
//! groups from a process file or flags, capabilities, no_new_privs.

use std::collections::BTreeSet;
use std::fs;

use capsa_integration_test::{path_str, pid_alive, read_pid_file, Ctx, CONTAINER_PATH};
use serde_json::json;

use crate::{
    cap_bit, cgroup_procs, exec, exec_ok, exec_sh, exec_with, field, finish_running, running,
    CAP_NET_ADMIN,
};

#[test]
fn exec_prints_output_and_exits_with_the_process_status() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-status");

    let out = exec(&ctx, &id, &["echo", "hello", "from exec"]);
    out.assert_success();
    assert_eq!(out.stdout, "hello from exec\n", "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    // The process's stderr is the runtime's stderr.
    let out = exec_sh(&ctx, &id, &[], "echo to-stderr >&2; exit 7");
    assert_eq!(
        out.code(),
        Some(7),
        "exec must exit with the process's status:\n{out}"
    );
    assert_eq!(out.stderr, "to-stderr\n", "{out}");

    let out = exec_sh(&ctx, &id, &[], "kill -9 $$");
    assert_eq!(
        out.code(),
        Some(128 + 9),
        "a process killed by SIGKILL gives exit status 128+9:\n{out}"
    );

    finish_running(&ctx, &id, &b, init);
}

#[test]
fn exec_process_file_gives_args_env_cwd_and_user() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-procfile");
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [5] },
        "args": ["sh", "-c",
                 "echo args=$0:$1; echo foo=$FOO; echo cwd=$(pwd); echo uid=$(id -u); \
                  echo gid=$(id -g); echo groups=$(id -G)", "first", "second"],
        "env": [format!("PATH={CONTAINER_PATH}"), "FOO=from-the-file", b.marker_env()],
        "cwd": "/tmp",
        "noNewPrivileges": true
    });
    let file = ctx.base().join("process.json");
    fs::write(&file, process.to_string()).expect("write process.json");

    let out = ctx.cmd(&["exec", "--process", path_str(&file), &id]);
    out.assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    let text = &out.stdout;
    assert_eq!(field(text, "args"), Some("first:second"), "{out}");
    assert_eq!(field(text, "foo"), Some("from-the-file"), "{out}");
    assert_eq!(field(text, "cwd"), Some("/tmp"), "{out}");
    assert_eq!(field(text, "uid"), Some("1000"), "{out}");
    assert_eq!(field(text, "gid"), Some("1000"), "{out}");
    let groups: BTreeSet<&str> = field(text, "groups")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(groups.contains("5"), "additionalGids 5 missing:\n{out}");

    // containerd's form: --process with --detach and --pid-file.
    let pid_file = ctx.base().join("exec.pid");
    let mut detached = process.clone();
    detached["args"] = json!(["sleep", "1000"]);
    fs::write(&file, detached.to_string()).expect("write process.json");
    ctx.cmd(&[
        "exec",
        "--process",
        path_str(&file),
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the detached process {pid} is not running");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("1000")),
        "the --process user is not applied:\n{status}"
    );
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    ctx.finish(&id, &b);
    assert!(
        !pid_alive(pid),
        "delete --force left the exec'd process {pid}"
    );
}

#[test]
fn exec_env_cwd_user_and_groups_flags() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-flags");

    // -e adds a variable and replaces one of the container's; the rest of the container's
    // environment stays.
    let text = exec_ok(
        &ctx,
        &id,
        &["-e", "FOO=bar", "-e", "PATH=/bin"],
        "echo foo=$FOO; echo path=$PATH; echo marker=$CAPSA_TEST_MARKER",
    );
    assert_eq!(field(&text, "foo"), Some("bar"), "{text}");
    assert_eq!(field(&text, "path"), Some("/bin"), "{text}");
    assert_eq!(field(&text, "marker"), Some(b.marker()), "{text}");

    // Default: the container's cwd and user.
    let text = exec_ok(&ctx, &id, &[], "echo cwd=$(pwd); echo id=$(id -u):$(id -g)");
    assert_eq!(field(&text, "cwd"), Some("/"), "{text}");
    assert_eq!(field(&text, "id"), Some("0:0"), "{text}");

    let text = exec_ok(&ctx, &id, &["--cwd", "/tmp"], "echo cwd=$(pwd)");
    assert_eq!(field(&text, "cwd"), Some("/tmp"), "{text}");

    let text = exec_ok(
        &ctx,
        &id,
        &["-u", "1000:1000", "-g", "5", "-g", "6"],
        "echo id=$(id -u):$(id -g); echo groups=$(id -G)",
    );
    assert_eq!(field(&text, "id"), Some("1000:1000"), "{text}");
    let groups: BTreeSet<&str> = field(&text, "groups")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        groups.contains("5") && groups.contains("6"),
        "-g 5 -g 6 should be supplementary groups:\n{text}"
    );

    // -u uid alone.
    let text = exec_ok(&ctx, &id, &["--user", "1000"], "echo uid=$(id -u)");
    assert_eq!(field(&text, "uid"), Some("1000"), "{text}");

    ctx.finish(&id, &b);
}

#[test]
fn exec_cap_adds_a_capability() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-cap");

    let plain = exec(&ctx, &id, &["cat", "/proc/self/status"]);
    plain.assert_success();
    assert!(
        !cap_bit(&plain.stdout, "CapEff", CAP_NET_ADMIN),
        "the container's process has no CAP_NET_ADMIN, nor should a plain exec:\n{plain}"
    );

    let out = exec_with(
        &ctx,
        &["--cap", "CAP_NET_ADMIN"],
        &id,
        &["cat", "/proc/self/status"],
    );
    out.assert_success();
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            cap_bit(&out.stdout, set, CAP_NET_ADMIN),
            "--cap CAP_NET_ADMIN should be in {set}:\n{out}"
        );
    }
    // What the default config grants stays (CAP_KILL is bit 5).
    assert!(cap_bit(&out.stdout, "CapEff", 5), "{out}");

    ctx.finish(&id, &b);
}

#[test]
fn exec_no_new_privs_flag() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("exec-nnp");
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    ctx.create_and_start(&b, &id);

    let nnp = |flags: &[&str]| {
        let out = exec_with(
            &ctx,
            flags,
            &id,
            &["grep", "NoNewPrivs", "/proc/self/status"],
        );
        out.assert_success();
        out.stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no NoNewPrivs line:\n{out}"))
            .to_string()
    };
    assert_eq!(
        nnp(&[]),
        "0",
        "the container has noNewPrivileges false, so a plain exec has no_new_privs off"
    );
    assert_eq!(nnp(&["--no-new-privs"]), "1", "--no-new-privs sets it");

    ctx.finish(&id, &b);
}
