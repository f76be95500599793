//! A terminal for the container's process (`process.terminal`), made inside
//! the container (its `/dev/ptmx`, after the root is entered), so the pty
//! belongs to the container's devpts instance, as clients expect:
//!
//! 1. open the container's `/dev/ptmx`, unlock it, open the slave;
//! 2. apply `consoleSize` to it;
//! 3. for the init, bind the slave over `/dev/console`;
//! 4. send the master over the console socket in the framing runc uses
//!    (go-runc and conmon are strict): one `sendmsg`, a non-empty payload (the
//!    pty's name) and exactly one `SCM_RIGHTS` message carrying one fd;
//! 5. start a new session and make the slave our controlling terminal and
//!    our stdin, stdout and stderr.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, setsid};

use super::paths::{self, fd_path};
use super::StepContext;
use crate::protocol::InitFailure;
use crate::sys;

pub(super) fn setup(
    console: &OwnedFd,
    size: Option<(u16, u16)>,
    bind_dev_console: bool,
) -> Result<(), InitFailure> {
    let step = "terminal";
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .step(step, || "open /dev/ptmx in the container".to_string())?;
    grantpt(&master).step(step, || "grantpt".to_string())?;
    unlockpt(&master).step(step, || "unlockpt".to_string())?;
    let name = ptsname_r(&master).step(step, || "ptsname".to_string())?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)
        .step(step, || format!("open the pty slave {name}"))?
        .into();
    if let Some((rows, cols)) = size {
        sys::tty::set_window_size(&slave, rows, cols).step(step, || {
            "process.consoleSize: set the window size".to_string()
        })?;
    }
    if bind_dev_console {
        let root: OwnedFd = std::fs::File::open("/")
            .step(step, || "open /".to_string())?
            .into();
        let target = paths::create_file(&root, Path::new("/dev/console"))
            .step(step, || "create /dev/console".to_string())?;
        mount(
            Some(name.as_str()),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(step, || format!("bind {name} over /dev/console"))?;
    }
    sys::fdpass::send_fd(console, name.as_bytes(), &master).step(step, || {
        "send the pty master over the console socket".to_string()
    })?;
    drop(master);
    setsid().step(step, || "setsid".to_string())?;
    sys::tty::set_controlling_terminal(&slave)
        .step(step, || format!("make {name} the controlling terminal"))?;
    dup2_stdin(&slave).step(step, || "dup the pty slave to stdin".to_string())?;
    dup2_stdout(&slave).step(step, || "dup the pty slave to stdout".to_string())?;
    dup2_stderr(&slave).step(step, || "dup the pty slave to stderr".to_string())?;
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
