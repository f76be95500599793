//! rtnetlink messages as bytes: the few requests capsa sends to move a network
//! interface into a container (`linux.netDevices`) and the replies it reads.
//! Pure (no socket here, see `netlink.rs`), so every byte is unit-tested.
//!
//! A message is a `struct nlmsghdr` (16 bytes), a family header
//! (`struct ifinfomsg`, 16 bytes, or `struct ifaddrmsg`, 8 bytes), then
//! attributes: `struct rtattr` (length and type, 2 bytes each) and the value,
//! each padded to 4 bytes. All in host byte order (`rtnetlink(7)`).

// The uapi values (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
// linux/if_addr.h, linux/if.h).
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
pub const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFF_UP: u32 = 0x1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
/// The address flags a caller may set on RTM_NEWADDR (nodad, homeaddress,
/// mngtmpaddr, noprefixroute, autojoin); the others are the kernel's state.
const IFA_F_SETTABLE: u32 = 0x02 | 0x10 | 0x100 | 0x200 | 0x400;
const RT_SCOPE_UNIVERSE: u8 = 0;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// Errors of a reply that is not what rtnetlink sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed rtnetlink reply: {0}")]
pub struct Malformed(&'static str);

/// One interface address, as read from the host and added back in the
/// container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    /// All flags (`IFA_FLAGS`, else the 8 bits of the header).
    pub flags: u32,
    pub local: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub broadcast: Option<Vec<u8>>,
}

impl IfAddr {
    /// The addresses the runtime spec says survive the move: permanent
    /// (`IFA_F_PERMANENT`) and of global scope (`RT_SCOPE_UNIVERSE`).
    pub fn is_permanent_global(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == RT_SCOPE_UNIVERSE
    }
}

/// A request being built: the header, with its length filled in by `finish`.
struct Builder(Vec<u8>);

impl Builder {
    fn new(kind: u16, flags: u16, seq: u32) -> Builder {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel's
        Builder(b)
    }

    /// `struct ifinfomsg`: family, pad, type, index, flags, change.
    fn ifinfomsg(mut self, index: i32, flags: u32, change: u32) -> Builder {
        self.0.extend_from_slice(&[0, 0, 0, 0]); // AF_UNSPEC, pad, ifi_type
        self.0.extend_from_slice(&index.to_ne_bytes());
        self.0.extend_from_slice(&flags.to_ne_bytes());
        self.0.extend_from_slice(&change.to_ne_bytes());
        self
    }

    /// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
    fn ifaddrmsg(mut self, family: u8, prefix_len: u8, flags: u8, scope: u8, index: u32) -> Self {
        self.0
            .extend_from_slice(&[family, prefix_len, flags, scope]);
        self.0.extend_from_slice(&index.to_ne_bytes());
        self
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Builder {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align(self.0.len()), 0);
        self
    }

    /// A string attribute carries its NUL.
    fn attr_str(self, kind: u16, value: &str) -> Builder {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// RTM_GETLINK dump: every interface of the socket's namespace.
pub fn get_links(seq: u32) -> Vec<u8> {
    Builder::new(RTM_GETLINK, NLM_F_DUMP, seq)
        .ifinfomsg(0, 0, 0)
        .finish()
}

/// RTM_GETLINK of one interface by name; the reply is its RTM_NEWLINK.
pub fn get_link_by_name(seq: u32, name: &str) -> Vec<u8> {
    Builder::new(RTM_GETLINK, NLM_F_ACK, seq)
        .ifinfomsg(0, 0, 0)
        .attr_str(IFLA_IFNAME, name)
        .finish()
}

/// RTM_NEWLINK that moves interface `index` into the network namespace
/// behind `netns_fd` and renames it `new_name` there, in one step, so the
/// name never clashes in either namespace (a `%d` template lets the kernel
/// number it).
pub fn move_link(seq: u32, index: i32, new_name: &str, netns_fd: u32) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_ACK, seq)
        .ifinfomsg(index, 0, 0)
        .attr(IFLA_NET_NS_FD, &netns_fd.to_ne_bytes())
        .attr_str(IFLA_IFNAME, new_name)
        .finish()
}

