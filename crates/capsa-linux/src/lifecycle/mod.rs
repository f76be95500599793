//! The container lifecycle as the runtime spec defines it: `create`,
//! `start`, `state`, `kill`, `delete` (and `run`, their composition), plus
//! runc's `pause`, `resume` and `update`. Each operation holds the
//! container's state-dir lock for its whole run.

mod create;
mod create_cgroup;
mod delete;
mod events;
mod exec;
pub(crate) mod fault;
mod kill;
mod net_devices;
mod notify;
mod pause;
mod query;
mod rootless;
mod start;
mod update;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use capsa_spec::{Hook, ValidSpec};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

pub use events::{Event, EventKind, EventStream};
pub use exec::{ExecOptions, ExecOverrides, ExecProcess};
pub use kill::parse_signal;
pub use query::{ContainerStatus, StateReport};

use crate::cgroups::{CgroupError, ContainerCgroup, Entry};
use crate::error::Error;
use crate::state::{ContainerDir, ContainerState};
use crate::{hooks, procfs, sys};

pub(crate) fn now_rfc3339() -> String {
    crate::rfc3339::format_utc(std::time::SystemTime::now(), true)
}

/// The state JSON hooks get on stdin (runtime spec, "State").
pub(crate) fn hook_state(spec: &ValidSpec, id: &str, status: &str, pid: i32) -> String {
    serde_json::json!({
        "ociVersion": spec.oci_version,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": spec.bundle,
        "annotations": spec.annotations,
    })
    .to_string()
}

/// `--pidfd-socket`: sends a pidfd of `pid` to the caller's socket, with
/// the console socket's framing (runc 1.2, go-runc's `--pidfd-socket`).
pub(crate) fn send_pidfd(path: &std::path::Path, pid: i32) -> Result<(), Error> {
    let pidfd = sys::pidfd_open(pid).map_err(Error::sys(format!("pidfd_open {pid}")))?;
    let sock = std::os::unix::net::UnixStream::connect(path).map_err(Error::sys(format!(
        "connect to the pidfd socket {}",
        path.display()
    )))?;
    sys::fdpass::send_fd(&sock, b"pidfd", &pidfd)
        .map_err(Error::sys(format!("send a pidfd over {}", path.display())))
}

/// Runs hooks in order; the first failure stops them and is returned.
pub(crate) fn run_hooks(kind: &'static str, list: &[Hook], state: &str) -> Result<(), Error> {
    for (index, hook) in list.iter().enumerate() {
        hooks::run(hook, state).map_err(|source| Error::Hook {
            kind,
            index,
            source,
        })?;
    }
    Ok(())
}

/// Runs hooks whose failure the spec says must only be logged (poststart,
/// poststop): every hook runs, each failure becomes a warning.
pub(crate) fn run_hooks_warn(kind: &'static str, list: &[Hook], state: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for (index, hook) in list.iter().enumerate() {
        if let Err(source) = hooks::run(hook, state) {
            let w = Error::Hook {
                kind,
                index,
                source,
            }
            .to_string();
            tracing::warn!("{w}");
            warnings.push(w);
        }
    }
    warnings
}

/// A container [`crate::Runtime::create_held`] made, its state dir still
/// locked by this process and its state in memory.
pub struct Held {
    pub(crate) dir: ContainerDir,
    pub(crate) state: ContainerState,
}

impl Held {
    /// The init's host pid.
    pub fn pid(&self) -> i32 {
        self.state.init_pid
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.state.id
    }
}

/// Undoes a failed `create`: kills and reaps the init, removes the cgroup
/// and the state dir. Disarmed once create succeeded.
pub(crate) struct Rollback {
    dir: Option<ContainerDir>,
    proc_root: PathBuf,
    pub cgroup: Option<ContainerCgroup>,
    pub init_pid: Option<i32>,
    /// The init is our own child (we must reap it), not a grandchild.
    pub direct_child: bool,
    /// Poststop hooks and their state: a create that fails once the init
    /// exists continues the lifecycle at its last step (runtime spec).
    pub poststop: Option<(Vec<Hook>, String)>,
}

impl Rollback {
    pub fn new(dir: ContainerDir, proc_root: PathBuf) -> Self {
        Rollback {
            dir: Some(dir),
            proc_root,
            cgroup: None,
            init_pid: None,
            direct_child: false,
            poststop: None,
        }
    }

    pub fn dir(&self) -> &ContainerDir {
        self.dir.as_ref().expect("rollback used after disarm")
    }

    /// Create succeeded: nothing is undone, and the state dir (still
    /// locked) goes back to the caller.
    pub fn disarm(mut self) -> ContainerDir {
        self.cgroup = None;
        self.init_pid = None;
        self.poststop = None;
        self.dir.take().expect("rollback disarmed twice")
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(pid) = self.init_pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            if self.direct_child {
                let _ = waitpid(Pid::from_raw(pid), None);
            } else {
                wait_gone(&self.proc_root, pid, Duration::from_secs(5));
            }
        }
        if let Some((hooks, state)) = self.poststop.take() {
            run_hooks_warn("poststop", &hooks, &state);
        }
        if let Some(cg) = &self.cgroup {
            kill_all(cg);
            if let Err(e) = cg.remove() {
                tracing::warn!("rollback: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.remove() {
                tracing::warn!("rollback: {e}");
            }
        }
    }
}

