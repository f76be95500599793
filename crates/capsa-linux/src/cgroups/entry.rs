//! How a process capsa forks (the container init, an exec'd process) comes
//! to be in the container's cgroup without a migration that waits on the
//! kernel.
//!
//! Writing another process's pid to `cgroup.procs` write-locks the kernel's
//! global `cgroup_threadgroup_rwsem`, and the first such write after a quiet
//! spell waits for an RCU grace period: 9-23 ms measured on this kind of
//! host, more than a whole `capsa run`. Two ways avoid that lock:
//!
//! - cgroup2: clone3(CLONE_INTO_CGROUP) makes the child inside the cgroup
//!   (`sys::clone_into_cgroup`), on a pure v2 host and for the cgroup2 part
//!   of a hybrid one.
//! - cgroup v1: a thread that moves itself (`tasks` <- `0`) does not take the
//!   lock, which only keeps a thread group from changing under a move of
//!   another process; 20-40 µs here. The child is single-threaded (capsa
//!   starts no threads), so moving its one thread moves the whole process.
//!   The parent opens the `tasks` files, so permission is checked against
//!   its credentials, and the child writes to them first thing
//!   ([`SelfJoin::join`]), before it runs anything else. On a kernel that
//!   still takes the lock for this write, it is merely as slow as before.
//!
//! A cgroup of the systemd driver is joined by systemd (the unit is made
//! around the pid), so there is no entry for it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use super::{CgroupError, ContainerCgroup};

/// What a fork needs to start inside the container's cgroup, opened by the
/// parent before the fork.
#[derive(Debug)]
pub struct Entry {
    /// The cgroup2 directory, for clone3(CLONE_INTO_CGROUP).
    v2_dir: Option<(PathBuf, OwnedFd)>,
    /// The v1 `tasks` files the child writes `0` to.
    v1_tasks: SelfJoin,
}

/// The child's part of an [`Entry`]: the opened v1 `tasks` files.
#[derive(Debug, Default)]
pub struct SelfJoin(Vec<(PathBuf, OwnedFd)>);

impl ContainerCgroup {
    /// Opens what a fork needs to start inside this cgroup; `None` for the
    /// systemd driver. The directories must exist (`create` made them).
    pub fn open_entry(&self) -> Result<Option<Entry>, CgroupError> {
        self.open_entry_where(true, true)
    }

    /// [`ContainerCgroup::open_entry`] without the v1 part: for a child
    /// forked before the v1 directories exist, which joins them later
    /// itself ([`ContainerCgroup::open_self_join`] then).
    pub fn open_entry_v2(&self) -> Result<Option<Entry>, CgroupError> {
        self.open_entry_where(false, true)
    }

    /// The v1 part alone, opened by the child itself once the directories
    /// exist; empty for the systemd driver, whose unit holds the child.
    pub fn open_self_join(&self) -> Result<SelfJoin, CgroupError> {
        Ok(self
            .open_entry_where(true, false)?
            .map(Entry::into_self_join)
            .unwrap_or_default())
    }

    fn open_entry_where(&self, v1: bool, v2: bool) -> Result<Option<Entry>, CgroupError> {
        if self.systemd.is_some() {
            return Ok(None);
        }
        let mut v2_dir = None;
        let mut v1_tasks = Vec::new();
        for h in self
            .hierarchies
            .iter()
            .filter(|h| if h.is_v2 { v2 } else { v1 })
        {
            let (path, flags) = if h.is_v2 {
                (h.dir.clone(), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            } else {
                (h.dir.join("tasks"), OFlag::O_WRONLY)
            };
            let fd = open(&path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
                CgroupError::OpenEntry {
                    path: path.clone(),
                    source: e.into(),
                }
            })?;
            if h.is_v2 {
                v2_dir = Some((path, fd));
            } else {
                v1_tasks.push((path, fd));
            }
        }
        Ok(Some(Entry {
            v2_dir,
            v1_tasks: SelfJoin(v1_tasks),
        }))
    }

    /// The cgroup lives in cgroup2 alone (a pure v2 host).
    pub fn is_v2_only(&self) -> bool {
        self.hierarchies.iter().all(|h| h.is_v2)
    }

    /// Moves `pid` into the container's cgroup2 directory only: for a child
    /// that was not born there (the kernel refused clone3) and joins its v1
    /// hierarchies itself.
    pub fn add_process_v2(&self, pid: i32) -> Result<(), CgroupError> {
        self.add_process_where(pid, |h| h.is_v2)
    }
}

impl Entry {
    /// The cgroup2 directory to clone into, if the cgroup has one.
    pub fn v2_dir(&self) -> Option<(&Path, BorrowedFd<'_>)> {
        self.v2_dir
            .as_ref()
            .map(|(p, fd)| (p.as_path(), fd.as_fd()))
    }

    /// The child's part; the parent drops the rest.
    pub fn into_self_join(self) -> SelfJoin {
        self.v1_tasks
    }
}

impl SelfJoin {
    /// The fds the child must keep open until it has joined.
    pub fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.0.iter().map(|(_, fd)| fd.as_raw_fd())
    }

    /// In the child: moves this (single-threaded) process into every v1
    /// hierarchy. On failure, the `tasks` file that refused it.
    pub fn join(self) -> Result<(), (PathBuf, io::Error)> {
        for (path, fd) in self.0 {
            match nix::unistd::write(&fd, b"0") {
                Ok(_) => {}
                Err(e) => return Err((path, e.into())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_writes_zero_to_every_tasks_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for name in ["cpu", "memory"] {
            let path = tmp.path().join(name);
            std::fs::write(&path, "").unwrap();
            let fd = open(&path, OFlag::O_WRONLY, Mode::empty()).unwrap();
            files.push((path, fd));
        }
        SelfJoin(files).join().unwrap();
        for name in ["cpu", "memory"] {
            assert_eq!(std::fs::read_to_string(tmp.path().join(name)).unwrap(), "0");
        }
    }

    #[test]
    fn a_refused_write_names_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tasks");
        std::fs::write(&path, "").unwrap();
        // Opened read-only: the write fails with EBADF, as a refused move
        // fails with its own errno.
        let fd = open(&path, OFlag::O_RDONLY, Mode::empty()).unwrap();
        let (failed, err) = SelfJoin(vec![(path.clone(), fd)]).join().unwrap_err();
        assert_eq!(failed, path);
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
