//! `start`: run the prestart hooks, release the init through the exec fifo,
//! wait until it has exec'd the user's program, then run the poststart
//! hooks.
//!
//! Prestart hooks run here, during `start`, and not during `create`: the
//! OCI validation suite checks that they have not run when `create` returns
//! and that they run before the user's program (the runtime spec's original
//! definition; `docs/decisions.md` explains the choice). They see the status
//! `created`, poststart hooks `running`.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{hook_state, run_hooks, run_hooks_warn, ContainerStatus, Held};
use crate::error::Error;
use crate::state::{ContainerDir, ContainerState};
use crate::{sys, Runtime};

impl Runtime {
    /// Starts a created container. Returns the warnings of failed poststart
    /// hooks (the spec says they must not fail `start`).
    pub fn start(&self, id: &str) -> Result<Vec<String>, Error> {
        self.start_notify(id, None)
    }

    /// `start`, proxying sd_notify to `notify_socket` (capsa's own
    /// `NOTIFY_SOCKET`) when the container was created with a notify socket:
    /// returns once the container said `READY=1` or exited, as runc does.
    pub fn start_notify(
        &self,
        id: &str,
        notify_socket: Option<&std::path::Path>,
    ) -> Result<Vec<String>, Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        let status = self.status_of(&dir, &st);
        if status != ContainerStatus::Created {
            return Err(Error::NotCreated {
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        self.start_loaded(dir, &st, notify_socket)
    }

    /// `start_notify` of a container this process created and still holds
    /// (`run`): it is `created` (its lock was never released), so its state
    /// is not read back. Returns the state for [`Runtime::delete_stopped`].
    pub fn start_held(
        &self,
        held: Held,
        notify_socket: Option<&std::path::Path>,
    ) -> Result<(Vec<String>, ContainerState), Error> {
        let warnings = self.start_loaded(held.dir, &held.state, notify_socket)?;
        Ok((warnings, held.state))
    }

    /// `start` from the point where the container is known to be `created`.
    fn start_loaded(
        &self,
        dir: ContainerDir,
        st: &ContainerState,
        notify_socket: Option<&std::path::Path>,
    ) -> Result<Vec<String>, Error> {
        let id = st.id.as_str();
        if st.spec.process.is_none() {
            return Err(Error::NoProcess { id: id.to_string() });
        }
        // The pidfd names this init and no recycled pid: taken while the
        // start time still matched (status_of above).
        let pidfd = sys::pidfd_open(st.init_pid)
            .map_err(Error::sys(format!("pidfd_open {}", st.init_pid)))?;
        let created = hook_state(&st.spec, id, "created", st.init_pid);
        if let Err(e) = run_hooks("prestart", &st.spec.hooks.prestart, &created) {
            // The container must not run: remove it, as if it was never
            // created (the spec's "stop the container" and delete).
            self.destroy(dir, st, true);
            return Err(e);
        }
        let notify = match notify_socket {
            Some(host) if dir.notify_dir().is_dir() => {
                Some((host, super::notify::listen(&dir.notify_dir())?))
            }
            _ => None,
        };
        if let Err(e) = release_init(&dir, st, &pidfd) {
            // A startContainer hook or the exec failed: the spec says stop the
            // container. The init is exiting already; make sure it is gone
            // before we report, so `state` then says `stopped`.
            let _ = sys::pidfd_send_signal(&pidfd, libc::SIGKILL);
            super::wait_gone(
                &self.proc_root,
                st.init_pid,
                std::time::Duration::from_secs(5),
            );
            return Err(e);
        }
        self.wait_until_settled(&pidfd, st.init_pid, st.init_start_time);
        if let Some((host, listener)) = &notify {
            // Waiting for READY=1 may take long: other commands on this
            // container must not wait for the lock meanwhile.
            drop(dir);
            super::notify::forward_until_ready(listener, host, &pidfd, st.init_pid)?;
        }
        let running = hook_state(&st.spec, id, "running", st.init_pid);
        Ok(run_hooks_warn(
            "poststart",
            &st.spec.hooks.poststart,
            &running,
        ))
    }
}

impl Runtime {
    /// Returns once the program has started: it first blocked or exited, or
    /// `SETTLE_LIMIT` passed. Without this, `start` returns while the
    /// program's first instructions may not have run: a signal sent right
    /// after `start` (the validation suite's `killsig`, a client's quick
    /// stop) can reach a pid 1 that has not installed its handlers yet and
    /// that the kernel therefore shields from it, and a poststart hook races
    /// the program's first action, which the spec puts before it.
    /// Typical programs block within a millisecond or two. The process's
    /// state is read at growing intervals (50 µs, doubling to 1 ms); the
    /// pidfd wakes us at once if it exits meanwhile.
    fn wait_until_settled(&self, pidfd: &OwnedFd, pid: i32, start_time: u64) {
        use nix::sys::time::TimeSpec;
        let deadline = std::time::Instant::now() + SETTLE_LIMIT;
        let mut pause = std::time::Duration::from_micros(50);
        while std::time::Instant::now() < deadline {
            match crate::procfs::stat(&self.proc_root, pid) {
                Some(s) if s.start_time == start_time && matches!(s.state, 'R' | 'D') => {}
                _ => return,
            }
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if let Ok(1..) = nix::poll::ppoll(&mut fds, Some(TimeSpec::from_duration(pause)), None)
            {
                return;
            }
            pause = (pause * 2).min(std::time::Duration::from_millis(1));
        }
    }
}

/// The longest `start` waits for the program to settle (a busy program
/// never blocks).
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Opens the exec fifo for reading, which unblocks the init, and reads what
/// it reports until EOF: `0` when it is about to exec (the fifo is
/// close-on-exec, so EOF follows at exec), `E<message>` when the
/// startContainer hooks or the exec failed, nothing when it died.
fn release_init(dir: &ContainerDir, st: &ContainerState, pidfd: &OwnedFd) -> Result<(), Error> {
    let path = dir.fifo_path();
    super::fault::point("start:before-fifo-open");
    let fifo = open(
        &path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open the exec fifo {}", path.display()))(e.into()))?;
    // Gone from the state dir at once: `state` says `created` while the fifo
    // exists, so a `start` killed from here on must not leave it behind
    // (the init reopens it through its own fd, not by path).
    let _ = std::fs::remove_file(&path);
    super::fault::point("start:after-fifo-open");
    let mut fifo = std::fs::File::from(fifo);
    let mut report = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll the exec fifo")(e.into())),
            Ok(_) => {}
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            let mut buf = [0u8; 4096];
            match fifo.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => report.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::sys("read the exec fifo")(e)),
            }
        } else if init_gone {
            // Drain what it wrote before dying.
            let _ = fifo.read_to_end(&mut report);
            break;
        }
    }
    parse_report(&String::from_utf8_lossy(&report)).map_err(|failure| match failure {
        Some(f) => Error::Init(f),
        None => Error::InitGone { id: st.id.clone() },
    })
}

