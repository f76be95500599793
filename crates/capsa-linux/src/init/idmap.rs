//! Idmapped bind mounts (`idmap`, `ridmap`, `mounts[].uidMappings`): the
//! files of the source appear with their owners translated by a user
//! namespace's mappings, with nothing chowned on disk.
//!
//! Two halves, in two processes:
//!
//! * [`prepare`] runs in `create`, before the init is forked. For each such
//!   mount it gets a user namespace fd (one per distinct mapping: a helper
//!   process is cloned into a new user namespace, its `uid_map`/`gid_map`
//!   written, `/proc/<pid>/ns/user` opened, the helper killed and reaped; or
//!   the container's joined namespace, opened by path), makes a detached copy
//!   of the source with `open_tree(OPEN_TREE_CLONE [| AT_RECURSIVE])` and sets
//!   `mount_setattr(MOUNT_ATTR_IDMAP)` on it. The init inherits those fds.
//! * [`attach`] runs in the init, in `mount_one`: `move_mount` puts the tree on
//!   the destination, resolved inside the rootfs like any other (`paths.rs`).
//!
//! Why the parent and not the init: `MOUNT_ATTR_IDMAP` needs `CAP_SYS_ADMIN`
//! in the user namespace that owns the source's filesystem, the host's for
//! any host directory. An init born in the container's new user namespace
//! (clone makes it there) has no capability in the host's one, so the kernel
//! refuses it (EPERM). `capsa create` runs in the host's namespaces, and it
//! is single-threaded, so cloning the helper is as safe as forking the init.
//! runc 1.2 does the same split. Attaching needs the init: `move_mount` must
//! target the caller's own mount namespace, and a detached tree (from any
//! namespace) may be attached there.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::error::Error;
use crate::plan::{IdmapUserns, InitPlan, MountStep};
use crate::sys::mount_api::{self, MOUNT_ATTR_IDMAP};
use crate::sys::mount_attr::{mount_setattr, MountAttr};
use crate::sys::{self, Forked};

/// The detached idmapped mounts made by [`prepare`], by `mounts[]` index.
/// The init takes each one when it mounts that entry; the fds are
/// close-on-exec either way.
#[derive(Debug, Default)]
pub(crate) struct Trees(Vec<(usize, OwnedFd)>);

impl Trees {
    /// The fds the init must keep when it closes what it inherited.
    pub(crate) fn raw_fds(&self) -> Vec<RawFd> {
        self.0.iter().map(|(_, fd)| fd.as_raw_fd()).collect()
    }

    /// The tree of `mounts[index]`, if that entry is idmapped.
    pub(super) fn take(&mut self, index: usize) -> Option<OwnedFd> {
        let at = self.0.iter().position(|(i, _)| *i == index)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// In `create`, before the init is forked: the detached, idmapped copy of
/// every idmapped mount's source. Nothing outlives a failure (the helper
/// processes are reaped, the fds closed).
pub(crate) fn prepare(plan: &InitPlan, proc_root: &Path) -> Result<Trees, Error> {
    // One user namespace per distinct mapping, however many mounts use it.
    let mut userns: Vec<(&IdmapUserns, OwnedFd)> = Vec::new();
    let mut trees = Vec::new();
    for m in &plan.mounts {
        let Some(idmap) = &m.idmap else {
            continue;
        };
        let at = format!("mounts[{}]", m.index);
        // The source first: a missing one fails before any helper is cloned.
        let (tree, source) = detached_copy(m, &at)?;
        let pos = match userns.iter().position(|(u, _)| *u == &idmap.userns) {
            Some(pos) => pos,
            None => {
                userns.push((
                    &idmap.userns,
                    user_namespace(&idmap.userns, proc_root, &at)?,
                ));
                userns.len() - 1
            }
        };
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: userns[pos].1.as_raw_fd() as u64,
            ..MountAttr::default()
        };
        mount_setattr(&tree, idmap.recursive, &attr).map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                " (does its filesystem support idmapped mounts on this kernel?)"
            } else {
                ""
            };
            Error::sys(format!(
                "{at}: set the id mapping of {}{hint}",
                source.display()
            ))(e)
        })?;
        trees.push((m.index, tree));
    }
    Ok(Trees(trees))
}

