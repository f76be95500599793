//! Which defence against CVE-2019-5736 a container process gets.
//!
//! The container init (and the process `exec` starts) is a fork of capsa,
//! so until it execs the user's program its executable is capsa's binary on
//! the host. Two things must then be impossible for the container:
//!
//! 1. *Reaching that process* through `/proc/<pid>/exe`, `/proc/<pid>/mem` or
//!    ptrace while it sets up. The process makes itself non-dumpable at the
//!    go-ahead, before any of the container exists (`init::set_dumpable`,
//!    also CVE-2016-9962), which closes all three
//!    to every process lacking CAP_SYS_PTRACE in the user namespace that owns
//!    capsa's (the host's). A container in a user namespace can never hold
//!    that; a container outside one holds it only if its capability sets say
//!    so.
//! 2. *Execing `/proc/self/exe`*: a program that is a script with
//!    `#!/proc/self/exe` makes the kernel run the *current* executable. So
//!    the last exec goes through the trampoline (`trampoline/main.rs`): capsa
//!    execs that tiny program from a sealed memfd, and it execs the user's
//!    program; `/proc/self/exe` is then the sealed trampoline.
//!
//! Where (1) cannot be promised, or the trampoline's extra exec could behave
//! differently from a direct one, capsa instead re-executes itself from a
//! sealed copy of its whole binary before it forks anything
//! ([`ExeDefence::SealedCopy`]): safe in every case, but a copy of the binary
//! and a second start-up per command (3-4 ms). runc 1.2's development
//! versions made the same choice for their `runc-dmz` trampoline (runc pull
//! requests 3987 and 4137); [`choose`] applies these rules:
//!
//! - no CAP_SYS_PTRACE reachable outside a user namespace: not in any set of
//!   the process, nor of a process an earlier `exec` started (`ptrace_seen`);
//! - a pid namespace of its own, so that no process capsa did not start (and
//!   whose capabilities it cannot know) shares it;
//! - root, or a non-root user whose capabilities are all ambient: for those
//!   the kernel's capability rules give the same sets after two execs as
//!   after one, and the trampoline's permission checks match the program's;
//! - a seccomp profile that lets the trampoline's system calls through
//!   (checked by running the compiled filters on them, `seccomp_eval`) and
//!   notifies no listener.

use capsa_spec::{NamespaceKind, Process, ValidSpec};
use oci_spec::runtime::LinuxSeccompAction;

use crate::seccomp::BpfProgram;
use crate::seccomp_eval::{allows, stacked_action, SeccompData};

/// How the container process is kept from capsa's binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExeDefence {
    /// Non-dumpable during setup, the last exec through the sealed trampoline.
    Trampoline,
    /// capsa runs from a sealed copy of itself; the reason it must.
    SealedCopy(&'static str),
}

const PTRACE: &str = "CAP_SYS_PTRACE";

/// The defence for `process` in the container `spec` (the container's own
/// process at `create`, or the one `exec` starts). `ptrace_seen`: an earlier
/// `exec` started a process holding CAP_SYS_PTRACE.
pub fn choose(
    spec: &ValidSpec,
    process: &Process,
    seccomp: &[BpfProgram],
    ptrace_seen: bool,
) -> ExeDefence {
    let has_ns = |kind| spec.linux.namespaces.iter().any(|n| n.kind == kind);
    let caps = &process.capabilities;
    if !has_ns(NamespaceKind::User) && (ptrace_seen || holds_ptrace(process)) {
        return ExeDefence::SealedCopy(
            "the container may hold CAP_SYS_PTRACE outside a user namespace",
        );
    }
    let own_pid_ns = spec
        .linux
        .namespaces
        .iter()
        .any(|n| n.kind == NamespaceKind::Pid && n.path.is_none());
    if !own_pid_ns {
        return ExeDefence::SealedCopy("the container shares its pid namespace");
    }
    if process.user.uid != 0
        && !(same_set(&caps.effective, &caps.ambient) && same_set(&caps.permitted, &caps.ambient))
    {
        return ExeDefence::SealedCopy("a non-root process whose capabilities are not all ambient");
    }
    if notifies(spec) {
        return ExeDefence::SealedCopy("the seccomp profile notifies a listener");
    }
    if !seccomp_lets_trampoline_run(seccomp) {
        return ExeDefence::SealedCopy(
            "the seccomp profile may refuse the trampoline's system calls",
        );
    }
    ExeDefence::Trampoline
}

/// True when `process` has CAP_SYS_PTRACE in any of its sets.
pub fn holds_ptrace(process: &Process) -> bool {
    let c = &process.capabilities;
    [
        &c.bounding,
        &c.effective,
        &c.permitted,
        &c.inheritable,
        &c.ambient,
    ]
    .iter()
    .any(|set| set.iter().any(|cap| cap == PTRACE))
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn notifies(spec: &ValidSpec) -> bool {
    spec.linux.seccomp.as_ref().is_some_and(|sc| {
        sc.default_action() == LinuxSeccompAction::ScmpActNotify
            || sc
                .syscalls()
                .iter()
                .flatten()
                .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify)
    })
}

