//! A seccomp notification agent for the tests: listens on a unix socket
//! (the config's `linux.seccomp.listenerPath`), takes each listener the runtime
//! sends with its container process state, and answers the notified system
//! calls with `answer`, on one thread, until [`SeccompAgent::finish`].

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use capsa_linux::sys::fdpass::recv_fd;
use capsa_linux::sys::seccomp_notify::{answer as send_answer, receive, Answer};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::Value;

/// What one connection brought and what the agent answered on its listener.
#[derive(Debug, Clone)]
pub struct Session {
    /// The container process state, as received.
    pub state: Value,
    /// The numbers of the system calls answered, in order.
    pub answered: Vec<i64>,
}

pub struct SeccompAgent {
    path: PathBuf,
    _dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Session>>>,
}

impl SeccompAgent {
    /// Binds a fresh socket (named after `name`) and starts answering.
    pub fn start(name: &str, answer: fn(i64) -> Answer) -> SeccompAgent {
        let dir = tempfile::Builder::new()
            .prefix("capsa-it-agent-")
            .tempdir()
            .expect("agent temp dir");
        let path = dir.path().join(format!("{name}.sock"));
        let listener = UnixListener::bind(&path).expect("bind the agent socket");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(&listener, &flag, answer));
        SeccompAgent {
            path,
            _dir: dir,
            stop,
            thread: Some(thread),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the agent and returns its sessions.
    pub fn finish(mut self) -> Vec<Session> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("finished once")
            .join()
            .expect("the agent thread panicked")
    }
}

impl Drop for SeccompAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(listener: &UnixListener, stop: &AtomicBool, answer: fn(i64) -> Answer) -> Vec<Session> {
    let mut sessions: Vec<(Session, Option<OwnedFd>)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        if let Ok((conn, _)) = listener.accept() {
            conn.set_nonblocking(false).expect("blocking connection");
            let (payload, fd) = recv_fd(&conn, true)
                .expect("receive the container process state")
                .expect("the runtime sent an fd with the state");
            let state = serde_json::from_slice(&payload).unwrap_or_else(|e| {
                panic!(
                    "the state is not JSON ({e}): {}",
                    String::from_utf8_lossy(&payload)
                )
            });
            let session = Session {
                state,
                answered: Vec::new(),
            };
            sessions.push((session, Some(fd)));
        }
        let mut polled: Vec<PollFd> = sessions
            .iter()
            .filter_map(|(_, fd)| fd.as_ref())
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if polled.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        poll(&mut polled, PollTimeout::from(20u16)).expect("poll the listeners");
        let ready: Vec<PollFlags> = polled
            .iter()
            .map(|p| p.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(polled);
        let open = sessions.iter_mut().filter(|(_, fd)| fd.is_some());
        for ((session, fd), revents) in open.zip(ready) {
            if revents.contains(PollFlags::POLLIN) {
                let listener = fd.as_ref().expect("open");
                // ENOENT: the caller died before we read it.
                if let Ok(n) = receive(listener) {
                    let nr = i64::from(n.nr);
                    if send_answer(listener, n.id, answer(nr)).is_ok() {
                        session.answered.push(nr);
                    }
                }
            } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                // No process uses the filter any more.
                *fd = None;
            }
        }
    }
    sessions.into_iter().map(|(s, _)| s).collect()
}
