//! Steps 5 and 7: the container's root filesystem, in the order it is built.
//!
//! `prepare` (before the createRuntime hooks, still seeing host paths):
//! 1. make every mount of our new mount namespace a slave, so that nothing we
//!    mount propagates back to the host (while host mounts still reach us);
//! 2. bind the rootfs onto itself: pivot_root needs the new root to be a
//!    mount point;
//! 3. each `mounts[]` entry in the listed order, every destination resolved
//!    inside the root (see `paths.rs`);
//! 4. devices (`devices.rs`), after the `/dev` tmpfs exists.
//!
//! `enter` (after the createContainer hooks): pivot_root into the root and
//! detach the old one, or with `--no-pivot` MS_MOVE + chroot, or without a
//! mount namespace a plain chroot (there is no private mount table to pivot).
//!
//! `finish`: hostname, sysctls (before /proc/sys turns read-only), readonly
//! paths, masked paths, then the root itself read-only, and the requested
//! propagation of the root.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use nix::unistd::{chdir, chroot, fchdir, pivot_root, sethostname};

use super::paths::{self, fd_path};
use super::{devices, failure, idmap, StepContext};
use crate::plan::{InitPlan, MountStep};
use crate::protocol::InitFailure;
use crate::sys;

const NONE: Option<&str> = None;

