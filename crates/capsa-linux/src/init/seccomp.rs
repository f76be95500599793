//! Loading the seccomp filters in the init (and in an `exec`'d process),
//! and handing a NOTIFY filter's listener to the parent.
//!
//! When: without `no_new_privs`, loading needs CAP_SYS_ADMIN, so it happens
//! in step 7 before the capabilities are dropped (`process.rs`). With
//! `no_new_privs` it happens as late as possible, so that the filter
//! constrains the program and as little of our setup as possible: just
//! before exec (after `start`), or, when a filter has a listener, at the end
//! of step 7, after no_new_privs is set and just before Ready, because the
//! listener must reach the parent while the init pipe is still open (the
//! parent exits at step 8). Every fd is marked close-on-exec first, since
//! the filter may forbid close_range (CVE-2024-21626).

use super::{failure, process};
use crate::protocol::{Channel, InitFailure, Msg};
use crate::seccomp::BpfProgram;

/// Marks the fds close-on-exec, loads `filters` and, for a NOTIFY filter,
/// sends its listener to the parent at once (step 7a, or E4 for `exec`): a
/// notified call of ours before that would wait for a supervisor that does
/// not have the listener yet.
pub(super) fn load(
    filters: &[BpfProgram],
    preserve_fds: u32,
    chan: &Channel,
) -> Result<(), InitFailure> {
    process::close_fds_on_exec(preserve_fds)?;
    let listener = crate::seccomp::install(filters).map_err(|e| failure("seccomp", e))?;
    if let Some(fd) = listener {
        chan.send_with_fd(&Msg::SeccompListener, &fd)
            .map_err(|e| failure("seccomp", format!("send the seccomp listener: {e}")))?;
    }
    Ok(())
}

/// Whether one of `filters` has a listener, and so must be loaded before the
/// init pipe closes.
pub(super) fn has_listener(filters: &[BpfProgram]) -> bool {
    filters.iter().any(|f| f.listener)
}
