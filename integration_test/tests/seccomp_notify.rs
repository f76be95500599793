//! `SCMP_ACT_NOTIFY` end to end: an agent thread (`seccomp_agent.rs`) listens on
//! `linux.seccomp.listenerPath`, receives the listener with the container process
//! state, and answers the notified calls: `mkdir` fails with ENOTBLK ("Block device
//! required", an errno no real mkdir here gives) and `getppid` returns 4242. The
//! container shows both answers (busybox's shell sets `$PPID` from getppid).

use capsa_integration_test::fs_fixtures::{create_fails, run, value_of};
use capsa_integration_test::seccomp_agent::{SeccompAgent, Session};
use capsa_integration_test::{capsa_only, runc_deviates, runtime, Bundle, Ctx};
use capsa_linux::sys::seccomp_notify::Answer;
use serde_json::json;

const FAKE_PPID: i64 = 4242;
const METADATA: &str = "capsasec-agent-metadata";
const REPORT: &str = "mkdir /capsasec-dir 2>&1; echo mkdir=$?; echo ppid=$PPID";

fn answer(nr: i64) -> Answer {
    match nr {
        libc::SYS_mkdir | libc::SYS_mkdirat => Answer::Errno(libc::ENOTBLK),
        libc::SYS_getppid => Answer::Value(FAKE_PPID),
        _ => Answer::Continue,
    }
}

fn notify_profile(b: &mut Bundle, agent: &SeccompAgent) {
    let path = agent.path().to_str().expect("UTF-8 path").to_string();
    // runc 1.1.5 refuses any `flags` ("not yet supported by runc").
    let runc = runtime().is_runc();
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": path,
            "listenerMetadata": METADATA,
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat", "getppid"], "action": "SCMP_ACT_NOTIFY"}
            ]
        });
        if runc {
            c["linux"]["seccomp"]
                .as_object_mut()
                .expect("seccomp")
                .remove("flags");
        }
    });
}

fn check_output(out: &str) {
    assert!(
        out.contains("Block device required"),
        "mkdir should fail with the agent's ENOTBLK:\n{out}"
    );
    assert_eq!(value_of(out, "mkdir"), "1", "mkdir's status:\n{out}");
    assert_eq!(
        value_of(out, "ppid"),
        FAKE_PPID.to_string(),
        "getppid should return the agent's value:\n{out}"
    );
}

fn check_session(s: &Session, id: &str, status: &str) {
    let st = &s.state;
    assert_eq!(st["fds"], json!(["seccompFd"]), "fds: {st}");
    assert_eq!(st["metadata"], METADATA, "metadata: {st}");
    assert!(st["ociVersion"].is_string(), "ociVersion: {st}");
    assert_eq!(st["state"]["id"], id, "state.id: {st}");
    assert_eq!(st["state"]["status"], status, "state.status: {st}");
    assert!(st["pid"].as_i64().unwrap_or(0) > 0, "pid: {st}");
    assert!(
        s.answered.contains(&libc::SYS_getppid),
        "the agent answered getppid: {:?}",
        s.answered
    );
}

fn round_trip(no_new_privileges: bool, prefix: &str) {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle(prefix);
    let agent = SeccompAgent::start(prefix, answer);
    notify_profile(&mut b, &agent);
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(no_new_privileges));
    b.sh(REPORT);
    let out = run(&ctx, &b, &id);
    let sessions = agent.finish();
    assert!(out.success(), "the container should exit 0:\n{out}");
    check_output(&out.stdout);
    assert_eq!(
        sessions.len(),
        1,
        "one connection per container: {sessions:?}"
    );
    check_session(&sessions[0], &id, "creating");
    assert_eq!(
        sessions[0].state["pid"], sessions[0].state["state"]["pid"],
        "the process is the container's init"
    );
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn the_agent_answers_calls_of_a_no_new_privs_container() {
    round_trip(true, "secnotify-nnp");
}

/// Without no_new_privs the filters load before the user switch (they need
/// CAP_SYS_ADMIN then): the listener must still get through, and nothing of the
/// runtime's own setup after the load may be a notified call.
#[test]
fn the_agent_answers_calls_when_the_filter_loads_early() {
    // runc 1.1.5's init calls getppid after loading the filter (its parent-death
    // check), gets the agent's 4242, and panics.
    if runc_deviates("SCMP_ACT_NOTIFY on getppid without noNewPrivileges") {
        return;
    }
    round_trip(false, "secnotify-early");
}

#[test]
fn exec_processes_send_their_own_listener() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secnotify-exec");
    let agent = SeccompAgent::start("secnotify-exec", answer);
    notify_profile(&mut b, &agent);
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    let out = ctx.cmd(&["exec", &id, "sh", "-c", REPORT]);
    ctx.delete_force(&id);
    let sessions = agent.finish();
    assert!(out.success(), "exec should succeed:\n{out}");
    check_output(&out.stdout);
    assert_eq!(sessions.len(), 2, "the init's and the exec's: {sessions:?}");
    let exec = &sessions[1];
    check_session(exec, &id, "running");
    assert_ne!(
        exec.state["pid"], exec.state["state"]["pid"],
        "the exec'd process is not the init"
    );
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn notify_without_a_listener_is_one_clear_error() {
    if !capsa_only("the wording of seccomp notify errors") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secnotify-nopath");
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]});
    });
    let line = create_fails(&ctx, &b, &id);
    assert!(line.contains("linux.seccomp.listenerPath"), "{line}");

    // Nobody listens at listenerPath: create fails and rolls back.
    let (id, mut b) = ctx.id_and_bundle("secnotify-deaf");
    let dead = b.path().join("nobody-listens.sock");
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": dead,
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]});
    });
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("linux.seccomp.listenerPath: connect to"),
        "{line}"
    );
}