pub(super) fn prepare(plan: &InitPlan, mut idmapped: idmap::Trees) -> Result<OwnedFd, InitFailure> {
    let rootfs = &plan.rootfs;
    if plan.namespaces.new_mount_ns {
        mount(NONE, "/", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .step("rootfs", || "make / a recursive slave mount".to_string())?;
        mount(
            Some(rootfs),
            rootfs,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .step("rootfs", || {
            format!("bind the rootfs {} onto itself", rootfs.display())
        })?;
    }
    let root: OwnedFd = File::open(rootfs)
        .step("rootfs", || format!("open the rootfs {}", rootfs.display()))?
        .into();
    for m in &plan.mounts {
        if m.kind == "cgroup" || m.kind == "cgroup2" {
            mount_cgroup(plan, &root, m)?;
        } else {
            mount_one(plan, &root, m, idmapped.take(m.index))?;
        }
    }
    devices::create(plan, &root)?;
    Ok(root)
}

fn what(m: &MountStep) -> String {
    format!(
        "mounts[{}]: mount {} on {}",
        m.index,
        m.kind,
        m.destination.display()
    )
}

/// `idmapped`: the detached idmapped copy of the source that `create` made,
/// for an idmapped bind mount; attached where a plain bind would be mounted.
fn mount_one(
    plan: &InitPlan,
    root: &OwnedFd,
    m: &MountStep,
    idmapped: Option<OwnedFd>,
) -> Result<(), InitFailure> {
    if m.kind == "sysfs" && !plan.namespaces.own_net_ns {
        // sysfs shows the network devices of the mounter's network namespace:
        // in the host's (no network namespace in the config) the container
        // gets the host's /sys, bound. A joined namespace is entered at
        // step 2, before the mounts, so a fresh sysfs shows its devices.
        return mount_host_sys(root, m);
    }
    let o = &m.options;
    let target = if o.bind {
        let source = m
            .source
            .as_deref()
            .ok_or_else(|| failure("mount", format!("{}: no source", what(m))))?;
        let is_dir = std::fs::metadata(source)
            .step("mount", || {
                format!("{}: source {}", what(m), source.display())
            })?
            .is_dir();
        let target = if is_dir {
            paths::mkdir_all(root, &m.destination, Mode::from_bits_truncate(0o755))
        } else {
            paths::create_file(root, &m.destination)
        }
        .step("mount", || format!("{}: create the mount point", what(m)))?;
        let rec = if o.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        if let Some(tree) = idmapped {
            idmap::attach(m, tree, &target)?;
        } else {
            mount(
                Some(source),
                fd_path(&target).as_str(),
                NONE,
                MsFlags::MS_BIND | rec,
                NONE,
            )
            .step("mount", || what(m))?;
        }
        // A bind mount ignores every other flag: apply them by a remount of
        // the new mount (opened again: `target` is the covered directory).
        let extra = o.flags - MsFlags::MS_REMOUNT;
        if !extra.is_empty() {
            let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
            // No MS_REC: a bind remount changes one mount only (EINVAL with it);
            // recursive attributes need mount_setattr.
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(&top);
            mount(NONE, fd_path(&top).as_str(), NONE, flags, NONE)
                .step("mount", || format!("{}: remount with {:?}", what(m), extra))?;
        }
        target
    } else {
        let target = paths::mkdir_all(root, &m.destination, Mode::from_bits_truncate(0o755))
            .step("mount", || format!("{}: create the mount point", what(m)))?;
        if m.kind == "proc" || m.kind == "sysfs" {
            refuse_symlinked_destination(root, &target, m)?;
        }
        let source = m
            .source
            .as_deref()
            .map(Path::as_os_str)
            .unwrap_or(m.kind.as_ref());
        let data = (!o.data.is_empty()).then_some(o.data.as_str());
        mount(
            Some(source),
            fd_path(&target).as_str(),
            Some(m.kind.as_str()),
            o.flags,
            data,
        )
        .step("mount", || what(m))?;
        if o.tmpcopyup && m.kind == "tmpfs" {
            // `target` still names the directory now under the tmpfs.
            let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
            copy_tree(Path::new(&fd_path(&target)), Path::new(&fd_path(&top)))
                .step("mount", || format!("{}: tmpcopyup", what(m)))?;
        }
        target
    };
    drop(target);
    for p in &o.propagation {
        let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
        mount(NONE, fd_path(&top).as_str(), NONE, *p, NONE)
            .step("mount", || format!("{}: set propagation {p:?}", what(m)))?;
    }
    if o.recursive_attr != crate::sys::mount_attr::MountAttr::default() {
        let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
        crate::sys::mount_attr::mount_setattr(&top, true, &o.recursive_attr)
            .step("mount", || {
                format!("{}: mount_setattr of the recursive options", what(m))
            })?;
    }
    Ok(())
}

/// proc and sysfs give the container a view of the kernel: their mount
/// points must be plain directories of the rootfs, not symlinks to
/// somewhere else in it (CVE-2019-19921, where `/proc` pointed into a
/// volume and the mount landed where the attacker wanted).
fn refuse_symlinked_destination(
    root: &OwnedFd,
    target: &OwnedFd,
    m: &MountStep,
) -> Result<(), InitFailure> {
    let real = std::fs::read_link(fd_path(target)).step("mount", || what(m))?;
    let root_path = std::fs::read_link(fd_path(root)).step("mount", || what(m))?;
    let wanted = root_path.join(paths::relative(&m.destination));
    if real != wanted {
        return Err(failure(
            "mount",
            format!(
                "{}: {} must be a directory of the rootfs, not a symlink (it leads to {})",
                what(m),
                m.destination.display(),
                real.display()
            ),
        ));
    }
    Ok(())
}

/// The host's `/sys`, bound recursively with the entry's flags.
fn mount_host_sys(root: &OwnedFd, m: &MountStep) -> Result<(), InitFailure> {
    let target = paths::mkdir_all(root, &m.destination, Mode::from_bits_truncate(0o755))
        .step("mount", || format!("{}: create the mount point", what(m)))?;
    refuse_symlinked_destination(root, &target, m)?;
    mount(
        Some("/sys"),
        fd_path(&target).as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .step("mount", || {
        format!(
            "{}: bind the host's /sys (no new network namespace)",
            what(m)
        )
    })?;
    let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | (m.options.flags - MsFlags::MS_REMOUNT)
        | locked_flags(&top);
    mount(NONE, fd_path(&top).as_str(), NONE, flags, NONE)
        .step("mount", || format!("{}: remount the bound /sys", what(m)))
}

/// Copies a directory tree with modes and owners (for `tmpcopyup`).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let to = dst.join(entry.file_name());
        let ft = meta.file_type();
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&entry.path(), &to)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &to)?;
        } else {
            continue; // sockets, fifos, devices: not copied (runc neither)
        }
        lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// The flags a remount must keep: in a user namespace the kernel refuses to
