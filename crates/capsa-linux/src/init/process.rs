//! Step 7, last part: the container process's limits, identity and
//! privileges, in the order the kernel needs them:
//!
//! 1. the AppArmor profile to exec into, rlimits and oom_score_adj, then
//!    scheduler, I/O priority and personality, while we still hold every
//!    capability;
//! 2. drop the capabilities outside the bounding set (needs CAP_SETPCAP,
//!    which we lose in step 4 unless it is kept);
//! 3. without no_new_privs, the seccomp filter: loading it needs
//!    CAP_SYS_ADMIN then, which step 4 drops (with no_new_privs it is loaded
//!    as late as possible instead, see `seccomp.rs`);
//! 4. keep capabilities across the uid change (PR_SET_KEEPCAPS), then
//!    setgroups, setgid, setuid (groups first: after setuid we may no longer
//!    be allowed to change them);
//! 5. the effective, permitted, inheritable and ambient sets;
//! 6. no_new_privs, chdir to `cwd` as the user (runc checks it the same way),
//!    and the program looked up on the container's PATH.
//!
//! The umask is set last, just before exec, by `exec`.

use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::path::Path;

use caps::CapSet;
use nix::sys::resource::setrlimit;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, setgroups, setresgid, setresuid, Gid, Uid};

use super::{failure, StepContext};
use crate::plan::ProcessPlan;
use crate::protocol::{Channel, InitFailure};
use crate::seccomp::BpfProgram;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What exec needs once the fifo opens.
pub(super) struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    umask: u32,
    /// The seccomp filter is still to be installed (no_new_privs is set).
    pub seccomp_pending: bool,
}

pub(super) fn prepare(
    p: &ProcessPlan,
    filters: &[BpfProgram],
    preserve_fds: u32,
    chan: &Channel,
) -> Result<Exec, InitFailure> {
    if let Some(profile) = &p.apparmor_profile {
        super::apparmor::exec_into(profile)?;
    }
    for (res, name, soft, hard) in &p.rlimits {
        setrlimit(*res, *soft, *hard).step("rlimits", || {
            format!("process.rlimits: set {name} to soft {soft}, hard {hard}")
        })?;
    }
    if let Some(adj) = p.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .step("oom_score_adj", || {
                format!("process.oomScoreAdj: write {adj} to /proc/self/oom_score_adj")
            })?;
    }
    scheduling(p)?;
    let cap_err = |what: String| {
        move |e: caps::errors::CapsError| failure("capabilities", format!("{what}: {e}"))
    };
    for cap in caps::all() {
        if !p.caps.bounding.contains(&cap) {
            // EINVAL: a capability this kernel does not know; nothing to drop.
            if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
                if caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
                    return Err(cap_err(format!("drop {cap} from the bounding set"))(e));
                }
            }
        }
    }
    let seccomp_now = !p.no_new_privileges && !filters.is_empty();
    if seccomp_now {
        super::seccomp::load(filters, preserve_fds, chan)?;
    }
    nix::sys::prctl::set_keepcaps(true)
        .step("user", || "keep capabilities across setuid".to_string())?;
    let gids: Vec<Gid> = p
        .additional_gids
        .iter()
        .copied()
        .map(Gid::from_raw)
        .collect();
    // A rootless container's user namespace has setgroups denied: then there
    // are no groups to set, and nothing to clear (the user's own are not mapped).
    let denied =
        || std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    match setgroups(&gids) {
        Err(nix::errno::Errno::EPERM) if gids.is_empty() && denied() => {}
        other => other.step("user", || {
            format!(
                "process.user.additionalGids: setgroups {:?}",
                p.additional_gids
            )
        })?,
    }
    setresgid(
        Gid::from_raw(p.gid),
        Gid::from_raw(p.gid),
        Gid::from_raw(p.gid),
    )
    .step("user", || format!("process.user.gid: setgid {}", p.gid))?;
    setresuid(
        Uid::from_raw(p.uid),
        Uid::from_raw(p.uid),
        Uid::from_raw(p.uid),
    )
    .step("user", || format!("process.user.uid: setuid {}", p.uid))?;
    // Effective first (it must stay within permitted, which we still have in
    // full), then permitted, inheritable, ambient.
    let not_subset: Vec<_> = p.caps.effective.difference(&p.caps.permitted).collect();
    if !not_subset.is_empty() {
        return Err(failure(
            "capabilities",
            format!("process.capabilities.effective: {not_subset:?} not in the permitted set"),
        ));
    }
    caps::set(None, CapSet::Effective, &p.caps.effective)
        .map_err(cap_err("process.capabilities.effective: capset".into()))?;
    caps::set(None, CapSet::Permitted, &p.caps.permitted)
        .map_err(cap_err("process.capabilities.permitted: capset".into()))?;
    caps::set(None, CapSet::Inheritable, &p.caps.inheritable)
        .map_err(cap_err("process.capabilities.inheritable: capset".into()))?;
    for cap in &p.caps.ambient {
        // The kernel raises an ambient capability only if it is permitted and
        // inheritable; runc skips the others (its own `spec` lists ambient
        // capabilities that are not inheritable), so capsa does too, noting it.
        if !(p.caps.permitted.contains(cap) && p.caps.inheritable.contains(cap)) {
            tracing::warn!("process.capabilities.ambient: {cap} is not both permitted and inheritable; not raised");
            continue;
        }
        caps::raise(None, CapSet::Ambient, *cap).map_err(cap_err(format!(
            "process.capabilities.ambient: raise {cap}"
        )))?;
    }
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs()
            .step("no_new_privs", || "set no_new_privs".to_string())?;
    }
    chdir(&p.cwd).step("cwd", || {
        format!("chdir to cwd ({:?}) set in config.json", p.cwd)
    })?;
    let path = find_program(&p.args[0], &p.env)?;
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| failure("exec", format!("{what} {s:?} contains a NUL byte")))
    };
    Ok(Exec {
        path: CString::new(path)
            .map_err(|_| failure("exec", "program path contains a NUL byte"))?,
        args: p
            .args
            .iter()
            .map(|a| cstr(a, "process.args"))
            .collect::<Result<_, _>>()?,
        env: p
            .env
            .iter()
            .map(|e| cstr(e, "process.env"))
            .collect::<Result<_, _>>()?,
        umask: p.umask,
        seccomp_pending: !seccomp_now && !filters.is_empty(),
    })
}

