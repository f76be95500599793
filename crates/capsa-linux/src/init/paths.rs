//! Path resolution inside the container's root that never leaves it.
//!
//! A rootfs is untrusted: any component of a mount destination may be a
//! symlink to `/etc` on the host, or be swapped for one while we work (the
//! CVE-2021-30465 class). So every path inside the root is opened with
//! openat2(RESOLVE_IN_ROOT), which resolves `..` and symlinks as if the root
//! were `/`, and the mount then targets the opened fd through
//! `/proc/self/fd/N`, not the path: what we checked is what we mount on.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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
    mkdir_rel(root.as_fd(), &relative(path), mode)
}

/// [`mkdir_all`] of `rel`, relative to the root. Most destinations exist
/// already (an image has /proc, /dev and /sys): one openat2 of the whole
/// path answers then. On ENOENT the parent is made the same way (so only
/// the missing tail is walked), then the last component inside it: mkdirat
/// creates a name inside an fd resolved in the root (an existing symlink
/// there is EEXIST, never followed), and the whole path is resolved from
/// the root again, so a symlink or `..` component stays inside the root.
fn mkdir_rel(root: BorrowedFd<'_>, rel: &Path, mode: Mode) -> nix::Result<OwnedFd> {
    let open_dir = |p: &Path| {
        openat2_retry(
            root,
            p,
            how(OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()),
        )
    };
    match open_dir(rel) {
        Err(Errno::ENOENT) => {}
        done => return done,
    }
    let mut components = rel.components();
    let Some(last) = components.next_back() else {
        return Err(Errno::ENOENT);
    };
    let parent = components.as_path();
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let dir = mkdir_rel(root, parent, mode)?;
    if let Component::Normal(name) = last {
        match mkdirat(dir.as_fd(), name, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    open_dir(rel)
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

    #[test]
    fn only_the_missing_tail_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let rootfd = fs::File::open(root).unwrap();
        let mode = Mode::from_bits_truncate(0o755);
        mkdir_all(&rootfd, Path::new("/a/b/c"), mode).unwrap();
        assert!(root.join("a/b/c").is_dir());
        // Existing: the same directory comes back, nothing else appears.
        let fd = mkdir_all(&rootfd, Path::new("/a/b"), mode).unwrap();
        let seen = fs::read_link(fd_path(&fd)).unwrap();
        assert_eq!(seen, root.join("a/b"));
        // A trailing `..` names the parent of what it follows, made if missing.
        let fd = mkdir_all(&rootfd, Path::new("/d/e/.."), mode).unwrap();
        assert_eq!(fs::read_link(fd_path(&fd)).unwrap(), root.join("d"));
        assert!(root.join("d/e").is_dir());
        // A file in the way is an error, not replaced.
        fs::write(root.join("f"), "").unwrap();
        assert_eq!(
            mkdir_all(&rootfd, Path::new("/f/g"), mode).unwrap_err(),
            Errno::ENOTDIR
        );
    }
}
