//! The init pipe: how `capsa create` (the parent) and the container init
//! (its forked child) talk while the container is set up.
//!
//! One `SOCK_SEQPACKET` socketpair; each message is one JSON-encoded [`Msg`]
//! in one packet, so message boundaries survive and a dead peer reads as EOF.
//! The init already holds the whole setup plan (it is a fork of the parent),
//! so the pipe carries only synchronisation and errors (and one fd, the seccomp
//! listener, as SCM_RIGHTS beside its message). The steps, in order;
//! each send and receive site in `create.rs` and `init/mod.rs` cites its number:
//!
//! ```text
//!  parent (capsa create)                      container init
//!  ─────────────────────                      ──────────────
//!  clone(CLONE_NEW* of the plan) ───────────▶ [0] join its v1 cgroups by
//!  (cgroup2: born inside, CLONE_INTO_CGROUP)      itself (`cgroups/entry.rs`);
//!                                                 or, with `early_unshare`,
//!                                                 unshare those namespaces
//!                                                 (v1 joined at [2]); wait
//!  [1] (with `early_unshare`: make the
//!      cgroup meanwhile) put the child in
//!      the cgroups it was not born in and
//!      does not join, write uid/gid maps
//!      if it made a user namespace at clone
//!      ── Continue ───────────────────────▶   [2] join namespaces by path,
//!                                                 unshare the rest
//!                                             [3] if it made a user namespace
//!                                                 by unshare:
//!      ◀── MapIds ────────────────────────        ask for the id maps
//!      write uid/gid maps
//!      ── Continue ───────────────────────▶
//!                                             [4] if a pid or time namespace
//!                                                 needs a fork: fork the real
//!      ◀── Forked { pid } ────────────────        init, report its pid, exit
//!      reap the intermediate
//!                                             [5] mounts, devices
//!      ◀── RunCreateHooks ────────────────    [6] ask for the createRuntime
//!      move linux.netDevices into the             hooks
//!      init's network namespace (which
//!      exists since [2]), then run the
//!      createRuntime hooks
//!      ── HookState(state JSON) ──────────▶   [7] createContainer hooks,
//!                                                 pivot_root, masked/readonly
//!                                                 paths, hostname, sysctl,
//!                                                 rlimits, user, capabilities
//!      ◀── SeccompListener + fd ──────────    [7a] with SCMP_ACT_NOTIFY, once
//!  send the fd and the container process          the seccomp filters are in:
//!  state to linux.seccomp.listenerPath            their listener (SCM_RIGHTS);
//!                                                 no reply, the init goes on
//!      ◀── Ready ─────────────────────────    [8] ready: blocks on the exec
//!  write state.json and the pid file              fifo until `capsa start`
//!
//!  at any step:  ◀── Failed { step, errno, message } ── and the init exits
//! ```
//!
//! A parent that dies makes the init's next receive read EOF, and the init
//! exits; an init that dies makes the parent's receive read EOF, and create
//! fails and rolls back.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use std::io::IoSlice;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    send, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// Largest message we accept; the biggest is an error text.
const MAX_MSG: usize = 64 * 1024;

/// One message on the init pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// parent → init: go on to the next step (1, 3).
    Continue,
    /// init → parent: write the id maps of the user namespace I just made (3).
    MapIds,
    /// init → parent: the real init is my child `pid` (host view); I exit (4).
    Forked { pid: i32 },
    /// init → parent: move the netDevices and run the createRuntime hooks
    /// now (6).
    RunCreateHooks,
    /// parent → init: hooks ran; this is the state JSON hooks get (6).
    HookState(String),
    /// init → parent: the listener of the NOTIFY seccomp filter rides with
    /// this message as SCM_RIGHTS (7a; E4 for `exec`).
    SeccompListener,
    /// init → parent: setup done, blocking on the exec fifo (8).
    Ready,
    /// init → parent: setup failed at `step` (any step).
    Failed(InitFailure),
    /// exec'd process → `capsa exec`: the exec trampoline could not exec
    /// `path` (E4). The trampoline writes this message itself, with the
    /// framing `init/process.rs` gives it.
    ExecFailed { errno: i32, path: String },
}

