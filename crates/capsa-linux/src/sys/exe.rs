//! Defence against the CVE-2019-5736 class: a container process must never be
//! able to open the capsa binary on the host for writing.
//!
//! capsa forks the container init from its own process, so until the init
//! execs the user's program its `/proc/<pid>/exe` is capsa's binary; and if
//! that program is a script whose interpreter is `/proc/self/exe`, the kernel
//! would run capsa's binary inside the container, where the container can
//! reopen it through `/proc/<pid>/exe` and overwrite it once it exits.
//! So before it forks anything into a container, capsa re-executes itself
//! from a sealed, anonymous copy (a memfd with write, grow and shrink seals):
//! `/proc/self/exe` then names a file nobody can write, ever.
//! The cost is one copy of the binary inside the kernel (`copy_file_range`)
//! and one `execve`; `docs/architecture.md` gives the figures. Where the
//! rules of `exe_guard` allow it, capsa avoids that cost: the container
//! process's last exec goes through the exec trampoline instead
//! ([`sealed_trampoline`], [`exec_through`]).

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

fn seals_of(file: &File) -> Option<SealFlag> {
    fcntl(file, FcntlArg::F_GET_SEALS)
        .ok()
        .map(SealFlag::from_bits_truncate)
}

/// True when this process runs from a sealed copy of capsa.
pub fn is_sealed_exe() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|f| seals_of(&f))
        .is_some_and(|s| s.contains(SealFlag::F_SEAL_WRITE))
}

/// Re-executes this process, with the same arguments and environment, from a
/// sealed memfd copy of its binary, unless it already runs from one. Returns
/// only when nothing had to be done; on success of the re-exec it never returns.
pub fn ensure_sealed_exe() -> io::Result<()> {
    let mut exe = File::open("/proc/self/exe")?;
    if seals_of(&exe).is_some_and(|s| s.contains(SealFlag::F_SEAL_WRITE)) {
        return Ok(());
    }
    let memfd = memfd_create(
        c"capsa",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut copy = File::from(memfd);
    io::copy(&mut exe, &mut copy)?;
    seal(&copy)?;
    let args = to_cstrings(std::env::args_os())?;
    let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    nix::unistd::fexecve(&copy, &args, &env)?;
    unreachable!("fexecve returned without an error")
}

/// The exec trampoline (`trampoline/main.rs`), built by `build.rs`.
const TRAMPOLINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/capsa-trampoline"));

/// A sealed, close-on-exec memfd holding the exec trampoline: nobody can
/// write to it, so a process running it cannot be used to reach any file of
/// the host (CVE-2019-5736).
pub fn sealed_trampoline() -> io::Result<OwnedFd> {
    let memfd = memfd_create(
        c"capsa-exec",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut file = File::from(memfd);
    file.write_all(TRAMPOLINE)?;
    seal(&file)?;
    Ok(OwnedFd::from(file))
}

/// What the trampoline writes to the report fd when it cannot exec the
/// program: `prefix`, the errno in decimal, `suffix`, in one write.
pub struct TrampolineReport<'a> {
    pub fd: BorrowedFd<'a>,
    pub prefix: &'a CStr,
    pub suffix: &'a CStr,
}

/// Execs `path` with `args` and `env` through the trampoline in `trampoline`
/// (see `trampoline/main.rs` for the argument layout). The report fd is
/// made inheritable here; the trampoline marks it close-on-exec again before
/// it execs the program, so the reader sees EOF exactly when the program
/// runs. Returns only on failure.
pub fn exec_through(
    trampoline: BorrowedFd<'_>,
    report: &TrampolineReport<'_>,
    path: &CStr,
    args: &[CString],
    env: &[CString],
) -> nix::Error {
    use nix::fcntl::{AtFlags, FdFlag};
    if let Err(e) = fcntl(report.fd, FcntlArg::F_SETFD(FdFlag::empty())) {
        return e;
    }
    let fd_arg = match CString::new(report.fd.as_raw_fd().to_string()) {
        Ok(s) => s,
        Err(_) => return nix::Error::EINVAL,
    };
    let mut argv: Vec<&CStr> = vec![&fd_arg, report.prefix, report.suffix, path];
    argv.extend(args.iter().map(CString::as_c_str));
    match nix::unistd::execveat(trampoline.as_fd(), c"", &argv, env, AtFlags::AT_EMPTY_PATH) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Seals `file` against writes, growing and shrinking, and further seals.
/// F_SEAL_WRITE fails with EBUSY while pages just written still hold an
/// extra reference (the kernel waits for them only briefly); seen once in
/// 100 parallel creates. It is retried a few times, 1 ms apart.
fn seal(file: &File) -> io::Result<()> {
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    let mut tries = 0;
    loop {
        match fcntl(file, FcntlArg::F_ADD_SEALS(seals)) {
            Err(nix::Error::EBUSY) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => return other.map(drop).map_err(io::Error::from),
        }
    }
}

fn to_cstrings(items: impl Iterator<Item = OsString>) -> io::Result<Vec<CString>> {
    items
        .map(|s| {
            CString::new(s.into_vec()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        })
        .collect()
}
