//! Hooks that fail or time out: which command fails, what is rolled back, which
//! failures are only warnings, and that poststop still runs.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use capsa_integration_test::{
    capsa_only, pid_alive, read_pid_file, runc_deviates, wait_for_file, wait_until, Bundle,
    CmdOutput, Ctx, Hook,
};
use serde_json::Value;

use crate::hooks::HOOK_TEST_PROGRAM;
use crate::WAIT;

/// A hook that fails with a message on its stderr.
fn failing_hook(b: &Bundle) -> Hook {
    Hook::sh(b, "echo hook-failed >&2; exit 3")
}

/// Adds a poststop hook that saves its state to `<out>/poststop`.
fn add_poststop_recorder(b: &mut Bundle, out: &Path) {
    let poststop = Hook::sh(b, &format!("cat > {}/poststop", out.display()));
    b.add_hook("poststop", poststop);
}

/// Asserts that the poststop recorder ran, with the container's id and "stopped".
fn assert_poststop_ran(out: &Path, id: &str, after: &str) {
    let text = fs::read_to_string(out.join("poststop")).unwrap_or_default();
    let st: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("poststop did not run (or got bad JSON: {e}: {text:?}) after {after}")
    });
    assert_eq!(st["id"], id, "poststop state id: {st}");
    assert_eq!(st["status"], "stopped", "poststop state status: {st}");
}

/// A failing createRuntime or createContainer hook fails `create` with one error line,
/// leaves nothing behind, and still runs poststop during the rollback (spec lifecycle:
/// "continue the lifecycle at step 12").
fn failing_create_hook(kind: &str) {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("hookfail");
    b.args(&["sleep", "1000"]);
    let out = b.with_out_dir();
    let failing = failing_hook(&b);
    b.add_hook(kind, failing);
    add_poststop_recorder(&mut b, &out);
    let pid_file = ctx.base().join("init.pid");

    let line = ctx
        .create_with_pid_file(&b, &id, &pid_file)
        .assert_error_line();
    if capsa_only("the error line names the failing hook and carries its output") {
        assert!(line.contains(kind), "the error should name {kind}: {line}");
        assert!(line.contains("hook-failed"), "the hook's stderr: {line}");
    }
    assert!(!pid_file.exists(), "a failed create wrote its pid file");
    ctx.assert_nothing_left(&id, &b);
    ctx.cmd(&["state", &id])
        .assert_error_mentions("does not exist");
    assert_poststop_ran(&out, &id, &format!("a failing {kind} hook"));
}

#[test]
fn failing_create_runtime_hook_fails_create() {
    failing_create_hook("createRuntime");
}

#[test]
fn failing_create_container_hook_fails_create() {
    failing_create_hook("createContainer");
}

/// A failing prestart hook fails `start` with one error line; the container is removed
/// entirely (as if never created), the program never ran, and poststop did run.
#[test]
fn failing_prestart_hook_fails_start_and_removes_the_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("prestartfail");
    let out = b.with_out_dir();
    b.sh(HOOK_TEST_PROGRAM);
    let failing = failing_hook(&b);
    b.add_hook("prestart", failing);
    add_poststop_recorder(&mut b, &out);
    let pid_file = ctx.base().join("init.pid");

    let create = ctx.create_with_pid_file(&b, &id, &pid_file);
    if runc_deviates(
        "prestart hooks run at start, so a failing one must fail start; \
         runc 1.1.5 runs them inside create and fails the create",
    ) {
        create.assert_error_line();
        assert!(!pid_file.exists(), "a failed create wrote its pid file");
    } else {
        create.assert_silent_success();
        let pid = read_pid_file(&pid_file);
        assert_eq!(ctx.status(&id), "created");
        assert!(
            !out.join("poststop").exists(),
            "poststop ran before the prestart hook failed"
        );
        let line = ctx.start(&id).assert_error_line();
        if capsa_only("the error line names the failing hook and carries its output") {
            assert!(
                line.contains("prestart"),
                "the error should name prestart: {line}"
            );
            assert!(line.contains("hook-failed"), "the hook's stderr: {line}");
        }
        ctx.cmd(&["state", &id])
            .assert_error_mentions("does not exist");
        assert!(
            !pid_alive(pid),
            "init {pid} survived a failing prestart hook"
        );
    }
    ctx.assert_nothing_left(&id, &b);
    assert!(
        !out.join("program-ran").exists(),
        "the user program ran although a prestart hook failed"
    );
    assert_poststop_ran(&out, &id, "a failing prestart hook");
}