/// drop nosuid/nodev/noexec/atime flags that the original mount was locked
/// with.
fn locked_flags(fd: &impl AsFd) -> MsFlags {
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

/// `/sys/fs/cgroup`. With a cgroup namespace, each hierarchy is mounted
/// afresh and shows the container's cgroup as its root; without one, the
/// container's own directory of each hierarchy is bound there. On cgroup v1
/// (and hybrid) hosts the hierarchies sit in a tmpfs, as on the host.
fn mount_cgroup(plan: &InitPlan, root: &OwnedFd, m: &MountStep) -> Result<(), InitFailure> {
    let flags = m.options.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let ro = m.options.flags & MsFlags::MS_RDONLY;
    let dirs = plan.cgroup.hierarchies();
    let single_v2 = dirs.len() == 1 && dirs[0].is_v2();
    let mkdir = |p: &Path| {
        paths::mkdir_all(root, p, Mode::from_bits_truncate(0o755))
            .step("mount", || format!("{}: create {}", what(m), p.display()))
    };
    let mount_hierarchy = |target: &OwnedFd,
                           dest: &Path,
                           dir: &crate::cgroups::HierarchyDir|
     -> Result<(), InitFailure> {
        let t = fd_path(target);
        if plan.namespaces.new_cgroup_ns {
            let (fstype, data) = if dir.is_v2() {
                ("cgroup2", String::new())
            } else {
                ("cgroup", dir.controllers().join(","))
            };
            let data = (!data.is_empty()).then_some(data.as_str());
            mount(Some(fstype), t.as_str(), Some(fstype), flags | ro, data).step("mount", || {
                format!("{}: mount {fstype} {}", what(m), data.unwrap_or(""))
            })
        } else {
            mount(
                Some(dir.dir()),
                t.as_str(),
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                NONE,
            )
            .step("mount", || {
                format!("{}: bind {}", what(m), dir.dir().display())
            })?;
            // The remount must name the new mount, not the directory under it.
            let top = paths::open_path(root, dest).step("mount", || what(m))?;
            mount(
                NONE,
                fd_path(&top).as_str(),
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | ro,
                NONE,
            )
            .step("mount", || {
                format!("{}: remount {}", what(m), dir.dir().display())
            })
        }
    };
    let target = mkdir(&m.destination)?;
    if single_v2 {
        return mount_hierarchy(&target, &m.destination, &dirs[0]);
    }
    mount(
        Some("tmpfs"),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .step("mount", || format!("{}: tmpfs", what(m)))?;
    for dir in dirs {
        let name = dir
            .mount_point()
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let dest = m.destination.join(&name);
        let sub = mkdir(&dest)?;
        mount_hierarchy(&sub, &dest, dir)?;
    }
    if !ro.is_empty() {
        let top = paths::open_path(root, &m.destination).step("mount", || what(m))?;
        mount(
            NONE,
            fd_path(&top).as_str(),
            NONE,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
            Some("mode=755"),
        )
        .step("mount", || {
            format!("{}: remount the tmpfs read-only", what(m))
        })?;
    }
    Ok(())
}

pub(super) fn enter(plan: &InitPlan, root: OwnedFd) -> Result<(), InitFailure> {
    fchdir(&root).step("pivot_root", || {
        format!("chdir to the rootfs {}", plan.rootfs.display())
    })?;
    if plan.no_pivot {
        mount(Some("."), "/", NONE, MsFlags::MS_MOVE, NONE).step("pivot_root", || {
            "move the rootfs to / (--no-pivot)".to_string()
        })?;
        chroot(".").step("pivot_root", || "chroot into the rootfs".to_string())?;
    } else if plan.namespaces.new_mount_ns {
        // pivot_root(".", ".") stacks the old root on top of the new one; no
        // directory for it is needed. The old root is then made a recursive
        // slave (so that detaching it does not reach the host) and detached.
        // That mount(2) must name the old root itself: "." from our cwd is
        // the new root under it, and making *that* a slave would turn the
        // container's shared mounts into slaves. So cwd goes to the old root
        // first, through an fd taken before the pivot (as runc does).
        let old_root: OwnedFd = File::open("/")
            .step("pivot_root", || "open the old root".to_string())?
            .into();
        pivot_root(".", ".").step("pivot_root", || {
            format!("pivot_root into {}", plan.rootfs.display())
        })?;
        fchdir(&old_root).step("pivot_root", || "chdir to the old root".to_string())?;
        mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
            .step("pivot_root", || "make the old root a slave".to_string())?;
        umount2(".", MntFlags::MNT_DETACH)
            .step("pivot_root", || "detach the old root".to_string())?;
    } else {
        chroot(".").step("pivot_root", || {
            "chroot into the rootfs (no mount namespace)".to_string()
        })?;
    }
    chdir("/").step("pivot_root", || "chdir to the new /".to_string())
}

pub(super) fn finish(plan: &InitPlan) -> Result<(), InitFailure> {
    if let Some(h) = &plan.hostname {
        sethostname(h).step("hostname", || format!("set hostname {h:?}"))?;
    }
    if let Some(d) = &plan.domainname {
        sys::set_domainname(d).step("hostname", || format!("set domainname {d:?}"))?;
    }
    for (key, value) in &plan.sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value)
            .step("sysctl", || format!("linux.sysctl.{key}: write {path}"))?;
    }
    let root: OwnedFd = File::open("/")
        .step("rootfs", || "open /".to_string())?
        .into();
    for p in &plan.readonly_paths {
        readonly_path(&root, p)?;
    }
    for p in &plan.masked_paths {
        mask_path(&root, p)?;
    }
    if plan.root_readonly && plan.namespaces.new_mount_ns {
        let flags =
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&root);
        mount(NONE, "/", NONE, flags, NONE).step("rootfs", || {
            "remount / read-only (root.readonly)".to_string()
        })?;
    }
    if plan.namespaces.new_mount_ns
        && plan.rootfs_propagation != (MsFlags::MS_SLAVE | MsFlags::MS_REC)
    {
        mount(NONE, "/", NONE, plan.rootfs_propagation, NONE)
            .step("rootfs", || "set linux.rootfsPropagation".to_string())?;
    }
    Ok(())
}