/// An error of the container init, as it reaches the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct InitFailure {
    /// The setup step, e.g. `pivot_root` or `mount /proc`.
    pub step: String,
    /// The OS error number, when a syscall failed.
    pub errno: Option<i32>,
    /// One line for the user, naming what failed and where.
    pub message: String,
}

impl InitFailure {
    /// A failed exec of the program at `path`, in Go's wording of the errno
    /// as runc reports it (podman maps the text to exit codes 126/127).
    pub fn exec_failed(errno: i32, path: &str) -> Self {
        InitFailure {
            step: "exec".into(),
            errno: Some(errno),
            message: format!(
                "exec: {path:?}: {}",
                nix::errno::Errno::from_raw(errno).desc().to_lowercase()
            ),
        }
    }
}

/// Errors of the pipe itself.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("init pipe: {0}")]
    Io(#[from] io::Error),
    #[error("the container init exited during setup (while capsa waited for {expected})")]
    PeerGone { expected: &'static str },
    #[error("init pipe: unexpected message {got:?} while waiting for {expected}")]
    Unexpected { got: Msg, expected: &'static str },
    #[error("init pipe: bad message: {0}")]
    Decode(#[from] serde_json::Error),
}

/// One end of the init pipe.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Makes the pair: (parent's end, init's end). Both are close-on-exec, so no
/// program either side runs inherits them.
pub fn channel_pair() -> io::Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), ProtocolError> {
        let bytes = serde_json::to_vec(msg)?;
        loop {
            match send(self.raw(), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(ProtocolError::Io(e.into())),
            }
        }
    }

    /// Sends `msg` with `fd` beside it (SCM_RIGHTS), in one packet.
    pub fn send_with_fd(&self, msg: &Msg, fd: &impl AsFd) -> Result<(), ProtocolError> {
        let bytes = serde_json::to_vec(msg)?;
        let fds = [fd.as_fd().as_raw_fd()];
        loop {
            match sendmsg::<()>(
                self.raw(),
                &[IoSlice::new(&bytes)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(ProtocolError::Io(e.into())),
            }
        }
    }

    /// Receives one message; `expected` names what the caller waits for, for
    /// the error when the peer is gone. An fd sent beside it is closed.
    pub fn recv(&self, expected: &'static str) -> Result<Msg, ProtocolError> {
        self.recv_with_fd(expected).map(|(msg, _)| msg)
    }

    /// Receives one message and the fd sent beside it, if any (close-on-exec).
    pub fn recv_with_fd(
        &self,
        expected: &'static str,
    ) -> Result<(Msg, Option<OwnedFd>), ProtocolError> {
        let mut buf = vec![0u8; MAX_MSG];
        let (n, fd) = loop {
            match crate::sys::fdpass::recv_fd_packet(&self.fd, &mut buf) {
                Ok(got) => break got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ProtocolError::Io(e)),
            }
        };
        if n == 0 {
            return Err(ProtocolError::PeerGone { expected });
        }
        Ok((serde_json::from_slice(&buf[..n])?, fd))
    }

    /// Receives and checks that the message is `want`.
    pub fn expect(&self, want: &Msg, expected: &'static str) -> Result<(), ProtocolError> {
        match self.recv(expected)? {
            got if &got == want => Ok(()),
            got => Err(ProtocolError::Unexpected { got, expected }),
        }
    }

    pub fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_the_pair_and_eof_is_peer_gone() {
        let (a, b) = channel_pair().unwrap();
        a.send(&Msg::Forked { pid: 42 }).unwrap();
        assert_eq!(b.recv("fork").unwrap(), Msg::Forked { pid: 42 });
        b.send(&Msg::Failed(InitFailure {
            step: "mount".into(),
            errno: Some(2),
            message: "no".into(),
        }))
        .unwrap();
        assert!(matches!(a.recv("ready").unwrap(), Msg::Failed(f) if f.errno == Some(2)));
        let file = std::fs::File::open("/dev/null").unwrap();
        b.send_with_fd(&Msg::SeccompListener, &file).unwrap();
        let (msg, fd) = a.recv_with_fd("the listener").unwrap();
        assert_eq!(msg, Msg::SeccompListener);
        let fd = fd.expect("the fd came along");
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"));
        drop(b);
        assert!(matches!(
            a.recv("ready"),
            Err(ProtocolError::PeerGone { expected: "ready" })
        ));
    }
}
