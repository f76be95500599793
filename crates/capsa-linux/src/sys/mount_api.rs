//! The new mount API calls idmapped mounts need: `open_tree(2)` makes a
//! detached copy of a mount (tree), `move_mount(2)` attaches it somewhere.
//! The id mapping itself is `mount_setattr(MOUNT_ATTR_IDMAP)` (`mount_attr.rs`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `mount_attr.attr_set` bit: the mount gets the mappings of the user
/// namespace whose fd is in `mount_attr.userns_fd`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x0000_0040;

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
/// [| AT_RECURSIVE])`: a detached bind mount of `path` (with every mount
/// below it when `recursive`, as `rbind`), attached nowhere until
/// [`move_mount_to`].
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `path` is a NUL-terminated string that lives for the whole
    // call; the other arguments are integers.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success open_tree returns a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH |
/// MOVE_MOUNT_T_EMPTY_PATH)`: attaches the detached mount `tree` on the
/// file or directory `target` is an (`O_PATH`) fd of. No path is resolved:
/// the mount lands exactly where `target` was opened.
pub fn move_mount_to(tree: &impl AsFd, target: &impl AsFd) -> io::Result<()> {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are the empty NUL-terminated string (the *_EMPTY_PATH
    // flags make the calls act on the fds themselves), and both fds are
    // borrowed for the whole call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            target.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
