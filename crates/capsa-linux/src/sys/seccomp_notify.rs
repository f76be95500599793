//! The supervisor's side of seccomp user notification: reading one
//! notification from a listener fd and answering it
//! (`SECCOMP_IOCTL_NOTIF_RECV`, `SECCOMP_IOCTL_NOTIF_SEND`). capsa itself
//! only forwards the listener to `linux.seccomp.listenerPath`; these are for
//! the agent on the other end (capsa's integration tests use them).
//! <https://man7.org/linux/man-pages/man2/seccomp_unotify.2.html>

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// One system call a filter handed to the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The cookie the answer must carry.
    pub id: u64,
    /// The caller's thread id, in the listener owner's pid namespace.
    pub pid: u32,
    /// `seccomp_data`: call number, `AUDIT_ARCH_*`, arguments.
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// What the notified system call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Success with this return value; the call itself is not run.
    Value(i64),
    /// Failure with this (positive) errno.
    Errno(i32),
    /// Let the kernel run the call as if nothing had intercepted it.
    Continue,
}

/// Blocks until a notification is pending on `listener`, and takes it.
/// `ENOENT` when the caller was killed before the notification was read.
pub fn receive(listener: &impl AsFd) -> io::Result<Notification> {
    // SAFETY: all-zero bytes are a valid `seccomp_notif` (integers only);
    // the kernel requires the buffer zeroed before NOTIF_RECV.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV writes one `seccomp_notif` into `n`, a live,
    // correctly sized and aligned value; the fd is borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_fd().as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// Answers notification `id`. `ENOENT` when its caller is gone.
pub fn answer(listener: &impl AsFd, id: u64, answer: Answer) -> io::Result<()> {
    let (val, error, flags) = match answer {
        Answer::Value(v) => (v, 0, 0),
        Answer::Errno(e) => (0, -e, 0),
        Answer::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
    };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    // SAFETY: NOTIF_SEND reads one `seccomp_notif_resp` from `resp`, a live,
    // fully initialised value; the fd is borrowed for the call.
    let ret = unsafe {
        libc::ioctl(
            listener.as_fd().as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
