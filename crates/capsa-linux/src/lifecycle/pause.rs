//! `pause` and `resume`: freeze and thaw every process of the container
//! through its cgroup (the v1 freezer or cgroup2's `cgroup.freeze`, see
//! `cgroups/freezer.rs`). `state` then reports `paused`, derived from the
//! freezer like every other status.
//!
//! As runc: a running or created container can be paused; `resume` needs a
//! paused one ("container not paused"); `start` of a paused container is
//! refused like any other non-created one. SIGKILL still works on a paused
//! container: `kill` and `delete --force` thaw it (see [`thaw_to_kill`]).

use super::ContainerStatus;
use crate::cgroups::ContainerCgroup;
use crate::error::Error;
use crate::Runtime;

impl Runtime {
    /// Freezes a running (or created) container; returns once every
    /// process is frozen.
    pub fn pause(&self, id: &str) -> Result<(), Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        match self.status_of(&dir, &st) {
            ContainerStatus::Running | ContainerStatus::Created => Ok(st.cgroup.freeze()?),
            // runc's answer for paused and stopped alike.
            ContainerStatus::Paused | ContainerStatus::Stopped => Err(Error::NotRunning),
        }
    }

    /// Thaws a paused container; returns once it runs again.
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        match self.status_of(&dir, &st) {
            ContainerStatus::Paused => Ok(st.cgroup.thaw()?),
            _ => Err(Error::NotPaused),
        }
    }
}

/// Thaws a frozen container so that a SIGKILL sent (or about to be sent)
/// takes effect: a task frozen by the v1 freezer does not die until it runs
/// (cgroup2's freezer lets SIGKILL through, and thawing is harmless there).
/// Failures are only logged: the caller is killing, not pausing.
pub(crate) fn thaw_to_kill(cg: &ContainerCgroup) {
    match cg.is_frozen() {
        Ok(false) => {}
        Ok(true) => {
            if let Err(e) = cg.thaw() {
                tracing::warn!("cannot thaw the container to kill it: {e}");
            }
        }
        Err(e) => tracing::debug!("cannot read the freezer state: {e}"),
    }
}
