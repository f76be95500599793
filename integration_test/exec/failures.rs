//! exec that cannot run: a missing program, a stopped or unknown container.

use std::fs;

use capsa_integration_test::{path_str, Ctx};

use crate::{assert_only_init_runs, exec, finish_running, running};

#[test]
fn exec_of_a_missing_program_fails_with_one_line() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-nosuch");

    let out = exec(&ctx, &id, &["nosuchcmd"]);
    out.assert_error_mentions("executable file not found in $PATH");
    assert_only_init_runs(&b, init);

    // Detached, as containerd and conmon run it: no pid file on failure.
    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "nosuchcmd",
    ]);
    out.assert_error_mentions("executable file not found in $PATH");
    assert!(!pid_file.exists(), "a failed exec wrote the pid file");
    finish_running(&ctx, &id, &b, init);
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let ctx = Ctx::new();
    let (id, b) = ctx.id_and_bundle("exec-stopped");
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");

    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "true",
    ]);
    let line = out.assert_error_line().to_lowercase();
    assert!(
        line.contains("stopped") || line.contains("not running"),
        "the error should say the container is stopped / not running:\n{out}"
    );
    assert!(!pid_file.exists(), "a failed exec wrote the pid file");
    assert_eq!(ctx.status(&id), "stopped");

    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn exec_into_an_unknown_container_fails() {
    let ctx = Ctx::new();
    let id = ctx.new_id("exec-unknown");
    let out = exec(&ctx, &id, &["true"]);
    out.assert_error_mentions("does not exist");
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}
