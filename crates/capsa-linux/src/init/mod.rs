//! The container init: the child `capsa create` forks. It holds the whole
//! [`InitPlan`] (it is a copy of the parent), sets the container up step by
//! step, blocks on the exec fifo until `capsa start`, and then execs the
//! container's program. The steps and their numbers are those of the
//! protocol in `protocol.rs`.
//!
//! Nothing here returns to the caller: the init ends in `execve` or `_exit`.
//! Any error is sent to the parent as one `Failed` message naming the step.

mod apparmor;
mod console;
mod devices;
pub(crate) mod exec;
pub(crate) mod idmap;
mod namespaces;
pub(crate) mod paths;
mod process;
mod rootfs;
mod seccomp;

use std::convert::Infallible;
use std::fmt::Display;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::stat::{umask, Mode};

use crate::hooks;
use crate::plan::InitPlan;
use crate::protocol::{Channel, InitFailure, Msg};
use crate::sys;

/// Adds the step name and what was being done to a failed call.
pub(crate) trait StepContext<T> {
    fn step(self, step: &str, what: impl FnOnce() -> String) -> Result<T, InitFailure>;
}

impl<T> StepContext<T> for nix::Result<T> {
    fn step(self, step: &str, what: impl FnOnce() -> String) -> Result<T, InitFailure> {
        self.map_err(|e| InitFailure {
            step: step.to_string(),
            errno: Some(e as i32),
            message: format!("{}: {}", what(), e.desc()),
        })
    }
}

impl<T> StepContext<T> for std::io::Result<T> {
    fn step(self, step: &str, what: impl FnOnce() -> String) -> Result<T, InitFailure> {
        self.map_err(|e| InitFailure {
            step: step.to_string(),
            errno: e.raw_os_error(),
            message: format!("{}: {e}", what()),
        })
    }
}

pub(crate) fn failure(step: &str, message: impl Display) -> InitFailure {
    InitFailure {
        step: step.to_string(),
        errno: None,
        message: message.to_string(),
    }
}

/// What the init needs besides the plan: its end of the init pipe and an
/// `O_PATH` fd of the exec fifo, opened by the parent while the fifo's path
/// was still reachable.
pub(crate) struct InitIo {
    /// The v1 `tasks` files to join at step 0 (`cgroups/entry.rs`).
    pub cgroup_join: crate::cgroups::SelfJoin,
    pub chan: Channel,
    pub fifo: OwnedFd,
    /// Connected console socket, when the process has a terminal.
    pub console: Option<OwnedFd>,
    /// The detached idmapped mounts `create` made (`idmap.rs`).
    pub idmapped: idmap::Trees,
    /// The sealed exec trampoline, when the plan's defence is the
    /// trampoline and capsa does not already run from a sealed copy.
    pub trampoline: Option<OwnedFd>,
}

/// Makes this process (non-)dumpable. A fork of capsa that enters a
/// container is non-dumpable: until it execs the user's program it runs
/// capsa's binary with the host's privileges, and a dumpable process could be
/// reached by the container's processes through ptrace or
/// `/proc/<pid>/{exe,mem,fd}` (CVE-2016-9962, and part of the CVE-2019-5736
/// defence, see `exe_guard`). The exec of the program makes it dumpable
/// again, as any exec does.
pub(crate) fn set_dumpable(dumpable: bool) -> Result<(), InitFailure> {
    nix::sys::prctl::set_dumpable(dumpable).step("start", || {
        format!("prctl(PR_SET_DUMPABLE, {})", u8::from(dumpable))
    })
}

/// Moves this process into the cgroups it opened for that
/// (`cgroups/entry.rs`); used by the init and by an exec'd process.
pub(crate) fn join_cgroup(join: crate::cgroups::SelfJoin) -> Result<(), InitFailure> {
    join.join().map_err(|(path, e)| InitFailure {
        step: "cgroup".to_string(),
        errno: e.raw_os_error(),
        message: format!(
            "join the container's cgroup: write 0 to {}: {e}",
            path.display()
        ),
    })
}

/// Runs the init. Never returns.
pub(crate) fn run(plan: &InitPlan, mut io: InitIo) -> ! {
    match setup_and_exec(plan, &mut io) {
        Ok(never) => match never {},
        Err(failure) => {
            // The parent may be gone already; then there is no one to tell.
            let _ = io.chan.send(&Msg::Failed(failure));
            sys::exit_now(1)
        }
    }
}

