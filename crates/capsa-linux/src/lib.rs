//! capsa-linux: everything capsa does on Linux to make an OCI bundle a
//! running container, usable in-process by any Rust program.
//!
//! The flow is one way: `config.json` → [`capsa_spec::ValidSpec`] →
//! [`plan::InitPlan`] → the container init carries the plan out → exec.
//! [`Runtime`] is the entry point; each lifecycle operation of the runtime
//! spec is one method.
//!
//! ```no_run
//! use capsa_linux::{CreateOptions, Runtime};
//!
//! let rt = Runtime::new("/run/capsa");
//! let opts = CreateOptions { id: "demo".into(), bundle: "/tmp/bundle".into(), ..Default::default() };
//! let pid = rt.create(&opts)?;
//! println!("init is pid {pid}, status {}", rt.state("demo")?.status);
//! rt.start("demo")?;
//! rt.kill("demo", libc::SIGTERM, false)?;
//! rt.delete("demo", true)?;
//! # Ok::<(), capsa_linux::Error>(())
//! ```

pub mod cgroups;
mod error;
pub mod exe_guard;
pub mod features;
pub mod hooks;
mod init;
mod lifecycle;
mod mount_options;
pub mod plan;
pub mod procfs;
pub mod protocol;
pub mod rfc3339;
pub mod seccomp;
pub mod seccomp_eval;
pub mod seccomp_notify;
pub mod state;
pub mod sys;

use std::path::PathBuf;

pub use error::Error;
pub use lifecycle::{
    parse_signal, ContainerStatus, Event, EventKind, EventStream, ExecOptions, ExecOverrides,
    ExecProcess, Held, StateReport,
};
pub use plan::{Console, CreateOptions};

/// A state root and the host paths capsa reads, each a parameter so that
/// tests can point them at fake trees.
#[derive(Debug, Clone)]
pub struct Runtime {
    state: state::StateRoot,
    proc_root: PathBuf,
    sys_root: PathBuf,
    /// May re-execute this process from a sealed copy of its binary when a
    /// container needs that defence (`exe_guard`); only a program whose
    /// arguments mean the same again (the capsa command) should allow it.
    reexec_sealed: bool,
    cgroup_manager: cgroups::Manager,
}

impl Runtime {
    /// A runtime keeping its state under `root` (runc's `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Runtime {
            state: state::StateRoot::new(root),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            reexec_sealed: false,
            cgroup_manager: cgroups::Manager::Cgroupfs,
        }
    }

    /// Lets `create`, `run` and `exec` re-execute the process, with the same
    /// arguments and environment, from a sealed copy of its binary when the
    /// container needs it (CVE-2019-5736, see `exe_guard`). Without this,
    /// such a container is refused with an error saying why.
    pub fn reexec_when_sealed_copy_needed(mut self) -> Self {
        self.reexec_sealed = true;
        self
    }

    /// Reads process facts from another `/proc` (for tests).
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    /// Reads host facts from another `/sys` (for tests).
    pub fn with_sys_root(mut self, sys_root: impl Into<PathBuf>) -> Self {
        self.sys_root = sys_root.into();
        self
    }

    /// Who makes the cgroups of containers this runtime creates (runc's
    /// `--systemd-cgroup`). Later commands follow what `create` recorded.
    pub fn with_cgroup_manager(mut self, manager: cgroups::Manager) -> Self {
        self.cgroup_manager = manager;
        self
    }

    /// The state root.
    pub fn root(&self) -> &std::path::Path {
        self.state.path()
    }
}
