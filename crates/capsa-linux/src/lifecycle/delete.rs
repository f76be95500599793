//! `delete`: kill what is left, run the poststop hooks, and remove the
//! cgroup and the state.
//!
//! A `created` container is deleted like a stopped one, as runc does (its
//! init is killed first): containerd's shim deletes tasks that were created
//! and never started with a plain `delete`. A running one needs `--force`.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{hook_state, kill_all, run_hooks_warn, wait_gone, ContainerStatus};
use crate::error::Error;
use crate::state::{ContainerDir, ContainerState, StateError};
use crate::Runtime;

impl Runtime {
    /// Deletes a container. With `force`, a running one is killed first and
    /// an unknown id is not an error. Returns poststop warnings.
    pub fn delete(&self, id: &str, force: bool) -> Result<Vec<String>, Error> {
        let dir = match self.state.open(id) {
            Err(StateError::NotFound(_) | StateError::Interrupted(_)) if force => {
                return self.remove_abandoned(id)
            }
            other => other?,
        };
        let st = dir.load()?;
        let status = self.status_of(&dir, &st);
        if matches!(status, ContainerStatus::Running | ContainerStatus::Paused) && !force {
            return Err(Error::NotStopped {
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        Ok(self.destroy(dir, &st, status != ContainerStatus::Stopped))
    }

    /// Deletes a container whose init this process saw exit (`run`, with
    /// the state [`Runtime::start_held`] returned), without reading the
    /// state back. Gone already (another `delete`): nothing to do.
    pub fn delete_stopped(&self, st: &ContainerState) -> Result<Vec<String>, Error> {
        match self.state.open(&st.id) {
            Err(StateError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
            Ok(dir) => Ok(self.destroy(dir, st, false)),
        }
    }

    /// Kills (when `kill_first`), waits, runs poststop hooks, removes the
    /// cgroup and the state dir. Cleanup carries on past errors, which are
    /// returned as warnings: a half-deleted container is worse.
    pub(crate) fn destroy(
        &self,
        dir: ContainerDir,
        st: &ContainerState,
        kill_first: bool,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        if kill_first {
            let _ = kill(Pid::from_raw(st.init_pid), Signal::SIGKILL);
        }
        // Without its own pid namespace, the init's death does not take the
        // other processes with it.
        kill_all(&st.cgroup);
        super::fault::point("delete:after-kill");
        if !wait_gone(&self.proc_root, st.init_pid, Duration::from_secs(10)) {
            warnings.push(format!(
                "container {}: init {} still alive after SIGKILL",
                st.id, st.init_pid
            ));
        }
        let stopped = hook_state(&st.spec, &st.id, "stopped", st.init_pid);
        warnings.extend(run_hooks_warn(
            "poststop",
            &st.spec.hooks.poststop,
            &stopped,
        ));
        super::fault::point("delete:before-cgroup-removal");
        if let Err(e) = st.cgroup.remove() {
            warnings.push(e.to_string());
        }
        super::fault::point("delete:before-state-removal");
        if let Err(e) = dir.remove() {
            warnings.push(e.to_string());
        }
        warnings
    }

    /// `delete --force` of an id whose `create` died before it wrote
    /// `state.json`: kills what is in the recorded cgroup (an init may be
    /// blocked on the exec fifo for ever), removes the cgroup and the state
    /// dir. Nothing found is not an error.
    fn remove_abandoned(&self, id: &str) -> Result<Vec<String>, Error> {
        let Some(dir) = self.state.open_abandoned(id)? else {
            return Ok(Vec::new());
        };
        let mut warnings = Vec::new();
        if let Some(cgroup) = dir.recorded_cgroup() {
            kill_all(&cgroup);
            if let Err(e) = cgroup.remove() {
                warnings.push(e.to_string());
            }
        }
        dir.remove()?;
        Ok(warnings)
    }
}