/// What the init wrote to the exec fifo: `0` alone when it exec'd its
/// program; `E<message>` when a startContainer hook or the exec failed
/// (after the `0` or instead of it); `T<errno>:<message>` after the `0` when
/// the exec trampoline could not exec the program. `Err(None)`: the init
/// died without a word.
fn parse_report(text: &str) -> Result<(), Option<crate::protocol::InitFailure>> {
    use crate::protocol::InitFailure;
    let rest = text.strip_prefix('0');
    let body = rest.unwrap_or(text);
    if let Some(message) = body.strip_prefix('E') {
        return Err(Some(InitFailure {
            step: "start".into(),
            errno: None,
            message: message.to_string(),
        }));
    }
    if let Some((errno, message)) = body.strip_prefix('T').and_then(|t| t.split_once(':')) {
        let errno: i32 = errno.parse().unwrap_or(0);
        return Err(Some(InitFailure {
            step: "start".into(),
            errno: Some(errno),
            message: format!(
                "{message}: {}",
                nix::errno::Errno::from_raw(errno).desc().to_lowercase()
            ),
        }));
    }
    match rest {
        Some("") => Ok(()),
        _ => Err(None),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_report;

    #[test]
    fn exec_fifo_reports() {
        assert!(parse_report("0").is_ok());
        assert!(parse_report("").unwrap_err().is_none());
        let hook = parse_report("Ehook #0 failed").unwrap_err().unwrap();
        assert_eq!(hook.message, "hook #0 failed");
        let exec = parse_report("0Eexec: \"/x\": no such file")
            .unwrap_err()
            .unwrap();
        assert_eq!(exec.message, "exec: \"/x\": no such file");
        let tramp = parse_report("0T8:exec: \"/bin/Ex\"").unwrap_err().unwrap();
        assert_eq!(tramp.message, "exec: \"/bin/Ex\": exec format error");
        assert_eq!(tramp.errno, Some(8));
    }
}
