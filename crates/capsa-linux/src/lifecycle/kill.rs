//! `kill`: a signal to the init, or with `--all` to every process in the
//! container's cgroup.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::ContainerStatus;
use crate::error::Error;
use crate::{sys, Runtime};

impl Runtime {
    /// Sends `signal` to the container. A stopped container is an error
    /// ("container not running", the wording containerd and CRI-O match),
    /// except with `all`, which then has nothing to do (as runc).
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        let status = self.status_of(&dir, &st);
        if status == ContainerStatus::Stopped {
            return if all { Ok(()) } else { Err(Error::NotRunning) };
        }
        // A frozen v1 task cannot die until thawed: thaw after a SIGKILL
        // (as runc does); other signals wait for `resume`.
        let thaw = || {
            if status == ContainerStatus::Paused && signal == Signal::SIGKILL {
                super::pause::thaw_to_kill(&st.cgroup);
            }
        };
        if all {
            for pid in st.cgroup.pids()? {
                let _ = kill(Pid::from_raw(pid), signal);
            }
            thaw();
            return Ok(());
        }
        // Through a pidfd opened after the liveness check: the signal cannot
        // hit a process that took over a recycled pid.
        let pidfd = sys::pidfd_open(st.init_pid).map_err(|_| Error::NotRunning)?;
        sys::pidfd_send_signal(&pidfd, signal as i32).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => Error::NotRunning,
            _ => Error::sys(format!(
                "send {signal} to the container init ({})",
                st.init_pid
            ))(e),
        })?;
        thaw();
        Ok(())
    }
}

/// Parses a signal as runc's callers send it: a number (`9`), a name with or
/// without `SIG` (`KILL`, `SIGKILL`), in any case.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| format!("invalid signal {text:?}: no signal number {n}"));
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("invalid signal {text:?}: not a signal name or number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_form_clients_use() {
        for s in ["9", "KILL", "SIGKILL", "sigkill", "kill", " 9 "] {
            assert_eq!(parse_signal(s), Ok(Signal::SIGKILL), "{s}");
        }
        assert_eq!(parse_signal("TERM"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal("usr1"), Ok(Signal::SIGUSR1));
        for bad in ["SIGFOO", "99999", "", "-1", "0x9"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
