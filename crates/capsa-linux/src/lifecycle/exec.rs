//! `exec`: a new process in a created or running container.
//!
//! The parent's side of the exec protocol (the child's is `init/exec.rs`):
//!
//! ```text
//!  parent (capsa exec)                         child
//!  clone() ──────────────────────────────────▶ [E0] join the v1 cgroups
//!  (cgroup2: born inside, CLONE_INTO_CGROUP)        itself, then wait
//!  [E1] into the cgroups it was not born in
//!       and did not join (`cgroups/entry.rs`)
//!       ── Continue ─────────────────────────▶ [E2] join the namespaces
//!                                              [E3] fork the real process,
//!       ◀── Forked { pid } ───────────────────      report it, exit
//!  reap the child                              [E4] root, process setup, exec
//!       ◀── SeccompListener + fd ─────────────      (with SCMP_ACT_NOTIFY:
//!  send it to linux.seccomp.listenerPath            after the filters load)
//!       ◀── Failed {…}  or EOF at exec ───────
//!  pid file; return the pid
//! ```
//!
//! The exec'd process is not our child: a foreground `capsa exec` is a child
//! subreaper to wait for it; a detached one leaves it to the caller's
//! subreaper (conmon, containerd's shim), as runc does.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use capsa_spec::Process;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::create::write_pid_file;
use super::ContainerStatus;
use crate::cgroups::Entry;
use crate::error::Error;
use crate::init;
use crate::plan::{self, Console};
use crate::protocol::{channel_pair, Msg, ProtocolError};
use crate::{sys, Runtime};

/// What to run.
#[derive(Debug, Clone)]
pub enum ExecProcess {
    /// A whole OCI process (`exec --process FILE`).
    Given(Process),
    /// The container's own process with runc's `exec` flags applied.
    Override(ExecOverrides),
}

/// runc's `exec` flags, applied over the container's `process`.
#[derive(Debug, Clone, Default)]
pub struct ExecOverrides {
    pub args: Vec<String>,
    /// `NAME=value`, replacing a variable of the same name.
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub additional_gids: Vec<u32>,
    /// Added to the bounding, effective and permitted sets.
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    /// `--tty`.
    pub terminal: bool,
}

/// Options of `exec`.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: ExecProcess,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    /// Where the pty master goes when the process has a terminal.
    pub console: Option<Console>,
    /// `--ignore-paused`: exec into a paused container anyway.
    pub ignore_paused: bool,
    /// `--pidfd-socket`: a pidfd of the process is sent there.
    pub pidfd_socket: Option<PathBuf>,
    /// `--cgroup`: existing sub-cgroups of the container's to run in.
    pub sub_cgroups: Vec<String>,
}

