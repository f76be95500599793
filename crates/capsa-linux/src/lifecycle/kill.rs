//! `kill`: a signal to the init, or with `--all` to every process in the
//! container's cgroup.

use nix::sys::signal::Signal;

use super::ContainerStatus;
use crate::error::Error;
use crate::{sys, Runtime};

/// The highest signal number (the kernel's `_NSIG` on x86-64 and arm64):
/// 32 to 64 are the real-time signals, which nix's [`Signal`] cannot name.
pub const SIGNAL_MAX: i32 = 64;

impl Runtime {
    /// Sends signal number `signal` (1 to [`SIGNAL_MAX`], see
    /// [`parse_signal`]) to the container. A stopped container is an error
    /// ("container not running", the wording containerd and CRI-O match),
    /// except with `all`, which then has nothing to do (as runc).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        let status = self.status_of(&dir, &st);
        if status == ContainerStatus::Stopped {
            return if all { Ok(()) } else { Err(Error::NotRunning) };
        }
        // A frozen v1 task cannot die until thawed: thaw after a SIGKILL
        // (as runc does); other signals wait for `resume`.
        let thaw = || {
            if status == ContainerStatus::Paused && signal == libc::SIGKILL {
                super::pause::thaw_to_kill(&st.cgroup);
            }
        };
        if all {
            // Through pidfds too (nix's kill takes named signals only); a
            // process gone meanwhile has nothing left to signal.
            for pid in st.cgroup.pids()? {
                if let Ok(pidfd) = sys::pidfd_open(pid) {
                    let _ = sys::pidfd_send_signal(&pidfd, signal);
                }
            }
            thaw();
            return Ok(());
        }
        // Through a pidfd opened after the liveness check: the signal cannot
        // hit a process that took over a recycled pid.
        let pidfd = sys::pidfd_open(st.init_pid).map_err(|_| Error::NotRunning)?;
        sys::pidfd_send_signal(&pidfd, signal).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => Error::NotRunning,
            _ => Error::sys(format!(
                "send {} to the container init ({})",
                signal_name(signal),
                st.init_pid
            ))(e),
        })?;
        thaw();
        Ok(())
    }
}

/// `SIGKILL`, or `signal 37` for the real-time ones, for messages.
fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.to_string())
}

/// Parses a signal as runc's callers send it: a number (`9`, and the
/// real-time signals 32 to 64 only so, as in runc), a name with or without
/// `SIG` (`KILL`, `SIGKILL`), in any case. Returns the signal number.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return i32::try_from(n)
            .ok()
            .filter(|n| (1..=SIGNAL_MAX).contains(n))
            .ok_or_else(|| format!("invalid signal {text:?}: no signal number {n}"));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("invalid signal {text:?}: not a signal name or number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_form_clients_use() {
        for s in ["9", "KILL", "SIGKILL", "sigkill", "kill", " 9 "] {
            assert_eq!(parse_signal(s), Ok(libc::SIGKILL), "{s}");
        }
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("usr1"), Ok(libc::SIGUSR1));
        // SIGRTMIN+3, systemd's stop signal, as podman passes it.
        assert_eq!(parse_signal("37"), Ok(37));
        for bad in ["SIGFOO", "99999", "", "-1", "0", "65", "0x9"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
#[path = "kill_proptests.rs"]
mod proptests;