/// `open_tree` of one mount's source (with its submounts for `rbind`), made a
/// slave like the container's other mounts.
fn detached_copy<'m>(m: &'m MountStep, at: &str) -> Result<(OwnedFd, &'m Path), Error> {
    let Some(source) = m.source.as_deref() else {
        // capsa-spec refuses a bind mount without a source already.
        return Err(crate::plan::PlanError {
            path: format!("{at}.source"),
            message: "an idmapped mount needs a source".into(),
        }
        .into());
    };
    let tree = mount_api::open_tree_clone(source, m.options.recursive).map_err(Error::sys(
        format!("{at}: open_tree of the source {}", source.display()),
    ))?;
    // The copy is in the same peer group as the host's mount when that is
    // shared; make it (and everything under it) a slave: host mounts still
    // reach it, the container's mounts under it never reach the host.
    let slave = MountAttr {
        propagation: MsFlags::MS_SLAVE.bits(),
        ..MountAttr::default()
    };
    mount_setattr(&tree, true, &slave).map_err(Error::sys(format!(
        "{at}: make the idmapped copy of {} a slave mount",
        source.display()
    )))?;
    Ok((tree, source))
}

/// An fd of the user namespace whose mappings the mount takes.
fn user_namespace(userns: &IdmapUserns, proc_root: &Path, at: &str) -> Result<OwnedFd, Error> {
    match userns {
        IdmapUserns::Mappings { uid, gid } => mapped_userns(proc_root, uid, gid).map_err(
            Error::sys(format!("{at}: make a user namespace with the id mappings")),
        ),
        IdmapUserns::Path(p) => File::open(p).map(OwnedFd::from).map_err(Error::sys(format!(
            "{at}: open the container's user namespace {}",
            p.display()
        ))),
    }
}

/// A user namespace with these mappings: a helper process is cloned into a
/// new one, its maps are written, its `ns/user` opened; then it is killed and
/// reaped (the fd keeps the namespace alive). The helper blocks on a pipe, so
/// it also ends if we die before killing it.
fn mapped_userns(
    proc_root: &Path,
    uid: &[capsa_spec::IdMapping],
    gid: &[capsa_spec::IdMapping],
) -> std::io::Result<OwnedFd> {
    let (wait_end, hold_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // capsa is single-threaded here (it has not forked the init yet).
    let pid = match sys::clone_process(libc::CLONE_NEWUSER)? {
        Forked::Child => {
            drop(hold_end);
            let _ = nix::unistd::read(&wait_end, &mut [0u8; 1]);
            sys::exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(wait_end);
    let dir = proc_root.join(pid.to_string());
    let render = |maps: &[capsa_spec::IdMapping]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect()
    };
    let opened = std::fs::write(dir.join("uid_map"), render(uid))
        .and_then(|()| std::fs::write(dir.join("gid_map"), render(gid)))
        .and_then(|()| File::open(dir.join("ns/user")));
    drop(hold_end);
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = waitpid(Pid::from_raw(pid), None);
    Ok(opened?.into())
}

/// In the init: attaches the idmapped `tree` of `m` on `target` (an `O_PATH`
/// fd of the destination inside the rootfs), where a plain bind would have
/// been mounted.
pub(super) fn attach(
    m: &MountStep,
    tree: OwnedFd,
    target: &OwnedFd,
) -> Result<(), crate::protocol::InitFailure> {
    use super::StepContext;
    mount_api::move_mount_to(&tree, target).step("mount", || {
        format!(
            "mounts[{}]: attach the idmapped mount on {} (move_mount)",
            m.index,
            m.destination.display()
        )
    })
}
