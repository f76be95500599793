//! NOTIFY and the filter flags, checked with `seccomp_eval` (the kernel's
//! precedence across stacked filters).

use super::*;

const USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;
const LOG: u32 = libc::SECCOMP_RET_LOG;

fn compile_json(json: &str) -> Result<Vec<BpfProgram>, SeccompError> {
    compile(&config(json))
}

#[test]
fn notify_entries_notify_and_stronger_actions_win() {
    let programs = compile_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/a.sock", "syscalls": [
            {"names": ["mkdir", "mkdirat", "getppid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["uname"], "action": "SCMP_ACT_NOTIFY",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]}]}"#,
    )
    .unwrap();
    let listeners: Vec<_> = programs.iter().filter(|p| p.listener).collect();
    assert_eq!(listeners.len(), 1, "one listener per filter chain");
    assert!(listeners[0]
        .summary
        .starts_with("SCMP_ACT_NOTIFY for 4 syscalls"));
    assert_eq!(verdict(&programs, "mkdirat", &[]), USER_NOTIF);
    // ERRNO outranks USER_NOTIF; USER_NOTIF outranks LOG.
    assert_eq!(verdict(&programs, "mkdir", &[]), errno(libc::EXDEV));
    assert_eq!(verdict(&programs, "getppid", &[]), USER_NOTIF);
    assert_eq!(verdict(&programs, "uname", &[1]), USER_NOTIF);
    assert_eq!(verdict(&programs, "uname", &[0]), ALLOW);
    assert_eq!(verdict(&programs, "read", &[]), ALLOW);
    // No TRACE marker is left anywhere.
    for p in &programs {
        assert!(
            p.instructions
                .iter()
                .all(|i| !(i.code == 0x06 && i.k == u32::from(crate::seccomp_notify::NOTIFY))),
            "{}",
            p.summary
        );
    }
}

#[test]
fn a_notify_default_notifies_what_is_not_listed() {
    let programs = compile_json(
        r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/a.sock", "syscalls": [
            {"names": ["read", "write", "sendmsg", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]}"#,
    )
    .unwrap();
    assert_eq!(programs.iter().filter(|p| p.listener).count(), 1);
    assert!(programs
        .iter()
        .any(|p| p.listener && p.summary.starts_with("default SCMP_ACT_NOTIFY")));
    assert_eq!(verdict(&programs, "write", &[]), ALLOW);
    assert_eq!(verdict(&programs, "getcwd", &[]), USER_NOTIF);
    assert_eq!(verdict(&programs, "mkdir", &[]), USER_NOTIF);
    // A configured TRACE value is not mistaken for NOTIFY: the TRACE filter
    // keeps it, and ptrace is named by an entry, so the default ALLOWs it.
    assert_eq!(
        verdict(&programs, "ptrace", &[]),
        libc::SECCOMP_RET_TRACE | 7
    );
}

#[test]
fn notify_needs_a_listener_path_and_spares_the_inits_own_calls() {
    let e = compile_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is used but no listenerPath is set"
    );
    let e = compile_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
            {"names": ["write"], "action": "SCMP_ACT_NOTIFY",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("linux.seccomp.syscalls: SCMP_ACT_NOTIFY cannot apply to write(2): "),
        "{e}"
    );
    // A NOTIFY default must allow sendmsg outright.
    let e = compile_json(
        r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a", "syscalls": [
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot apply to sendmsg(2): "
        ),
        "{e}"
    );
}

#[test]
fn flags_go_on_every_filter_but_wait_killable_on_the_listener_only() {
    let programs = compile_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/a",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [
            {"names": ["read", "write", "sendmsg"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"}]}"#,
    )
    .unwrap();
    assert_eq!(programs.len(), 3);
    let both = (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32;
    let killable = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
    for p in &programs {
        let want = if p.listener { both | killable } else { both };
        assert_eq!(p.flags, want, "{}", p.summary);
    }
    assert_eq!(verdict(&programs, "getpid", &[]), LOG);
    assert_eq!(verdict(&programs, "mkdir", &[]), USER_NOTIF);
    assert_eq!(verdict(&programs, "chdir", &[]), errno(libc::EPERM));
}

#[test]
fn kernel_releases_compare_by_major_and_minor() {
    assert!(kernel_before("5.18.0-1-amd64", (5, 19)));
    assert!(!kernel_before("5.19.0", (5, 19)));
    assert!(!kernel_before("6.1.0-18-amd64", (5, 19)));
    assert!(!kernel_before("6.18.44-fc-v669", (5, 19)));
    assert!(kernel_before("garbage", (5, 19)));
}
