//! Receiving one fd over a unix socket (SCM_RIGHTS), as the console socket
//! protocol sends it: a payload (the pty's name) and one fd.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Receives one message; returns its payload and the first fd it carried.
/// With `wait == false`, `Ok(None)` when nothing is queued.
pub fn recv_fd(sock: &impl AsFd, wait: bool) -> io::Result<Option<(Vec<u8>, OwnedFd)>> {
    let mut buf = [0u8; 4096];
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    match recv_first_fd(sock, &mut buf, flags) {
        Ok((n, fd)) => Ok(fd.map(|fd| (buf[..n].to_vec(), fd))),
        Err(nix::errno::Errno::EAGAIN) if !wait => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sends `payload` and one fd in one message: the framing go-runc and
/// conmon expect on console and pidfd sockets (exactly one `SCM_RIGHTS`
/// message carrying one fd, a non-empty payload under 4096 bytes).
pub fn send_fd(sock: &impl AsFd, payload: &[u8], fd: &impl AsFd) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage};
    let fds = [fd.as_fd().as_raw_fd()];
    sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &[std::io::IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receives one packet into `buf` and the fds sent with it: its length (0 at
/// EOF) and the first fd (close-on-exec); any further fd is closed.
pub fn recv_fd_packet(sock: &impl AsFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    Ok(recv_first_fd(sock, buf, MsgFlags::MSG_CMSG_CLOEXEC)?)
}

/// One `recvmsg` into `buf`: the bytes received and the first fd of the
/// message's SCM_RIGHTS; every further fd is closed.
fn recv_first_fd(
    sock: &impl AsFd,
    buf: &mut [u8],
    flags: MsgFlags,
) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_fd().as_raw_fd(), &mut iov, Some(&mut space), flags)?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel installed `raw` in this process by this
                // recvmsg; no other object owns it, so wrapping it (and thus
                // closing every extra one) is sound.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    Ok((msg.bytes, fd))
}