/// `process.scheduler`, `process.ioPriority` and `linux.personality`, while
/// the init still holds every capability (raising a priority needs
/// CAP_SYS_NICE, a realtime class of I/O CAP_SYS_ADMIN or CAP_SYS_NICE) and
/// before a seccomp filter that could forbid the calls. All three survive
/// execve. A kernel refusal is one error naming the field.
fn scheduling(p: &ProcessPlan) -> Result<(), InitFailure> {
    use crate::sys::sched;
    // nix's wording of the errno, as the other steps report it.
    let errno = |e: std::io::Error| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
    if let Some((attr, policy)) = &p.scheduler {
        sched::sched_setattr(attr)
            .map_err(errno)
            .step("scheduler", || {
                let mut what = format!("process.scheduler: sched_setattr {policy}");
                match *policy {
                    "SCHED_FIFO" | "SCHED_RR" => what += &format!(" priority {}", attr.priority),
                    "SCHED_DEADLINE" => {
                        what += &format!(
                            " runtime {} deadline {} period {}",
                            attr.runtime, attr.deadline, attr.period
                        )
                    }
                    _ => what += &format!(" nice {}", attr.nice),
                }
                what
            })?;
    }
    if let Some((class, level, name)) = p.io_priority {
        sched::ioprio_set(class, level)
            .map_err(errno)
            .step("ioPriority", || {
                format!("process.ioPriority: ioprio_set {name} priority {level}")
            })?;
    }
    if let Some(persona) = p.personality {
        sched::set_personality(persona)
            .map_err(errno)
            .step("personality", || {
                format!("linux.personality: personality({persona:#x})")
            })?;
    }
    Ok(())
}

/// Marks every fd past stdio and the preserved ones close-on-exec, so that
/// nothing capsa opened reaches the program (CVE-2024-21626). Every fd capsa
/// opens later is opened close-on-exec already.
pub(super) fn close_fds_on_exec(preserve_fds: u32) -> Result<(), InitFailure> {
    crate::sys::cloexec_fds_from(3 + preserve_fds as i32)
        .step("exec", || "mark fds close-on-exec".to_string())
}