impl Runtime {
    /// Starts a process in the container and returns its host pid once it
    /// has exec'd its program.
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32, Error> {
        let dir = self.state.open(&opts.id)?;
        let st = dir.load()?;
        let status = self.status_of(&dir, &st);
        match status {
            ContainerStatus::Stopped => return Err(Error::NotRunning),
            // runc's rule: a frozen container cannot take a new process
            // (it would freeze at once) unless the caller says it knows.
            ContainerStatus::Paused if !opts.ignore_paused => return Err(Error::Paused("exec in")),
            _ => {}
        }
        let process = match &opts.process {
            ExecProcess::Given(p) => p.clone(),
            ExecProcess::Override(o) => merge(st.spec.process.as_ref(), o, &opts.id)?,
        };
        plan::check_console(process.terminal, opts.console.as_ref())?;
        let plan = plan::build_exec(
            &st.spec,
            &process,
            st.init_pid,
            &self.proc_root,
            opts.preserve_fds,
            &plan::HostFacts::detect(&self.sys_root),
            st.ptrace_seen,
        )?;
        // Before anything happens: the sealed copy re-executes capsa.
        let trampoline = self.exe_defence(&plan.exe_defence)?;
        if !st.ptrace_seen && crate::exe_guard::holds_ptrace(&process) {
            // Later execs must not trust this container's processes.
            let mut st = st.clone();
            st.ptrace_seen = true;
            dir.save(&st)?;
        }
        let (parent_end, child_end) =
            channel_pair().map_err(Error::sys("socketpair for the exec pipe"))?;
        let console = opts
            .console
            .as_ref()
            .filter(|_| process.terminal)
            .map(|c| c.connect())
            .transpose()
            .map_err(Error::sys("connect to the console socket"))?;
        let lock_fd = dir.lock_fd();
        let target = Some(&st.cgroup).filter(|_| opts.sub_cgroups.is_empty());
        let mut entry = target.map(|c| c.open_entry()).transpose()?.flatten();
        let (forked, joining) = super::fork_in_cgroup(0, entry.as_ref(), "fork the exec process")?;
        let child = match forked {
            sys::Forked::Child => {
                drop(parent_end);
                let join = entry.take().map(Entry::into_self_join).unwrap_or_default();
                let first = 3 + opts.preserve_fds as i32;
                let mut keep = vec![child_end.raw()];
                keep.extend(join.raw_fds());
                keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
                keep.extend(trampoline.as_ref().map(|t| t.as_raw_fd()));
                if lock_fd >= first && sys::close_fds_from(first, &keep).is_err() {
                    sys::exit_now(1);
                }
                init::exec::run(&plan, join, child_end, console, trampoline)
            }
            sys::Forked::Parent(pid) => pid,
        };
        drop(entry);
        drop(child_end);
        drop(console);
        drop(trampoline);
        super::fault::point("exec:after-clone");
        let reap = |pid: i32| {
            let _ = waitpid(Pid::from_raw(pid), None);
        };
        // E1: the process belongs to the container's cgroup from its start
        // (E0: the child has joined what `joining` does not name).
        let joined = if opts.sub_cgroups.is_empty() {
            joining.finish(&st.cgroup, child)
        } else {
            st.cgroup.add_process_to_sub(child, &opts.sub_cgroups)
        };
        if let Err(e) = joined {
            let _ = nix::sys::signal::kill(Pid::from_raw(child), nix::sys::signal::Signal::SIGKILL);
            reap(child);
            return Err(e.into());
        }
        super::send_continue(&parent_end)?;
        let pid = match parent_end.recv("the exec process's pid") {
            Ok(Msg::Forked { pid }) => pid,
            Ok(Msg::Failed(f)) => {
                reap(child);
                return Err(Error::Init(f));
            }
            Ok(other) => {
                reap(child);
                return Err(ProtocolError::Unexpected {
                    got: other,
                    expected: "Forked",
                }
                .into());
            }
            Err(e) => {
                reap(child);
                return Err(e.into());
            }
        };
        super::fault::point("exec:after-forked");
        reap(child);
        // E4: EOF means the program was exec'd (the pipe is close-on-exec);
        // before it, the listener of a NOTIFY seccomp filter may come.
        loop {
            match parent_end.recv_with_fd("the exec") {
                Err(ProtocolError::PeerGone { .. }) => break,
                Ok((Msg::SeccompListener, fd)) => {
                    let state = super::hook_state(&st.spec, &opts.id, status.as_str(), st.init_pid);
                    crate::seccomp_notify::forward(&st.spec, &state, pid, fd)?;
                }
                Ok((Msg::Failed(f), _)) => return Err(Error::Init(f)),
                Ok((Msg::ExecFailed { errno, path }, _)) => {
                    return Err(Error::Init(crate::protocol::InitFailure::exec_failed(
                        errno, &path,
                    )))
                }
                Ok((other, _)) => {
                    return Err(ProtocolError::Unexpected {
                        got: other,
                        expected: "exec",
                    }
                    .into())
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(path) = &opts.pidfd_socket {
            super::send_pidfd(path, pid)?;
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        Ok(pid)
    }
}

/// The container's process with the overrides applied, as runc's `exec`
/// builds it from positional arguments and flags.
fn merge(base: Option<&Process>, o: &ExecOverrides, id: &str) -> Result<Process, Error> {
    let base = base.ok_or_else(|| Error::NoProcess { id: id.to_string() })?;
    if o.args.is_empty() {
        return Err(Error::Unsupported(
            "exec without a command (give the program and its arguments)".into(),
        ));
    }
    let mut p = base.clone();
    p.args = o.args.clone();
    p.terminal = o.terminal;
    for kv in &o.env {
        let name = kv.split('=').next().unwrap_or_default();
        p.env.retain(|e| e.split('=').next() != Some(name));
        p.env.push(kv.clone());
    }
    if let Some(cwd) = &o.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(uid) = o.uid {
        p.user.uid = uid;
    }
    if let Some(gid) = o.gid {
        p.user.gid = gid;
    }
    if !o.additional_gids.is_empty() {
        p.user.additional_gids = o.additional_gids.clone();
    }
    for cap in &o.caps {
        for set in [
            &mut p.capabilities.bounding,
            &mut p.capabilities.effective,
            &mut p.capabilities.permitted,
        ] {
            if !set.contains(cap) {
                set.push(cap.clone());
            }
        }
    }
    p.no_new_privileges |= o.no_new_privs;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Process {
        capsa_spec::parse_process(
            br#"{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/","env":["PATH=/bin","A=1"],
                 "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn overrides_replace_and_add_like_runc() {
        let o = ExecOverrides {
            args: vec!["ls".into(), "-l".into()],
            env: vec!["A=2".into(), "B=3".into()],
            cwd: Some("/tmp".into()),
            uid: Some(1000),
            caps: vec!["CAP_NET_ADMIN".into()],
            no_new_privs: true,
            ..Default::default()
        };
        let p = merge(Some(&base()), &o, "c").unwrap();
        assert_eq!(p.args, ["ls", "-l"]);
        assert_eq!(p.env, ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd, PathBuf::from("/tmp"));
        assert_eq!((p.user.uid, p.user.gid), (1000, 0));
        assert!(p
            .capabilities
            .effective
            .contains(&"CAP_NET_ADMIN".to_string()));
        assert!(p.no_new_privileges);
    }

    #[test]
    fn exec_needs_a_command_and_a_base_process() {
        assert!(merge(Some(&base()), &ExecOverrides::default(), "c").is_err());
        let o = ExecOverrides {
            args: vec!["ls".into()],
            ..Default::default()
        };
        assert!(matches!(merge(None, &o, "c"), Err(Error::NoProcess { .. })));
    }
}