/// A failing startContainer hook fails `start` with one error line naming it; the
/// container is then stopped (its init exited, the program never ran), and `delete`
/// removes it and runs poststop.
#[test]
fn failing_start_container_hook_fails_start() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("hookstartfail");
    let out = b.with_out_dir();
    b.sh(HOOK_TEST_PROGRAM);
    let failing = failing_hook(&b);
    b.add_hook("startContainer", failing);
    add_poststop_recorder(&mut b, &out);
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);

    let start = ctx.start(&id);
    if !runc_deviates(
        "start must fail when a startContainer hook fails; runc 1.1.5 exits 0 and the init dies",
    ) {
        let line = start.assert_error_line();
        if capsa_only("the error line names the failing startContainer hook") {
            assert!(
                line.contains("startContainer"),
                "the error should name the startContainer hook: {line}"
            );
        }
        assert_eq!(
            ctx.status(&id),
            "stopped",
            "the container must be stopped when start reports the failure"
        );
    }
    ctx.wait_for_status(&id, "stopped");
    wait_until(&format!("init {pid} to exit"), WAIT, || !pid_alive(pid));
    assert!(
        !out.join("program-ran").exists(),
        "the user program ran although a startContainer hook failed"
    );
    assert!(!out.join("poststop").exists(), "poststop ran before delete");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
    assert_poststop_ran(
        &out,
        &id,
        "delete of a container whose startContainer hook failed",
    );
}

/// The non-empty lines of a command's stderr, each asserted to be a `warning: ...`
/// line when capsa is under test (runc logs its own way).
fn warning_lines(out: &CmdOutput) -> Vec<String> {
    let lines: Vec<String> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        !lines.is_empty(),
        "a failing hook must be logged as a warning on stderr:\n{out}"
    );
    if capsa_only("warnings are `warning: ...` lines on stderr") {
        for l in &lines {
            assert!(
                l.starts_with("warning: "),
                "not a warning line: {l:?}\n{out}"
            );
        }
    }
    lines
}

/// Spec v1.0.2–v1.2.x, runtime.md lifecycle step 9: "If any poststart hook fails, the
/// runtime MUST log a warning, but the remaining hooks and lifecycle continue as if the
/// hook had succeeded." (runtime-spec v1.3.0, commit c6b3b08, switched to runc's
/// behaviour: generate an error and stop the container.)
#[test]
fn failing_poststart_hook_warns_and_the_lifecycle_continues() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("poststartfail");
    let out = b.with_out_dir();
    b.sh(HOOK_TEST_PROGRAM);
    let failing = failing_hook(&b);
    b.add_hook("poststart", failing);
    let second = Hook::sh(&b, &format!("touch {}/second-poststart", out.display()));
    b.add_hook("poststart", second);

    let create = ctx.create(&b, &id);
    if runc_deviates(
        "a failing poststart hook must only log a warning; \
         runc 1.1.5 runs poststart inside create and fails the create",
    ) {
        create.assert_error_line();
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    create.assert_silent_success();
    let start = ctx.start(&id);
    assert!(
        start.success(),
        "start must succeed despite a failing poststart hook:\n{start}"
    );
    assert!(start.stdout.is_empty(), "start wrote to stdout:\n{start}");
    let warnings = warning_lines(&start);
    assert_eq!(warnings.len(), 1, "one warning per failing hook:\n{start}");
    assert!(
        warnings[0].contains("poststart"),
        "the warning should name the poststart hook:\n{start}"
    );
    assert!(
        out.join("second-poststart").exists(),
        "the remaining poststart hooks must run"
    );
    wait_for_file(&out.join("program-ran"), WAIT);
    assert_eq!(ctx.status(&id), "running");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn hook_timeout_is_honoured() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("hooktimeout");
    b.args(&["sleep", "1000"]);
    // `exec`, so the process the runtime kills is the one holding the hook's stdio.
    let slow = Hook::sh(&b, "exec sleep 30").timeout(1);
    b.add_hook("createRuntime", slow);
    let t0 = Instant::now();
    ctx.create(&b, &id).assert_error_line();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "create took {took:?}: the 1 s hook timeout was not honoured"
    );
    // The hook carries the bundle marker: a surviving `sleep 30` is reported here.
    ctx.assert_nothing_left(&id, &b);
}

/// Spec lifecycle step 13: "If any poststop hook fails, the runtime MUST log a warning,
/// but the remaining hooks and lifecycle continue as if the hook had succeeded."
#[test]
fn failing_poststop_hook_warns_and_delete_succeeds() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("poststopfail");
    let out = b.with_out_dir();
    b.args(&["true"]);
    let failing = failing_hook(&b);
    b.add_hook("poststop", failing);
    let second = Hook::sh(&b, &format!("touch {}/second-poststop", out.display()));
    b.add_hook("poststop", second);

    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");
    let delete = ctx.delete(&id);
    assert!(
        delete.success(),
        "delete must succeed despite a failing poststop hook:\n{delete}"
    );
    assert!(
        delete.stdout.is_empty(),
        "delete wrote to stdout:\n{delete}"
    );
    let warnings = warning_lines(&delete);
    if capsa_only("one warning line, naming the poststop hook") {
        assert_eq!(warnings.len(), 1, "one warning per failing hook:\n{delete}");
        assert!(
            warnings[0].contains("poststop"),
            "the warning should name the poststop hook:\n{delete}"
        );
    }
    ctx.assert_nothing_left(&id, &b);
    if !runc_deviates(
        "the remaining poststop hooks must run after a failing one; \
         runc 1.1.5 stops at the first failure",
    ) {
        assert!(
            out.join("second-poststop").exists(),
            "the remaining poststop hooks must run"
        );
    }
}
