//! Device nodes in the container's `/dev`, made after the mounts (so the
//! `/dev` tmpfs exists) and before pivot_root (so host nodes can still be
//! bound in a user namespace, where mknod(2) is not allowed).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use capsa_spec::{Device, DeviceKind};
use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, Gid, Uid};

use super::paths::{self, fd_path};
use super::StepContext;
use crate::plan::InitPlan;
use crate::protocol::InitFailure;

/// The devices every container gets when its `/dev` is a fresh tmpfs
/// (runtime spec, config-linux "Default Devices").
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks of a standard `/dev`.
const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

pub(super) fn create(plan: &InitPlan, root: &OwnedFd) -> Result<(), InitFailure> {
    let bind = plan.namespaces.in_user_ns;
    if plan.default_devices {
        for (name, major, minor) in DEFAULT_DEVICES {
            let dev = Device {
                path: PathBuf::from("/dev").join(name),
                kind: DeviceKind::Char,
                major: *major as i64,
                minor: *minor as i64,
                file_mode: Some(0o666),
                uid: Some(0),
                gid: Some(0),
            };
            create_device(root, &dev, bind, "default devices")?;
        }
        let dev = paths::mkdir_all(root, Path::new("/dev"), Mode::from_bits_truncate(0o755))
            .step("devices", || "open /dev".to_string())?;
        for (target, name) in DEV_SYMLINKS {
            match symlinkat(*target, dev.as_fd(), *name) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => {
                    return Err(e).step("devices", || format!("symlink /dev/{name} -> {target}"))
                }
            }
        }
        if Path::new("/proc/kcore").exists() {
            let _ = symlinkat("/proc/kcore", dev.as_fd(), "core");
        }
    }
    for (i, d) in plan.devices.iter().enumerate() {
        create_device(root, d, bind, &format!("linux.devices[{i}]"))?;
    }
    Ok(())
}

fn create_device(root: &OwnedFd, d: &Device, bind: bool, at: &str) -> Result<(), InitFailure> {
    let what = || format!("{at}: {}", d.path.display());
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d
        .path
        .file_name()
        .ok_or_else(|| super::failure("devices", format!("{}: no file name", what())))?;
    let dir =
        paths::mkdir_all(root, parent, Mode::from_bits_truncate(0o755)).step("devices", what)?;
    if bind {
        // Bind the host's node over an empty file: what the host has at the
        // same path is what the container gets.
        let target = paths::create_file(root, &d.path).step("devices", what)?;
        return mount(
            Some(&d.path),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step("devices", what);
    }
    let kind = match d.kind {
        DeviceKind::Char => SFlag::S_IFCHR,
        DeviceKind::Block => SFlag::S_IFBLK,
        DeviceKind::Fifo => SFlag::S_IFIFO,
    };
    let mode = Mode::from_bits_truncate(d.file_mode.unwrap_or(0o666));
    // An existing node (from the image) is replaced: its type or numbers
    // may differ from what the config asks for.
    let _ = nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    mknodat(
        dir.as_fd(),
        name,
        kind,
        mode,
        makedev(d.major as u64, d.minor as u64),
    )
    .step("devices", || format!("{}: mknod", what()))?;
    fchownat(
        dir.as_fd(),
        name,
        d.uid.map(Uid::from_raw),
        d.gid.map(Gid::from_raw),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .step("devices", || format!("{}: chown", what()))
}