fn setup_and_exec(plan: &InitPlan, io: &mut InitIo) -> Result<Infallible, InitFailure> {
    // Step 0: into the container's v1 cgroups before anything else; or,
    // where the parent makes the cgroup meanwhile, first our namespaces
    // (`early_unshare`; nothing of the container runs before we join).
    let early = plan.namespaces.early_unshare;
    if early.is_empty() {
        join_cgroup(std::mem::take(&mut io.cgroup_join))?;
    } else {
        nix::sched::unshare(early)
            .step("namespaces", || format!("unshare namespaces {early:?}"))?;
    }
    // Modes of the device nodes and directories we create are exact; the
    // process's own umask is set just before exec.
    umask(Mode::empty());
    // Step 2: the parent has put us in our cgroups and written id maps.
    io.chan
        .expect(&Msg::Continue, "the parent's go-ahead")
        .map_err(|e| failure("start", e))?;
    if !early.is_empty() {
        // The v1 directories exist now (step 1); the cgroup2 one we were
        // born in. Nothing for the systemd driver, whose unit holds us.
        let join = plan
            .cgroup
            .open_self_join()
            .map_err(|e| failure("cgroup", e))?;
        join_cgroup(join)?;
    }
    // Non-dumpable from here on (see `set_dumpable`). Not earlier: until this
    // go-ahead the parent may still be writing the id maps of a user
    // namespace made at clone, which a rootless parent could not do to a
    // non-dumpable process; nothing of the container exists before it.
    set_dumpable(false)?;
    // Steps 2-4: namespaces (may fork; only the real init comes back).
    namespaces::enter(&plan.namespaces, &io.chan)?;
    if let Some(name) = &plan.session_keyring {
        // ENOSYS: a kernel without keyrings; nothing to isolate then.
        match sys::join_session_keyring(name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            other => other.step("keyring", || format!("join a new session keyring {name}"))?,
        }
    }
    // Step 5: mounts and devices, still seeing the host's paths.
    let root = rootfs::prepare(plan, std::mem::take(&mut io.idmapped))?;
    // Step 6: the parent runs the createRuntime hooks; it answers with the
    // state hooks get.
    io.chan
        .send(&Msg::RunCreateHooks)
        .map_err(|e| failure("hooks", e))?;
    let hook_state = match io
        .chan
        .recv("the createRuntime hooks")
        .map_err(|e| failure("hooks", e))?
    {
        Msg::HookState(state) => state,
        other => {
            return Err(failure(
                "hooks",
                format!("unexpected message {other:?} on the init pipe"),
            ))
        }
    };
    // Step 7: the rest of the setup.
    for (i, hook) in plan.create_container_hooks.iter().enumerate() {
        hooks::run(hook, &hook_state).map_err(|e| {
            failure(
                "createContainer hook",
                format!("createContainer hook #{i}: {e}"),
            )
        })?;
    }
    rootfs::enter(plan, root)?;
    rootfs::finish(plan)?;
    if let (Some(p), Some(console)) = (&plan.process, &io.console) {
        console::setup(console, p.console_size, true)?;
    }
    let mut exec = match &plan.process {
        Some(p) => Some(process::prepare(
            p,
            &plan.seccomp,
            plan.preserve_fds,
            &io.chan,
        )?),
        None => None,
    };
    if let Some(exec) = exec.as_mut().filter(|e| e.seccomp_pending) {
        if seccomp::has_listener(&plan.seccomp) {
            // Step 7a: the listener must reach the parent before step 8.
            seccomp::load(&plan.seccomp, plan.preserve_fds, &io.chan)?;
            exec.seccomp_pending = false;
        }
    }
    // Step 8: ready. From here on only the exec fifo wakes us.
    io.chan.send(&Msg::Ready).map_err(|e| failure("ready", e))?;
    let Some(exec) = exec else {
        // No process to run: `start` refuses such a container, so this
        // wait only ends when the container is deleted.
        let _ = wait_for_start(&io.fifo)?;
        sys::exit_now(0)
    };
    // From here on, failures go to `start` through the fifo: the init pipe
    // is closed and the parent gone.
    let mut fifo = wait_for_start(&io.fifo)?;
    let Err(f) = start_and_exec(plan, &hook_state, exec, &mut fifo, io.trampoline.as_ref());
    report_to_start(&mut fifo, &f);
    sys::exit_now(1)
}

/// After `start` opened the fifo: startContainer hooks, then exec. The byte
/// `0` written just before exec tells `start` that everything before exec
/// succeeded; the fifo is close-on-exec, so `start` then sees EOF.
fn start_and_exec(
    plan: &InitPlan,
    hook_state: &str,
    exec: process::Exec,
    fifo: &mut std::fs::File,
    trampoline: Option<&OwnedFd>,
) -> Result<Infallible, InitFailure> {
    use std::io::Write;
    let created_state = hooks::with_status(hook_state, "created");
    for (i, hook) in plan.start_container_hooks.iter().enumerate() {
        hooks::run(hook, &created_state).map_err(|e| {
            failure(
                "startContainer hook",
                format!("startContainer hook #{i} failed: {e}"),
            )
        })?;
    }
    if exec.seccomp_pending {
        // With no_new_privs and no listener: as late as possible
        // (`seccomp.rs`). The init pipe is closed; nothing is sent on it.
        process::close_fds_on_exec(plan.preserve_fds)?;
        crate::seccomp::install(&plan.seccomp).map_err(|e| failure("seccomp", e))?;
    } else if plan.seccomp.is_empty() {
        process::close_fds_on_exec(plan.preserve_fds)?;
    }
    // (Else the filter went in earlier, right after the same close-on-exec
    // pass: it may forbid close_range now.)
    fifo.write_all(b"0")
        .step("exec fifo", || "write to the exec fifo".to_string())?;
    let via = trampoline.map(|t| process::Via {
        trampoline: t.as_fd(),
        report: fifo.as_fd(),
        to: process::ReportTo::Fifo,
    });
    process::exec(exec, via)
}

/// Sends a failure after start to the `start` command: `E` and the message.
fn report_to_start(fifo: &mut std::fs::File, f: &InitFailure) {
    use std::io::Write;
    let _ = fifo.write_all(format!("E{}", f.message).as_bytes());
}

/// Blocks until `capsa start` opens the fifo for reading, and returns our
/// writing end.
fn wait_for_start(fifo: &OwnedFd) -> Result<std::fs::File, InitFailure> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .step("exec fifo", || "open the exec fifo".to_string())
}
