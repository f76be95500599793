//! `run`: create + start, and in the foreground wait for the container,
//! forward signals to it, delete it, and exit with its status (128+N when a
//! signal N killed it), as runc does.

use std::process::ExitCode;

use capsa_linux::state::ContainerState;
use capsa_linux::{Held, Runtime};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::lifecycle::create_options;
use super::{tty, CommandError, CommandResult};
use crate::cli::RunArgs;
use crate::logging::Logger;

/// Signals a foreground `run` passes on to the container's init.
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

pub fn run(rt: &Runtime, a: RunArgs, logger: &Logger) -> CommandResult {
    let mut opts = create_options(&a.create)?;
    // In the foreground without --console-socket, a terminal is relayed by us.
    let relay = if !a.detach && opts.console.is_none() {
        let (ours, theirs) = tty::console_pair()?;
        opts.console = Some(theirs);
        Some(ours)
    } else {
        None
    };
    if !a.detach && !a.no_subreaper {
        // The init may be our grandchild (pid namespace joined by path): as a
        // subreaper we still reap it.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| CommandError::Io {
            what: "become a child subreaper".into(),
            source: e.into(),
        })?;
    }
    let held = rt.create_held(&opts)?;
    let init = held.pid();
    if a.detach {
        return start_or_delete(rt, held, logger).map(|_| ExitCode::SUCCESS);
    }
    let master = match &relay {
        Some(sock) => tty::take_master(sock)?,
        None => None,
    };
    // Block the signals before start: a SIGCHLD that arrives before we read
    // the signalfd stays pending instead of being lost.
    let sfd = block_forwarded_signals()?;
    let state = start_or_delete(rt, held, logger)?;
    let code = match master {
        Some(master) => tty::relay(master, init, &sfd)?,
        None => wait_for(init, &sfd)?,
    };
    if !a.keep {
        // The init has exited (we waited for it): delete what start left us.
        for w in rt.delete_stopped(&state)? {
            logger.warn(&w);
        }
    }
    Ok(ExitCode::from(code))
}

/// Starts the container `create_held` left us; if that fails, deletes it.
fn start_or_delete(
    rt: &Runtime,
    held: Held,
    logger: &Logger,
) -> Result<ContainerState, CommandError> {
    let id = held.id().to_string();
    match rt.start_held(held, super::lifecycle::notify_socket().as_deref()) {
        Ok((warnings, state)) => {
            for w in warnings {
                logger.warn(&w);
            }
            Ok(state)
        }
        Err(e) => {
            let _ = rt.delete(&id, true);
            Err(e.into())
        }
    }
}

/// Blocks SIGCHLD and the forwarded signals and returns a signalfd for them.
/// Processes forked before this keep their own (empty) signal mask.
pub(super) fn block_forwarded_signals() -> Result<SignalFd, CommandError> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for s in FORWARDED {
        mask.add(*s);
    }
    mask.thread_block().map_err(|e| CommandError::Io {
        what: "block signals".into(),
        source: e.into(),
    })?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(|e| CommandError::Io {
        what: "signalfd".into(),
        source: e.into(),
    })
}

/// Reaps children until the init exits, forwarding signals meanwhile.
pub(super) fn wait_for(init: i32, sfd: &SignalFd) -> Result<u8, CommandError> {
    loop {
        if let Some(code) = reap_until(init)? {
            return Ok(code);
        }
        let info = match sfd.read_signal() {
            Ok(Some(info)) => info,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(CommandError::Io {
                    what: "read signalfd".into(),
                    source: e.into(),
                })
            }
        };
        let sig = info.ssi_signo as i32;
        if sig != Signal::SIGCHLD as i32 {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(Pid::from_raw(init), s);
            }
        }
    }
}

/// Reaps every exited child (orphans reparented to us too); the exit status
/// of `init` (128+N when signal N killed it) once it is among them.
pub(super) fn reap_until(init: i32) -> Result<Option<u8>, CommandError> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == init => {
                return Ok(Some(code as u8))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == init => {
                return Ok(Some(128u8.wrapping_add(sig as u8)))
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(CommandError::Io {
                    what: "waitpid".into(),
                    source: e.into(),
                })
            }
        }
    }
}
