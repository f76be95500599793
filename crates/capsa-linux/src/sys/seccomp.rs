//! `seccomp(2)` with `SECCOMP_SET_MODE_FILTER`, called directly.
//!
//! seccompiler's own `apply_filter` always sets `no_new_privs` first. The OCI
//! runtime spec sets it only when `process.noNewPrivileges` is true; without
//! it the kernel accepts a filter from a caller holding `CAP_SYS_ADMIN`, and
//! that is the caller's business, not this wrapper's.
//! <https://man7.org/linux/man-pages/man2/seccomp.2.html>

use std::io;

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
/// malformed program.
pub fn install_filter(prog: &[sock_filter], flags: u32) -> io::Result<()> {
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
        0 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        // Only with SECCOMP_FILTER_FLAG_TSYNC: the id of a thread that
        // could not be synchronised.
        tid => Err(io::Error::other(format!(
            "seccomp: thread {tid} could not be synchronised"
        ))),
    }
}
