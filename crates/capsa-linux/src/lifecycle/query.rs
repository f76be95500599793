//! `state` and `list`: a container's status is derived, never stored, so it
//! cannot go stale: the init alive (same pid *and* start time, not a zombie)
//! in a frozen cgroup is `paused`, alive with the exec fifo present
//! `created`, alive without it `running`, and anything else `stopped`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::state::{ContainerDir, ContainerState};
use crate::{procfs, Runtime};

/// The runtime spec's container statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
    Stopped,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON `capsa state` prints (runtime spec "State", plus runc's
/// `rootfs`, `created` and `owner`, which go-runc and CRI-O decode).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    /// 0 once stopped, as runc reports it.
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

impl Runtime {
    pub(crate) fn status_of(&self, dir: &ContainerDir, st: &ContainerState) -> ContainerStatus {
        if !procfs::is_alive(&self.proc_root, st.init_pid, st.init_start_time) {
            ContainerStatus::Stopped
        } else if st.cgroup.is_frozen().unwrap_or_else(|e| {
            tracing::debug!("cannot read the freezer state: {e}");
            false
        }) {
            // Before `created`, as runc: a created container can be paused.
            ContainerStatus::Paused
        } else if dir.fifo_path().exists() {
            ContainerStatus::Created
        } else {
            ContainerStatus::Running
        }
    }

    /// The state of one container.
    pub fn state(&self, id: &str) -> Result<StateReport, Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        Ok(self.report(&dir, &st))
    }

    fn report(&self, dir: &ContainerDir, st: &ContainerState) -> StateReport {
        let status = self.status_of(dir, st);
        StateReport {
            oci_version: st.spec.oci_version.clone(),
            id: st.id.clone(),
            status: status.as_str().to_string(),
            pid: if status == ContainerStatus::Stopped {
                0
            } else {
                st.init_pid
            },
            bundle: st.spec.bundle.display().to_string(),
            rootfs: st.spec.root.path.display().to_string(),
            created: st.created.clone(),
            annotations: st.spec.annotations.clone(),
            owner: String::new(),
        }
    }

    /// Host pids of every process in the container's cgroup (`ps`).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, Error> {
        let dir = self.state.open(id)?;
        Ok(dir.load()?.cgroup.pids()?)
    }

    /// Every container under the state root, by id. A container that
    /// vanishes while we list is left out.
    pub fn list(&self) -> Result<Vec<StateReport>, Error> {
        let mut out = Vec::new();
        for id in self.state.ids()? {
            let Ok(dir) = self.state.open(&id) else {
                continue;
            };
            let Ok(st) = dir.load() else { continue };
            out.push(self.report(&dir, &st));
        }
        Ok(out)
    }
}
