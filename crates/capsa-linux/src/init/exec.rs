//! The process `capsa exec` starts in a running container, in the order it
//! runs (the protocol steps are those of `lifecycle/exec.rs`):
//!
//! E0. join the container's v1 cgroups ourselves (`cgroups/entry.rs`);
//! E1. wait until the parent has put us into the rest of the cgroup;
//! E2. open the container's root (`/proc/<init>/root`) while the host's
//!     `/proc` is still ours, then join the init's namespaces, the user
//!     namespace first (it gives us rights over the ones it owns);
//! E3. fork: a pid (or time) namespace joined by setns applies to children
//!     only; the child is the exec'd process, we report its pid and exit;
//! E4. enter the container's root (fchdir + chroot: never keep a host
//!     directory as cwd, CVE-2024-21626), then the same process setup as
//!     the init (`process.rs`) with its terminal (`console.rs`), and exec. The init pipe is close-on-exec, so
//!     the parent reads EOF once the exec succeeded, or our `Failed`.

use std::convert::Infallible;
use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::setns;
use nix::unistd::{chdir, chroot, fchdir};

use super::{failure, process, StepContext};
use crate::plan::{clone_flag, ExecPlan};
use crate::protocol::{Channel, InitFailure, Msg};
use crate::sys;

/// Runs the exec'd process's setup. Never returns.
pub(crate) fn run(
    plan: &ExecPlan,
    join: crate::cgroups::SelfJoin,
    chan: Channel,
    console: Option<std::os::fd::OwnedFd>,
    trampoline: Option<std::os::fd::OwnedFd>,
) -> ! {
    // E0: into the container's v1 cgroups first (`cgroups/entry.rs`).
    let result = super::join_cgroup(join)
        .and_then(|()| super::set_dumpable(false))
        .and_then(|()| setup_and_exec(plan, &chan, console, trampoline.as_ref()));
    match result {
        Ok(never) => match never {},
        Err(f) => {
            let _ = chan.send(&Msg::Failed(f));
            sys::exit_now(1)
        }
    }
}

fn setup_and_exec(
    plan: &ExecPlan,
    chan: &Channel,
    console: Option<std::os::fd::OwnedFd>,
    trampoline: Option<&std::os::fd::OwnedFd>,
) -> Result<Infallible, InitFailure> {
    // E1
    chan.expect(&Msg::Continue, "the parent's go-ahead")
        .map_err(|e| failure("exec", e))?;
    // E2
    let root = File::open(&plan.root).step("exec", || {
        format!("open the container's root {}", plan.root.display())
    })?;
    // Every namespace file is opened before the first setns: once in the
    // container's mount namespace, `/proc/<init>` is no longer the host's.
    let files = plan
        .join
        .iter()
        .map(|(kind, path)| {
            File::open(path).step("exec", || {
                format!("open {} namespace {}", kind.spec_name(), path.display())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for ((kind, path), ns) in plan.join.iter().zip(&files) {
        setns(ns.as_fd(), clone_flag(*kind)).step("exec", || {
            format!(
                "join the container's {} namespace {}",
                kind.spec_name(),
                path.display()
            )
        })?;
    }
    drop(files);
    // E3
    match sys::clone_process(0).step("exec", || {
        "fork into the container's pid namespace".to_string()
    })? {
        sys::Forked::Child => {}
        sys::Forked::Parent(pid) => {
            let code = i32::from(chan.send(&Msg::Forked { pid }).is_err());
            sys::exit_now(code)
        }
    }
    // E4
    fchdir(&root).step("exec", || "chdir to the container's root".to_string())?;
    chroot(".").step("exec", || "chroot into the container's root".to_string())?;
    chdir("/").step("exec", || "chdir to /".to_string())?;
    drop(root);
    if let Some(console) = console {
        super::console::setup(&console, plan.process.console_size, false)?;
    }
    let exec = process::prepare(&plan.process, &plan.seccomp, plan.preserve_fds, chan)?;
    if exec.seccomp_pending {
        super::seccomp::load(&plan.seccomp, plan.preserve_fds, chan)?;
    } else if plan.seccomp.is_empty() {
        process::close_fds_on_exec(plan.preserve_fds)?;
    }
    let via = trampoline.map(|t| process::Via {
        trampoline: t.as_fd(),
        report: chan.as_fd(),
        to: process::ReportTo::Channel,
    });
    process::exec(exec, via)
}