/// SIGKILL to every process of the cgroup (containers without their own pid
/// namespace leave children behind their init). A paused container is
/// thawed first: a frozen v1 task cannot die until it runs again.
pub(crate) fn kill_all(cg: &ContainerCgroup) {
    pause::thaw_to_kill(cg);
    for pid in cg.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Waits until `pid` has exited (gone or a zombie), up to `limit`.
pub(crate) fn wait_gone(proc_root: &std::path::Path, pid: i32, limit: Duration) -> bool {
    // A pidfd turns readable when the process exits: no polling loop.
    if let Ok(fd) = sys::pidfd_open(pid) {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = limit.as_millis().min(i32::MAX as u128) as i32;
        let _ = nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        );
    }
    let deadline = Instant::now() + Duration::from_millis(100);
    loop {
        match procfs::stat(proc_root, pid) {
            None => return true,
            Some(s) if !s.alive() => return true,
            Some(_) if Instant::now() > deadline => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl crate::Runtime {
    /// Carries out the CVE-2019-5736 defence a plan chose (`exe_guard`),
    /// before anything of the container exists. Returns the sealed exec
    /// trampoline for the child, or `None` when capsa already runs from a
    /// sealed copy of itself (then the child execs its program directly).
    /// For a sealed copy, re-executes this process and does not return.
    pub(crate) fn exe_defence(
        &self,
        defence: &crate::exe_guard::ExeDefence,
    ) -> Result<Option<std::os::fd::OwnedFd>, Error> {
        use crate::exe_guard::ExeDefence;
        if sys::is_sealed_exe() {
            return Ok(None);
        }
        match defence {
            ExeDefence::Trampoline => sys::sealed_trampoline()
                .map(Some)
                .map_err(Error::sys("create the sealed exec trampoline (memfd)")),
            ExeDefence::SealedCopy(why) if self.reexec_sealed => {
                tracing::debug!("re-executing capsa from a sealed copy: {why}");
                sys::ensure_sealed_exe()
                    .map_err(Error::sys("re-exec capsa from a sealed copy of its binary"))?;
                Ok(None)
            }
            ExeDefence::SealedCopy(why) => Err(Error::Unsupported(format!(
                "this container needs the process to run from a sealed copy of its binary \
                 ({why}; CVE-2019-5736); allow it with Runtime::reexec_when_sealed_copy_needed"
            ))),
        }
    }
}

/// Who still has to put a child forked by [`fork_in_cgroup`] into the
/// container's cgroup (`cgroups/entry.rs` says why the child does most of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joining {
    /// The parent, in every hierarchy: no entry was given (the systemd
    /// driver, whose unit already holds the pid, or a cgroup capsa did not
    /// make).
    Parent,
    /// The parent, in cgroup2 only: the kernel refused clone3 into it. The
    /// child joins its v1 hierarchies itself.
    ParentV2,
    /// No one: born in cgroup2, and the child joins its v1 hierarchies.
    Done,
}

impl Joining {
    /// The parent's share of the join for the child `pid`.
    pub(crate) fn finish(self, cgroup: &ContainerCgroup, pid: i32) -> Result<(), CgroupError> {
        match self {
            Joining::Parent => cgroup.add_process(pid),
            Joining::ParentV2 => cgroup.add_process_v2(pid),
            Joining::Done => Ok(()),
        }
    }
}

/// Sends `Continue` to a forked child that may have failed before it waits
/// for it (step 0 of the init, E0 of an exec: the cgroup join, the early
/// namespaces). If the child is gone, the send fails; its `Failed` report,
/// still in the pipe, is then the error, not the broken pipe.
pub(crate) fn send_continue(chan: &crate::protocol::Channel) -> Result<(), Error> {
    use crate::protocol::Msg;
    match chan.send(&Msg::Continue) {
        Ok(()) => Ok(()),
        Err(e) => match chan.recv("the child's report") {
            Ok(Msg::Failed(f)) => Err(Error::Init(f)),
            _ => Err(e.into()),
        },
    }
}

/// Forks a child with the namespace flags `flags`, inside the cgroup that
/// `entry` opens: born in its cgroup2 directory with clone3(CLONE_INTO_CGROUP)
/// where it has one, and left to join its v1 hierarchies itself (the caller
/// hands the child `entry`'s [`SelfJoin`](crate::cgroups::SelfJoin)). Where
/// the kernel refuses clone3 (older than 5.7, a seccomp profile of the
/// caller's), a plain clone. Says what remains for the parent.
pub(crate) fn fork_in_cgroup(
    flags: libc::c_int,
    entry: Option<&Entry>,
    what: &'static str,
) -> Result<(sys::Forked, Joining), Error> {
    let Some(entry) = entry else {
        let forked = sys::clone_process(flags).map_err(Error::sys(what))?;
        return Ok((forked, Joining::Parent));
    };
    let Some((dir, fd)) = entry.v2_dir() else {
        let forked = sys::clone_process(flags).map_err(Error::sys(what))?;
        return Ok((forked, Joining::Done));
    };
    match sys::clone_into_cgroup(flags, fd) {
        Ok(sys::Forked::Child) => return Ok((sys::Forked::Child, Joining::Done)),
        Ok(parent) => {
            tracing::debug!("{what}: cloned into {} (CLONE_INTO_CGROUP)", dir.display());
            return Ok((parent, Joining::Done));
        }
        // No child was made: the plain clone below, and the `cgroup.procs`
        // write, say what is wrong if anything is.
        Err(e) => tracing::debug!("{what}: clone3 into {}: {e}", dir.display()),
    }
    let forked = sys::clone_process(flags).map_err(Error::sys(what))?;
    Ok((forked, Joining::ParentV2))
}