/// Finds `arg0` the way runc (Go's exec.LookPath) does, with its wording, which
/// podman maps to exit code 127.
fn find_program(arg0: &str, env: &[String]) -> Result<String, InitFailure> {
    if arg0.contains('/') {
        return match std::fs::metadata(arg0) {
            Ok(m) if m.is_dir() => Err(failure("exec", format!("exec: {arg0:?}: is a directory"))),
            // As the container's user, like runc's eaccess check, so that a
            // program we could not exec fails `create`, not `start`.
            Ok(_) if nix::unistd::access(arg0, nix::unistd::AccessFlags::X_OK).is_err() => Err(
                failure("exec", format!("exec: {arg0:?}: permission denied")),
            ),
            Ok(_) => Ok(arg0.to_string()),
            Err(e) => Err(failure(
                "exec",
                format!("exec: {arg0:?}: stat {arg0}: {}", io_text(&e)),
            )),
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|v| v.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&candidate) {
            if m.is_file()
                && nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok()
            {
                return Ok(candidate.to_string_lossy().into_owned());
            }
        }
    }
    Err(failure(
        "exec",
        format!("exec: {arg0:?}: executable file not found in $PATH"),
    ))
}

/// Go's wording of an errno (lower case, no "(os error N)").
fn io_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Where the exec trampoline reports a failed exec of the program.
pub(super) enum ReportTo {
    /// The exec fifo `start` reads: `T<errno>:<message>` (after the `0`).
    Fifo,
    /// The exec pipe (`capsa exec`): a `Msg::ExecFailed` packet.
    Channel,
}

/// The last exec through the exec trampoline (`exe_guard`).
pub(super) struct Via<'a> {
    pub trampoline: BorrowedFd<'a>,
    pub report: BorrowedFd<'a>,
    pub to: ReportTo,
}

impl ReportTo {
    /// The text around the errno the trampoline writes.
    fn framing(&self, path: &CString) -> (CString, CString) {
        let (prefix, suffix) = match self {
            ReportTo::Fifo => ("T".to_string(), format!(":exec: {path:?}")),
            ReportTo::Channel => (
                r#"{"ExecFailed":{"errno":"#.to_string(),
                format!(
                    r#","path":{}}}}}"#,
                    serde_json::Value::from(path.to_string_lossy().into_owned())
                ),
            ),
        };
        // Neither can hold a NUL: the path is a CString already.
        (
            CString::new(prefix).unwrap_or_default(),
            CString::new(suffix).unwrap_or_default(),
        )
    }
}

/// Sets the process's umask and execs its program, directly or through the
/// trampoline.
pub(super) fn exec(e: Exec, via: Option<Via<'_>>) -> Result<std::convert::Infallible, InitFailure> {
    umask(Mode::from_bits_truncate(e.umask));
    let Some(via) = via else {
        let err = nix::unistd::execve(&e.path, &e.args, &e.env).unwrap_err();
        return Err(failure(
            "exec",
            format!("exec: {:?}: {}", e.path, err.desc().to_lowercase()),
        ));
    };
    let (prefix, suffix) = via.to.framing(&e.path);
    let report = crate::sys::TrampolineReport {
        fd: via.report,
        prefix: &prefix,
        suffix: &suffix,
    };
    let err = crate::sys::exec_through(via.trampoline, &report, &e.path, &e.args, &e.env);
    Err(failure(
        "exec",
        format!(
            "exec: {:?}: exec the trampoline: {}",
            e.path,
            err.desc().to_lowercase()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_lookup_uses_path_and_runc_wording() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_program("sh", &env).unwrap().ends_with("/sh"));
        let e = find_program("nosuchcmd-capsa", &env).unwrap_err();
        assert_eq!(
            e.message,
            "exec: \"nosuchcmd-capsa\": executable file not found in $PATH"
        );
        let e = find_program("/nonexistent/x", &env).unwrap_err();
        assert_eq!(
            e.message,
            "exec: \"/nonexistent/x\": stat /nonexistent/x: no such file or directory"
        );
    }
}