/// RTM_NEWLINK that sets interface `index` up (IFF_UP in both flags and
/// change mask, so no other flag is touched).
pub fn set_link_up(seq: u32, index: i32) -> Vec<u8> {
    Builder::new(RTM_NEWLINK, NLM_F_ACK, seq)
        .ifinfomsg(index, IFF_UP, IFF_UP)
        .finish()
}

/// RTM_GETADDR dump of every address of every family.
pub fn get_addrs(seq: u32) -> Vec<u8> {
    Builder::new(RTM_GETADDR, NLM_F_DUMP, seq)
        .ifaddrmsg(0, 0, 0, 0, 0)
        .finish()
}

/// RTM_NEWADDR that adds `a` to interface `index` (and fails if it is there).
pub fn add_addr(seq: u32, index: u32, a: &IfAddr) -> Vec<u8> {
    let flags = a.flags & IFA_F_SETTABLE;
    let mut b = Builder::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq).ifaddrmsg(
        a.family,
        a.prefix_len,
        flags as u8,
        a.scope,
        index,
    );
    for (kind, value) in [
        (IFA_LOCAL, &a.local),
        (IFA_ADDRESS, &a.address),
        (IFA_BROADCAST, &a.broadcast),
    ] {
        if let Some(v) = value {
            b = b.attr(kind, v);
        }
    }
    b.attr(IFA_FLAGS, &flags.to_ne_bytes()).finish()
}

/// One message of a reply: its type and what follows its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a datagram from the kernel into its messages.
pub fn split(buf: &[u8]) -> Result<Vec<Reply<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(Malformed("message length out of bounds"));
        }
        out.push(Reply {
            kind: u16::from_ne_bytes([buf[at + 4], buf[at + 5]]),
            seq: u32_at(buf, at + 8),
            payload: &buf[at + NLMSG_HDRLEN..at + len],
        });
        at += align(len);
    }
    Ok(out)
}

/// The errno of an NLMSG_ERROR payload: 0 for an acknowledgement.
pub fn error_code(payload: &[u8]) -> Result<i32, Malformed> {
    let b = payload.get(..4).ok_or(Malformed("short NLMSG_ERROR"))?;
    Ok(-i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// An RTM_NEWLINK payload: the interface's index and name.
pub fn parse_link(payload: &[u8]) -> Result<(i32, String), Malformed> {
    let head = payload
        .get(..IFINFOMSG_LEN)
        .ok_or(Malformed("short ifinfomsg"))?;
    let index = i32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
    let name = attrs(&payload[IFINFOMSG_LEN..])?
        .into_iter()
        .find(|(k, _)| *k == IFLA_IFNAME)
        .map(|(_, v)| String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(v)).into())
        .ok_or(Malformed("link without IFLA_IFNAME"))?;
    Ok((index, name))
}

/// An RTM_NEWADDR payload: the interface index and the address.
pub fn parse_addr(payload: &[u8]) -> Result<(u32, IfAddr), Malformed> {
    let h = payload
        .get(..IFADDRMSG_LEN)
        .ok_or(Malformed("short ifaddrmsg"))?;
    let mut a = IfAddr {
        family: h[0],
        prefix_len: h[1],
        flags: u32::from(h[2]),
        scope: h[3],
        local: None,
        address: None,
        broadcast: None,
    };
    for (kind, v) in attrs(&payload[IFADDRMSG_LEN..])? {
        match kind {
            IFA_LOCAL => a.local = Some(v.to_vec()),
            IFA_ADDRESS => a.address = Some(v.to_vec()),
            IFA_BROADCAST => a.broadcast = Some(v.to_vec()),
            IFA_FLAGS if v.len() == 4 => a.flags = u32_at(v, 0),
            _ => {}
        }
    }
    Ok((u32_at(h, 4), a))
}

/// The (type, value) attributes of a payload.
fn attrs(mut buf: &[u8]) -> Result<Vec<(u16, &[u8])>, Malformed> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        if len < 4 || len > buf.len() {
            return Err(Malformed("attribute length out of bounds"));
        }
        // The high bits of the type are the nested/byte-order markers.
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        out.push((kind, &buf[4..len]));
        buf = &buf[align(len).min(buf.len())..];
    }
    Ok(out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
#[path = "netlink_msg_tests.rs"]
mod tests;
