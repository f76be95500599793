//! `linux.netDevices`, the parent's side (step 6 of `protocol.rs`): moves
//! host network interfaces into the container's network namespace, as runc
//! and crun do, from outside, once the init's namespace exists.
//!
//! For each interface: one RTM_NEWLINK moves and renames it at once (so its
//! name never clashes on either side); the kernel keeps its MTU and MAC
//! address but takes it down and drops its addresses, so its permanent
//! global addresses (the runtime spec's rule) are read before the move and
//! added back inside, then it is set up.
//!
//! Nothing moves the interfaces back (the runtime spec says a runtime must
//! not): when the container's network namespace goes away, the kernel moves
//! physical interfaces back to the host's initial namespace (with their
//! container names) and destroys virtual ones (a veth, and with it its peer
//! on the host; a macvlan, a dummy...). A create that fails after some moves
//! ends the same way, when the rollback kills the init.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::Error;
use crate::plan::{NetDeviceMove, PlanError};
use crate::sys::netlink::RouteSocket;
use crate::sys::netlink_msg::IfAddr;

/// Moves `devices` into the network namespace of `init_pid`.
pub(super) fn move_into_container(
    devices: &[NetDeviceMove],
    init_pid: i32,
    proc_root: &Path,
) -> Result<(), Error> {
    if devices.is_empty() {
        return Ok(());
    }
    let open = |p: &Path| File::open(p).map_err(Error::sys(format!("open {}", p.display())));
    let home = open(&proc_root.join("self/ns/net"))?;
    let target = open(&proc_root.join(init_pid.to_string()).join("ns/net"))?;
    let (h, t) = (meta(&home)?, meta(&target)?);
    if (h.dev(), h.ino()) == (t.dev(), t.ino()) {
        return Err(plan_err(
            "linux.netDevices",
            "the container's network namespace is the host's (linux.namespaces joins it \
             by path): there is nowhere to move network devices",
        ));
    }

    // Every interface is looked up, and every name checked free in the
    // container, before any moves, so that a missing interface or a taken
    // name fails the create with nothing changed. (The kernel renames after
    // it moves: a taken name would fail with the interface already inside.)
    let mut host = RouteSocket::open().map_err(Error::sys("open an rtnetlink socket"))?;
    let mut inside = RouteSocket::open_in(target.as_fd(), home.as_fd()).map_err(Error::sys(
        "open an rtnetlink socket in the container's network namespace",
    ))?;
    let names_inside: BTreeSet<String> = inside
        .links()
        .map_err(Error::sys("list the container's network interfaces"))?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    let mut found = Vec::with_capacity(devices.len());
    for d in devices {
        if names_inside.contains(&d.name) {
            return Err(taken(d));
        }
        let index = match host.link_index(&d.host_name) {
            Ok(i) => i,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                return Err(plan_err(
                    d.json_path(),
                    format!("no network interface {:?} on the host", d.host_name),
                ))
            }
            Err(e) => return Err(sys(format!("look up {:?}", d.host_name), d)(e)),
        };
        let addrs = host
            .addrs_of(index)
            .map_err(sys(format!("read the addresses of {:?}", d.host_name), d))?;
        let keep: Vec<IfAddr> = addrs
            .into_iter()
            .filter(IfAddr::is_permanent_global)
            .collect();
        found.push((d, index, keep));
    }

    for (d, index, addrs) in found {
        let before = indexes(&mut inside, d)?;
        host.move_link(index, &d.name, target.as_fd())
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) => taken(d),
                _ => sys(
                    format!(
                        "move {:?} into the container's network namespace as {:?}",
                        d.host_name, d.name
                    ),
                    d,
                )(e),
            })?;
        // Its index inside: the one that was not there before the move (the
        // kernel keeps the index unless it is taken, and numbers a template).
        let after = indexes(&mut inside, d)?;
        let new: Vec<&i32> = after.difference(&before).collect();
        let [&moved] = new[..] else {
            return Err(sys("find the moved interface in the container".into(), d)(
                io::Error::from_raw_os_error(libc::ENODEV),
            ));
        };
        for a in &addrs {
            inside.add_addr(moved, a).map_err(sys(
                format!("add address {} to {:?} in the container", show(a), d.name),
                d,
            ))?;
        }
        inside
            .set_up(moved)
            .map_err(sys(format!("set {:?} up in the container", d.name), d))?;
    }
    Ok(())
}

fn meta(f: &File) -> Result<std::fs::Metadata, Error> {
    f.metadata().map_err(Error::sys("stat a network namespace"))
}

fn indexes(sock: &mut RouteSocket, d: &NetDeviceMove) -> Result<BTreeSet<i32>, Error> {
    Ok(sock
        .links()
        .map_err(sys("list the container's network interfaces".into(), d))?
        .into_iter()
        .map(|(i, _)| i)
        .collect())
}

fn taken(d: &NetDeviceMove) -> Error {
    plan_err(
        format!("{}.name", d.json_path()),
        format!(
            "the container already has a network interface named {:?}",
            d.name
        ),
    )
}

fn plan_err(path: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Plan(PlanError {
        path: path.into(),
        message: message.into(),
    })
}

/// A syscall error, said of the device's entry.
fn sys(what: String, d: &NetDeviceMove) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Sys {
        what: format!("config.json: {}: {what}", d.json_path()),
        source,
    }
}

/// `10.1.2.3/24` for an error message.
fn show(a: &IfAddr) -> String {
    let bytes = a.local.as_ref().or(a.address.as_ref());
    let ip = match bytes.map(Vec::as_slice) {
        Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d).to_string(),
        Some(b) if b.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            Ipv6Addr::from(o).to_string()
        }
        _ => "?".to_string(),
    };
    format!("{ip}/{}", a.prefix_len)
}
