//! Path resolution inside the container's root that never leaves it.
//!
//! A rootfs is untrusted: any component of a mount destination may be a
//! symlink to `/etc` on the host, or be swapped for one while we work (the
//! CVE-2021-30465 class). So every path inside the root is opened with
//! openat2(RESOLVE_IN_ROOT), which resolves `..` and symlinks as if the root
//! were `/`, and the mount then targets the opened fd through
//! `/proc/self/fd/N`, not the path: what we checked is what we mount on.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// openat2(2) with RESOLVE_IN_ROOT fails with EAGAIN when a rename
/// anywhere on the system races its `..` resolution; the man page says to
/// retry. Bounded, so a host renaming without pause cannot hang us.
fn openat2_retry(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &Path,
    how: OpenHow,
) -> nix::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match openat2(dir, path, how) {
            Err(Errno::EAGAIN) if tries < 128 => tries += 1,
            other => return other,
        }
    }
}

fn how(flags: OFlag, mode: Mode) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// `path` (absolute inside the container) relative to the root, for openat2.
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Opens `path` inside `root` as an `O_PATH` fd.
pub fn open_path(root: &impl AsFd, path: &Path) -> nix::Result<OwnedFd> {
    openat2_retry(
        root.as_fd(),
        &relative(path),
        how(OFlag::O_PATH, Mode::empty()),
    )
}

/// Creates every missing directory of `path` inside `root` and returns an
/// `O_PATH` fd of the last one.
pub fn mkdir_all(root: &impl AsFd, path: &Path, mode: Mode) -> nix::Result<OwnedFd> {
    // Most destinations exist already (an image has /proc, /dev, /sys; /dev
    // is a fresh tmpfs only once): one openat2 of the whole path, resolved
    // inside the root as every step below is, answers then. Only a missing
    // component sends us down the walk that creates it.
    match openat2_retry(
        root.as_fd(),
        &relative(path),
        how(OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()),
    ) {
        Err(Errno::ENOENT) => {}
        done => return done,
    }
    let mut dir = openat2_retry(
        root.as_fd(),
        Path::new("."),
        how(OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()),
    )?;
    let mut so_far = PathBuf::new();
    for comp in relative(path).components() {
        let name = comp.as_os_str();
        if name == "." {
            continue;
        }
        // mkdirat creates `name` inside `dir` (an existing symlink there is
        // EEXIST, never followed); then the path so far is resolved from the
        // root again, so a symlink or `..` component stays inside the root.
        match mkdirat(dir.as_fd(), name, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        so_far.push(name);
        dir = openat2_retry(
            root.as_fd(),
            &so_far,
            how(OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()),
        )?;
    }
    Ok(dir)
}

/// Creates an empty regular file at `path` inside `root` (for a bind mount
/// of a file) unless something exists there; returns an `O_PATH` fd of it.
pub fn create_file(root: &impl AsFd, path: &Path) -> nix::Result<OwnedFd> {
    // Something there already: that is the mount point (see `mkdir_all`).
    match open_path(root, path) {
        Err(Errno::ENOENT) => {}
        done => return done,
    }
    if let Some(parent) = path.parent() {
        mkdir_all(root, parent, Mode::from_bits_truncate(0o755))?;
    }
    match openat2_retry(
        root.as_fd(),
        &relative(path),
        how(
            OFlag::O_CREAT | OFlag::O_RDONLY,
            Mode::from_bits_truncate(0o644),
        ),
    ) {
        Ok(_) | Err(Errno::EISDIR) => open_path(root, path),
        Err(e) => Err(e),
    }
}

/// The magic-link path through which mount(2) reaches an opened fd.
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn symlinks_cannot_leave_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("real")).unwrap();
        // An absolute symlink to a host directory, a relative one climbing
        // far above the root, and one to a directory inside the root.
        std::os::unix::fs::symlink(outside.path(), root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("in")).unwrap();
        let rootfd = fs::File::open(&root).unwrap();
        let mode = Mode::from_bits_truncate(0o755);
        // etc -> <outside> is resolved inside the root, where that path does
        // not exist: refused, and nothing appears in the real outside dir.
        assert!(mkdir_all(&rootfd, Path::new("/etc/sub"), mode).is_err());
        assert!(!outside.path().join("sub").exists());
        // `..` above the root stays at the root.
        mkdir_all(&rootfd, Path::new("/up/x"), mode).unwrap();
        assert!(root.join("x").is_dir());
        create_file(&rootfd, Path::new("/up/f")).unwrap();
        assert!(root.join("f").is_file());
        // A symlink inside the root is followed inside the root.
        mkdir_all(&rootfd, Path::new("/in/y"), mode).unwrap();
        assert!(root.join("real/y").is_dir());
    }
}
