//! `seccomp(2)` with `SECCOMP_SET_MODE_FILTER`, called directly.
//!
//! seccompiler's own `apply_filter` always sets `no_new_privs` first. The OCI
//! runtime spec sets it only when `process.noNewPrivileges` is true; without
//! it the kernel accepts a filter from a caller holding `CAP_SYS_ADMIN`, and
//! that is the caller's business, not this wrapper's.
//! <https://man7.org/linux/man-pages/man2/seccomp.2.html>

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use seccompiler::sock_filter;

/// `struct sock_fprog` from `<linux/filter.h>`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const sock_filter,
}

/// Installs one classic-BPF seccomp program on the calling thread (and the
/// children it creates from now on). `flags` are `SECCOMP_FILTER_FLAG_*`.
///
/// Fails with `EACCES` when the thread has neither `no_new_privs` set nor
/// `CAP_SYS_ADMIN` in its user namespace, and with `EINVAL` for an empty or
/// malformed program or a flag this kernel does not know.
pub fn install_filter(prog: &[sock_filter], flags: u32) -> io::Result<()> {
    seccomp_set_mode_filter(prog, flags).map(drop)
}

/// [`install_filter`] with `SECCOMP_FILTER_FLAG_NEW_LISTENER` added: returns
/// the listener, the fd a supervisor reads the filter's `USER_NOTIF`
/// notifications from (close-on-exec, as the kernel makes it). `EBUSY` when
/// a filter already installed on this thread has a listener: the kernel
/// allows one per filter chain.
pub fn install_filter_with_listener(prog: &[sock_filter], flags: u32) -> io::Result<OwnedFd> {
    let fd = seccomp_set_mode_filter(prog, flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32)?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd
    // that the kernel installed in our table for us alone; nothing else owns
    // it, so the OwnedFd is its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: its non-negative result.
fn seccomp_set_mode_filter(prog: &[sock_filter], flags: u32) -> io::Result<libc::c_long> {
    let len = libc::c_ushort::try_from(prog.len())
        .ok()
        .filter(|&len| len > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    // SAFETY: `fprog` points at `len` initialised `sock_filter`s (a
    // `#[repr(C)]` struct laid out like the kernel's) that outlive the call;
    // the kernel copies the program and keeps no pointer into our memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_uint::from(flags),
            &fprog as *const SockFprog,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        // Only with SECCOMP_FILTER_FLAG_TSYNC, which capsa never passes: the
        // id of a thread that could not be synchronised.
        tid if tid > 0 && flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 => Err(
            io::Error::other(format!("seccomp: thread {tid} could not be synchronised")),
        ),
        ret => Ok(ret),
    }
}