fn readonly_path(root: &OwnedFd, p: &Path) -> Result<(), InitFailure> {
    let at = || format!("linux.readonlyPaths: {}", p.display());
    let fd = match paths::open_path(root, p) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        other => other.step("readonly paths", at)?,
    };
    mount(
        Some(fd_path(&fd).as_str()),
        fd_path(&fd).as_str(),
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .step("readonly paths", at)?;
    let top = paths::open_path(root, p).step("readonly paths", at)?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_REC
        | locked_flags(&top);
    mount(NONE, fd_path(&top).as_str(), NONE, flags, NONE).step("readonly paths", at)
}

fn mask_path(root: &OwnedFd, p: &Path) -> Result<(), InitFailure> {
    let at = || format!("linux.maskedPaths: {}", p.display());
    let fd = match paths::open_path(root, p) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        other => other.step("masked paths", at)?,
    };
    let is_dir = nix::sys::stat::fstat(&fd)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false);
    if is_dir {
        mount(
            Some("tmpfs"),
            fd_path(&fd).as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            NONE,
        )
        .step("masked paths", at)
    } else {
        let null = real_dev_null(root)?;
        mount(
            Some(fd_path(&null).as_str()),
            fd_path(&fd).as_str(),
            NONE,
            MsFlags::MS_BIND,
            NONE,
        )
        .step("masked paths", at)
    }
}

/// The container's `/dev/null`, checked to be the null device: the
/// container may have replaced it with a symlink to, say,
/// `/proc/sys/kernel/core_pattern`, and binding *that* over a masked path
/// would expose what masking should hide (CVE-2025-31133).
fn real_dev_null(root: &OwnedFd) -> Result<OwnedFd, InitFailure> {
    let fd = paths::open_path(root, Path::new("/dev/null"))
        .step("masked paths", || "open /dev/null".to_string())?;
    let st = nix::sys::stat::fstat(&fd).step("masked paths", || "stat /dev/null".to_string())?;
    let is_null =
        st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == nix::sys::stat::makedev(1, 3);
    if !is_null {
        return Err(failure(
            "masked paths",
            "/dev/null in the container is not the null device (1:3); refusing to mask with it",
        ));
    }
    Ok(fd)
}
