//! The library's error: one variant per module error, plus the lifecycle
//! refusals whose wording clients match on (cli-contract.md: "does not
//! exist", "container not running", "that is not stopped").

use std::io;
use std::path::PathBuf;

use crate::cgroups::CgroupError;
use crate::hooks::HookError;
use crate::plan::PlanError;
use crate::protocol::{InitFailure, ProtocolError};
use crate::state::StateError;

/// Everything that can go wrong in a capsa operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] capsa_spec::SpecError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    SeccompNotify(#[from] crate::seccomp_notify::NotifyError),
    /// The container init failed during setup; runc's prefix, which users and
    /// scripts know.
    #[error("unable to start container process: {0}")]
    Init(InitFailure),
    #[error("{kind} hook #{index} failed: {source}")]
    Hook {
        kind: &'static str,
        index: usize,
        source: HookError,
    },
    #[error("root.path {}: {reason}", path.display())]
    Rootfs { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Sys { what: String, source: io::Error },
    #[error("container not running")]
    NotRunning,
    /// runc's wording: "cannot exec in a paused container".
    #[error("cannot {0} a paused container")]
    Paused(&'static str),
    /// `resume` of a container that is not paused (runc's wording).
    #[error("container not paused")]
    NotPaused,
    #[error("cannot start container {id}: it is {status}, not created")]
    NotCreated { id: String, status: String },
    #[error("cannot start container {id}: config.json has no process to run")]
    NoProcess { id: String },
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("container {id}: the init process exited before it could be started")]
    InitGone { id: String },
    #[error("container {id}: processes still alive after SIGKILL: {pids:?}")]
    StillAlive { id: String, pids: Vec<i32> },
    #[error("{0} is not supported by capsa yet")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }
}
