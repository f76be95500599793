//! An rtnetlink socket (`NETLINK_ROUTE`) with the few operations that move
//! a network interface into a container: find it, read its addresses, move
//! and rename it, add addresses back, set it up. The bytes are built and
//! parsed in `netlink_msg.rs`; nix covers the socket calls safely, so there
//! is no `unsafe` here.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

use super::netlink_msg::{self as msg, IfAddr, NLMSG_DONE, NLMSG_ERROR, RTM_NEWADDR, RTM_NEWLINK};

/// The largest datagram the kernel sends on a dump is a page or two.
const RECV_BUF: usize = 64 * 1024;

/// A route netlink socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl RouteSocket {
    /// A socket in the caller's network namespace.
    pub fn open() -> io::Result<RouteSocket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(errno)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(errno)?;
        Ok(RouteSocket { fd, seq: 0 })
    }

    /// A socket in the network namespace `netns`: a socket stays in the
    /// namespace it was made in, so the caller enters `netns` just long
    /// enough to make it, then goes back to `home`. Only for a
    /// single-threaded caller (setns changes this thread only).
    pub fn open_in(netns: BorrowedFd<'_>, home: BorrowedFd<'_>) -> io::Result<RouteSocket> {
        setns(netns, CloneFlags::CLONE_NEWNET).map_err(errno)?;
        let sock = RouteSocket::open();
        // Staying in the container's namespace would be far worse than any
        // error here: every later step (hooks, the state) would run in it.
        setns(home, CloneFlags::CLONE_NEWNET).map_err(|e| {
            io::Error::other(format!("setns back to capsa's own network namespace: {e}"))
        })?;
        sock
    }

    /// Sends one request and reads the reply up to its acknowledgement,
    /// error or end of dump; returns the data messages (type, payload).
    fn transact(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = build(seq);
        send(self.fd.as_raw_fd(), &request, MsgFlags::empty()).map_err(errno)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(errno(e)),
            };
            let replies =
                msg::split(&buf[..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            for r in replies.into_iter().filter(|r| r.seq == seq) {
                match r.kind {
                    NLMSG_ERROR => {
                        let code = msg::error_code(r.payload)
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        return match code {
                            0 => Ok(out),
                            code => Err(io::Error::from_raw_os_error(code)),
                        };
                    }
                    NLMSG_DONE => return Ok(out),
                    kind => out.push((kind, r.payload.to_vec())),
                }
            }
        }
    }

    /// Every interface of the socket's namespace: (index, name).
    pub fn links(&mut self) -> io::Result<Vec<(i32, String)>> {
        self.transact(msg::get_links)?
            .iter()
            .filter(|(kind, _)| *kind == RTM_NEWLINK)
            .map(|(_, p)| msg::parse_link(p).map_err(invalid))
            .collect()
    }

    /// The index of the interface `name` (ENODEV when there is none).
    pub fn link_index(&mut self, name: &str) -> io::Result<i32> {
        let replies = self.transact(|seq| msg::get_link_by_name(seq, name))?;
        let (_, payload) = replies
            .iter()
            .find(|(kind, _)| *kind == RTM_NEWLINK)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        Ok(msg::parse_link(payload).map_err(invalid)?.0)
    }

    /// The addresses of interface `index`, in the kernel's order (an IPv4
    /// primary before its secondaries).
    pub fn addrs_of(&mut self, index: i32) -> io::Result<Vec<IfAddr>> {
        let mut out = Vec::new();
        for (kind, payload) in self.transact(msg::get_addrs)? {
            if kind != RTM_NEWADDR {
                continue;
            }
            let (i, a) = msg::parse_addr(&payload).map_err(invalid)?;
            if i64::from(i) == i64::from(index) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Moves interface `index` into the namespace `netns` as `new_name`.
    pub fn move_link(
        &mut self,
        index: i32,
        new_name: &str,
        netns: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let fd = netns.as_fd().as_raw_fd() as u32;
        self.transact(|seq| msg::move_link(seq, index, new_name, fd))
            .map(drop)
    }

    pub fn set_up(&mut self, index: i32) -> io::Result<()> {
        self.transact(|seq| msg::set_link_up(seq, index)).map(drop)
    }

    pub fn add_addr(&mut self, index: i32, a: &IfAddr) -> io::Result<()> {
        self.transact(|seq| msg::add_addr(seq, index as u32, a))
            .map(drop)
    }
}

fn invalid(e: msg::Malformed) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
