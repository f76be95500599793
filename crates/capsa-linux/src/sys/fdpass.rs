//! Receiving one fd over a unix socket (SCM_RIGHTS), as the console socket
//! protocol sends it: a payload (the pty's name) and one fd.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// Receives one message; returns its payload and the first fd it carried.
/// With `wait == false`, `Ok(None)` when nothing is queued.
pub fn recv_fd(sock: &impl AsFd, wait: bool) -> io::Result<Option<(Vec<u8>, OwnedFd)>> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg = match recvmsg::<()>(sock.as_fd().as_raw_fd(), &mut iov, Some(&mut space), flags) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) if !wait => return Ok(None),
        Err(e) => return Err(e.into()),
    };
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
    let n = msg.bytes;
    let payload = iov[0][..n].to_vec();
    Ok(fd.map(|fd| (payload, fd)))
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
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
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
