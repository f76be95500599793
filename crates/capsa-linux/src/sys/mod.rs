//! The only module of capsa-linux with `unsafe` code: small wrappers around
//! the raw system calls nix does not cover safely. Each wrapper names its
//! syscall and returns `std::io::Error` with the OS errno; callers add the
//! context (what, where) a user needs.
#![allow(unsafe_code)]

pub mod bpf;
mod exe;
pub mod fdpass;
pub mod mount_api;
pub mod mount_attr;
pub mod netlink;
pub mod netlink_msg;
pub mod sched;
pub mod seccomp;
pub mod seccomp_notify;
pub mod tty;

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

pub use exe::{
    ensure_sealed_exe, exec_through, is_sealed_exe, sealed_trampoline, TrampolineReport,
};

/// The result of [`clone_process`] in each of the two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent: the child's pid, as seen from the parent.
    Parent(i32),
    /// In the child.
    Child,
}

/// `clone(2)` without a new stack, like `fork(2)`, but creating the namespaces
/// in `namespace_flags` (`CLONE_NEW*`) for the child at the same time.
///
/// The caller must be single-threaded: the child gets a copy of this thread
/// only, so a lock held by another thread (the allocator's, stdio's) would stay
/// locked forever in the child. capsa starts no threads before it forks.
pub fn clone_process(namespace_flags: libc::c_int) -> io::Result<Forked> {
    let flags = (namespace_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack pointer the kernel gives the child a
    // copy-on-write copy of our stack, exactly as fork(2) does; no pointer
    // arguments are passed (parent_tid, child_tid and tls are null and unused
    // because no CLONE_*SETTID/CLONE_SETTLS flag is set). The process is
    // single-threaded (see above), so the child's heap and locks are consistent.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `struct clone_args` of clone3(2), up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7): the child starts in the cgroup2
/// directory `clone_args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone_process`] with clone3(2) and CLONE_INTO_CGROUP: the child is born
/// in the cgroup2 directory `cgroup` (an open directory fd), so it never runs
/// outside it and no migration (a `cgroup.procs` write, which can wait for
/// an RCU grace period) is needed. Fails without creating a child where the
/// kernel lacks clone3 or the flag (ENOSYS, E2BIG, EINVAL): callers fall back
/// to [`clone_process`] and a `cgroup.procs` write.
pub fn clone_into_cgroup(
    namespace_flags: libc::c_int,
    cgroup: std::os::fd::BorrowedFd<'_>,
) -> io::Result<Forked> {
    use std::os::fd::AsRawFd;
    let args = CloneArgs {
        flags: u64::from(namespace_flags as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid, initialised clone_args of the size passed.
    // With stack 0 and no CLONE_VM the child gets a copy-on-write copy of our
    // stack and memory, as with fork(2) (see clone_process on why the caller
    // must be single-threaded); no pointer in `args` is used (pidfd, tids,
    // tls and set_tid are 0, and their flags are not set).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `close_range(2)`: closes every fd from `first` upwards, except those in
/// `keep`. Used in the container init so that no fd of capsa (a lock, the
/// state dir) survives into the container.
pub fn close_fds_from(first: RawFd, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    let mut from = first;
    for fd in keep {
        if fd > from {
            close_range(from as u32, (fd - 1) as u32, 0)?;
        }
        from = fd + 1;
    }
    close_range(from as u32, u32::MAX, 0)
}

/// Marks every fd from `first` upwards close-on-exec, so that nothing capsa
/// opened reaches the container's program (the CVE-2024-21626 class).
pub fn cloexec_fds_from(first: RawFd) -> io::Result<()> {
    close_range(first as u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)
}

fn close_range(first: u32, last: u32, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: close_range takes integers only; closing fds this process owns
    // is the intent, and no Rust object of ours refers to them afterwards
    // (callers run it where every remaining OwnedFd is in `keep`).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `pidfd_open(2)`: an fd that becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; on success the kernel returns a new fd
    // that nothing else owns.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ret` is a fresh, valid fd owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `pidfd_send_signal(2)`: signals the process behind `pidfd`, which cannot
/// be a recycled pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd we own, a signal number, and a null siginfo,
    // which the kernel documents as "like kill(2)".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setdomainname(2)`, which nix does not wrap.
pub fn set_domainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which live for
    // the whole call; the kernel copies them.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: gives the container its own
/// session keyring, so it cannot read the keys of the caller's session.
pub fn join_session_keyring(name: &str) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a valid NUL-terminated string for the whole call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `_exit(2)`: leaves the process at once, without running atexit handlers
/// or flushing stdio buffers that the parent process also holds copies of.
/// The container init's forked helpers end this way.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no memory of ours.
    unsafe { libc::_exit(code) }
}