/// The calls the container process and the trampoline make after the
/// filter is in: `fcntl(fd, F_SETFD, 0)` of the report fd and
/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)` of the trampoline
/// (`sys::exec_through`), the trampoline's `fcntl(fd, F_SETFD, FD_CLOEXEC)`,
/// `execve` of the program, and on failure `write` and `exit_group`. The fd
/// is not known yet: two values stand for any.
fn seccomp_lets_trampoline_run(programs: &[BpfProgram]) -> bool {
    if programs.is_empty() {
        return true;
    }
    let mut calls = Vec::new();
    for fd in [3u64, 1000] {
        calls.push((
            libc::SYS_execveat,
            [fd, 0, 0, 0, libc::AT_EMPTY_PATH as u64, 0],
        ));
        for fd_flags in [0, libc::FD_CLOEXEC as u64] {
            calls.push((
                libc::SYS_fcntl,
                [fd, libc::F_SETFD as u64, fd_flags, 0, 0, 0],
            ));
        }
        calls.push((libc::SYS_write, [fd, 0, 64, 0, 0, 0]));
    }
    calls.push((libc::SYS_execve, [0; 6]));
    calls.push((libc::SYS_exit_group, [127, 0, 0, 0, 0, 0]));
    calls.into_iter().all(|(nr, args)| {
        stacked_action(programs, &SeccompData::native(nr, args)).is_some_and(allows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> ValidSpec {
        let mut v = capsa_spec::default_config::default_config(None);
        edit(&mut v);
        capsa_spec::parse(v.to_string().as_bytes(), std::path::Path::new("/b")).unwrap()
    }

    fn decide(s: &ValidSpec) -> ExeDefence {
        let programs = match &s.linux.seccomp {
            Some(sc) => crate::seccomp::compile(sc).unwrap(),
            None => vec![],
        };
        choose(s, s.process.as_ref().unwrap(), &programs, false)
    }

    #[test]
    fn the_default_container_takes_the_trampoline() {
        assert_eq!(decide(&spec(|_| {})), ExeDefence::Trampoline);
    }

    #[test]
    fn ptrace_outside_a_user_namespace_needs_the_copy() {
        let s = spec(|v| {
            v["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_PTRACE"))
        });
        assert!(matches!(decide(&s), ExeDefence::SealedCopy(_)));
        let p = s.process.clone().unwrap();
        let plain = spec(|_| {});
        assert!(matches!(
            choose(&plain, &p, &[], false),
            ExeDefence::SealedCopy(_)
        ));
        assert!(matches!(
            choose(&plain, plain.process.as_ref().unwrap(), &[], true),
            ExeDefence::SealedCopy(_)
        ));
    }

    #[test]
    fn ptrace_inside_a_user_namespace_is_harmless() {
        let s = spec(|v| {
            v["process"]["capabilities"]["bounding"]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_PTRACE"));
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            v["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        });
        assert_eq!(decide(&s), ExeDefence::Trampoline);
    }

    #[test]
    fn a_shared_pid_namespace_needs_the_copy() {
        let s = spec(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != "pid")
        });
        assert!(matches!(decide(&s), ExeDefence::SealedCopy(_)));
    }

    #[test]
    fn non_root_needs_all_capabilities_ambient() {
        let s = spec(|v| {
            v["process"]["user"]["uid"] = json!(1000);
            let kill = json!(["CAP_KILL"]);
            for set in [
                "bounding",
                "effective",
                "permitted",
                "inheritable",
                "ambient",
            ] {
                v["process"]["capabilities"][set] = kill.clone();
            }
        });
        assert_eq!(decide(&s), ExeDefence::Trampoline);
        let s = spec(|v| {
            v["process"]["user"]["uid"] = json!(1000);
            v["process"]["capabilities"]["ambient"] = json!([]);
        });
        assert!(matches!(decide(&s), ExeDefence::SealedCopy(_)));
    }

    #[test]
    fn seccomp_profiles_are_checked_for_the_trampolines_calls() {
        let deny_fcntl = spec(|v| {
            v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["fcntl"], "action": "SCMP_ACT_ERRNO"}]})
        });
        assert!(matches!(decide(&deny_fcntl), ExeDefence::SealedCopy(_)));
        let deny_other = spec(|v| {
            v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "getcwd"], "action": "SCMP_ACT_ERRNO"}]})
        });
        assert_eq!(decide(&deny_other), ExeDefence::Trampoline);
        let allow_list = spec(|v| {
            v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["execve", "execveat", "fcntl", "write", "exit_group"],
                              "action": "SCMP_ACT_ALLOW"}]})
        });
        assert_eq!(decide(&allow_list), ExeDefence::Trampoline);
    }
}
