//! cgroups: where a container's cgroup lives, the lifecycle of its
//! directories (create, join, list, remove), its resource limits and its
//! freezer.
//!
//! capsa drives cgroupfs directly, or asks systemd for a transient unit and
//! then drives its cgroup the same way (`systemd/`, with `--systemd-cgroup`).
//! The flow is one way:
//!
//! 1. [`CgroupHost::detect`] reads `/proc/self/mountinfo` and
//!    `/proc/self/cgroup` once and finds every hierarchy (v1, hybrid or v2).
//!    It is pure parsing: it touches nothing.
//! 2. [`CgroupHost::container_cgroup`] resolves `linux.cgroupsPath` into a
//!    [`ContainerCgroup`]: one directory per hierarchy. Also free of side
//!    effects, so bad paths are rejected before anything is created.
//!    [`CgroupHost::cgroup_for`] picks the driver: with [`Manager::Systemd`]
//!    the path is `slice:prefix:name` and the directories are where systemd
//!    will put that unit; [`ContainerCgroup::start_unit`] then makes the
//!    unit around the init's pid, before `create`.
//! 3. [`ContainerCgroup::create`], [`ContainerCgroup::add_process`],
//!    [`ContainerCgroup::pids`] and [`ContainerCgroup::remove`] act on those
//!    directories; [`ContainerCgroup::open_entry`] lets a fork start inside
//!    them without a slow migration (`entry.rs`). A `ContainerCgroup` is stored in the container's
//!    `state.json` (serialize it *after* `create`, which records the parent
//!    directories it made), so later commands such as `delete` reload it and
//!    never need to detect the host again.
//! 4. [`ContainerCgroup::apply_resources`] writes `linux.resources` (at
//!    create and `update`; `devices.rs` has the device rules), and
//!    [`ContainerCgroup::freeze`] / [`ContainerCgroup::thaw`] pause and
//!    resume. On a hybrid host each controller is taken from the v1
//!    hierarchy that has it, else from cgroup2 (hugetlb on this kind of
//!    host), see `resources.rs`.
//! 5. [`ContainerCgroup::stats`] and [`ContainerCgroup::oom_kill_count`]
//!    read what the container used, for `events` (`stats/`).
//!
//! Every path is a parameter, so the tests run on fake trees in a tempdir.

mod bpf_devices;
mod devices;
mod dirs;
mod entry;
#[cfg(test)]
mod fake_tree;
mod freezer;
mod host;
mod limits;
mod path;
#[cfg(test)]
mod real_host_tests;
mod resources;
mod stats;
pub mod systemd;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

pub use entry::{Entry, SelfJoin};
pub use host::{CgroupHost, CgroupMode, HostHierarchy};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuSet, CpuUsage, Hugetlb, IntelRdt, Memory, MemoryEntry,
    NetworkInterface, Pids, Stats, Throttling,
};

/// Everything that can go wrong while locating or managing a cgroup. Each
/// message names the file or directory and the operation.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file could not be read (a `/proc` file or a cgroup control file).
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },

    /// A line of `/proc/self/mountinfo` or `/proc/self/cgroup` is malformed.
    #[error("{path} line {line}: {reason}: {text:?}")]
    Parse {
        path: PathBuf,
        line: usize,
        reason: &'static str,
        text: String,
    },

    /// Neither a `cgroup` nor a `cgroup2` filesystem is mounted.
    #[error("no cgroup or cgroup2 filesystem is mounted according to {0}")]
    NoCgroupMounts(PathBuf),

    /// `linux.cgroupsPath` cannot be used.
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// `linux.cgroupsPath` does not fit the cgroup driver: the systemd form
    /// `slice:prefix:name` without `--systemd-cgroup`, or a bad one with it.
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    SystemdPath { path: String, reason: String },

    /// A call to systemd over D-Bus failed.
    #[error("systemd unit {unit}: cannot {action} it: {source}")]
    Systemd {
        unit: String,
        action: &'static str,
        source: systemd::DbusError,
    },

    /// systemd ran the job but it did not succeed.
    #[error("systemd unit {unit}: the {action} job finished with result {result:?}")]
    SystemdJob {
        unit: String,
        action: &'static str,
        result: String,
    },

    /// A scope of the container's name is still there.
    #[error(
        "systemd unit {0} already exists: another container uses this name, or it is \
         left over (systemctl stop {0})"
    )]
    SystemdUnitExists(String),

    /// Without `linux.cgroupsPath` the cgroup is named after the container
    /// id, which must then be a single path component.
    #[error("container id {0:?} cannot be used as a cgroup name (set linux.cgroupsPath instead)")]
    InvalidId(String),

    /// A relative `linux.cgroupsPath` needs our own cgroup in every
    /// hierarchy, and one of them has none that we can reach.
    #[error(
        "linux.cgroupsPath {path:?} is relative, but {self_cgroup} lists no cgroup of ours \
         inside the hierarchy mounted at {mount_point}"
    )]
    NoOwnCgroup {
        path: String,
        self_cgroup: PathBuf,
        mount_point: PathBuf,
    },

    /// `mkdir` of a cgroup directory failed.
    #[error("cannot create cgroup directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },

    /// Writing a control file failed.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    /// Moving a process into the cgroup failed.
    #[error("cannot write pid {pid} to {path}: {source}")]
    AddProcess {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },

    /// Opening a cgroup's directory or `tasks` file, for a fork to start
    /// inside it (`entry.rs`), failed.
    #[error("cannot open {path} to put the new process in the cgroup: {source}")]
    OpenEntry { path: PathBuf, source: io::Error },

    /// `cgroup.procs` held something other than one pid per line.
    #[error("{path}: {text:?} is not a pid")]
    BadPid { path: PathBuf, text: String },

    /// Listing a cgroup directory (to find nested cgroups) failed.
    #[error("cannot list cgroup directory {path}: {source}")]
    ListDir { path: PathBuf, source: io::Error },

    /// `rmdir` of a cgroup directory failed.
    #[error("cannot remove cgroup directory {path}: {source}")]
    RemoveDir { path: PathBuf, source: io::Error },

    /// `rmdir` kept failing with EBUSY: processes are still inside.
    #[error(
        "cannot remove cgroup directory {path}: still busy after {attempts} attempts \
         (processes are still running in it)"
    )]
    StillBusy { path: PathBuf, attempts: u32 },

    /// The cgroup v2 device filter (an eBPF program) could not be set up.
    #[error("linux.resources.devices: cannot {action} {path}: {source}")]
    DeviceProgram {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// A resource this host cannot apply through cgroupfs yet.
    #[error("{0} is not supported by capsa yet")]
    Unsupported(&'static str),

    /// The control file a resource needs is not there: this kernel, or the
    /// controller as this host mounts it, cannot apply the value.
    #[error("linux.resources.{field}: {path} does not exist on this host, so the value cannot be applied")]
    ResourceFileMissing { field: String, path: PathBuf },

    /// The kernel refused a resource's value.
    #[error("linux.resources.{field}: cannot write {value:?} to {path}: {source}")]
    ResourceWrite {
        field: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    /// A control file a resource depends on could not be read.
    #[error("linux.resources.{field}: cannot read {path}: {source}")]
    ResourceRead {
        field: String,
        path: PathBuf,
        source: io::Error,
    },

    /// No hierarchy of the host has the controller a resource needs.
    #[error("linux.resources.{field}: needs the {controller} controller, {reason}")]
    ControllerMissing {
        field: String,
        controller: String,
        reason: String,
    },

    /// A value this host's cgroup version cannot express, or one refused by
    /// a check (`checkBeforeUpdate`).
    #[error("linux.resources.{field}: {reason}")]
    ResourceRefused { field: String, reason: String },

    /// Pausing needs the v1 freezer or cgroup v2, and the host has neither.
    #[error(
        "cannot {action}: the host has no cgroup v1 freezer hierarchy and no cgroup v2 hierarchy"
    )]
    NoFreezer { action: &'static str },

    /// The freezer did not reach the state asked for.
    #[error("cannot {action}: {path} still reads {state:?} after {waited_ms} ms")]
    FreezeTimeout {
        action: &'static str,
        path: PathBuf,
        state: String,
        waited_ms: u128,
    },
}

/// A container's cgroup: one directory in every hierarchy of the host.
///
/// Built by [`CgroupHost::container_cgroup`], stored in `state.json` and
/// reloaded by later commands. Serialize it after [`ContainerCgroup::create`]:
/// the record of the parent directories `create` made is part of it, and
/// [`ContainerCgroup::remove`] only deletes parents found in that record.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerCgroup {
    relative_path: String,
    hierarchies: Vec<HierarchyDir>,
    /// Directories `create` made itself, parents first. A mutex because
    /// `create` takes `&self`; it is only held for a push or a copy.
    #[serde(default)]
    created_dirs: Mutex<Vec<PathBuf>>,
    /// The systemd unit that owns the cgroup; `None` with cgroupfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::SystemdUnit>,
}

/// Who makes and removes the container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Manager {
    /// capsa itself, with mkdir and rmdir (runc's default).
    #[default]
    Cgroupfs,
    /// systemd, as a transient unit started over the bus at `bus` (a D-Bus
    /// address such as `unix:path=/run/dbus/system_bus_socket`).
    Systemd { bus: String },
}

impl CgroupHost {
    /// [`CgroupHost::container_cgroup`] for the driver `manager`: with
    /// systemd, `cgroups_path` is `slice:prefix:name` (default
    /// `system.slice:capsa:<id>`) and the cgroup is where systemd puts that
    /// unit. With cgroupfs, the systemd form is refused.
    pub fn cgroup_for(
        &self,
        manager: &Manager,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<ContainerCgroup, CgroupError> {
        let Manager::Systemd { bus } = manager else {
            return self.container_cgroup(cgroups_path, id);
        };
        let unit = systemd::UnitPath::parse(cgroups_path, id)?;
        let mut cgroup = self.container_cgroup(Some(&unit.cgroup), id)?;
        cgroup.systemd = Some(systemd::SystemdUnit {
            unit: unit.unit,
            slice: unit.slice,
            bus: bus.clone(),
        });
        Ok(cgroup)
    }
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HierarchyDir {
    mount_point: PathBuf,
    controllers: Vec<String>,
    is_v2: bool,
    relative_path: String,
    dir: PathBuf,
}

impl ContainerCgroup {
    fn new(relative_path: String, hierarchies: Vec<HierarchyDir>) -> Self {
        Self {
            relative_path,
            hierarchies,
            created_dirs: Mutex::new(Vec::new()),
            systemd: None,
        }
    }

    /// The cgroup path as requested, normalised: absolute (such as
    /// `/capsa/<id>`, the same path inside every hierarchy) or relative
    /// (such as `foo/bar`, below the runtime's own cgroup in each hierarchy).
    /// [`HierarchyDir::relative_path`] gives the resolved path per hierarchy.
    pub fn relative_path(&self) -> &str {
        &self.relative_path
    }

    /// The container's directory in every hierarchy, in mount order.
    pub fn hierarchies(&self) -> &[HierarchyDir] {
        &self.hierarchies
    }

    /// Keeps only the hierarchies `keep` accepts (rootless `create`: those
    /// the user may make the container's directory in). Before `create`.
    pub fn retain_hierarchies(&mut self, keep: impl FnMut(&HierarchyDir) -> bool) {
        self.hierarchies.retain(keep);
    }

    /// The directories [`ContainerCgroup::create`] made itself, parents
    /// first (including the container's own directories).
    pub fn created_dirs(&self) -> Vec<PathBuf> {
        self.created().clone()
    }

    fn created(&self) -> MutexGuard<'_, Vec<PathBuf>> {
        // A panic while the lock was held cannot leave the list half-pushed.
        self.created_dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clone for ContainerCgroup {
    fn clone(&self) -> Self {
        Self {
            relative_path: self.relative_path.clone(),
            hierarchies: self.hierarchies.clone(),
            created_dirs: Mutex::new(self.created_dirs()),
            systemd: self.systemd.clone(),
        }
    }
}

impl HierarchyDir {
    /// Where the hierarchy is mounted, such as `/sys/fs/cgroup/memory`.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// The v1 controllers of the hierarchy, such as `["cpu", "cpuacct"]` or
    /// `["name=systemd"]`; empty for cgroup2.
    pub fn controllers(&self) -> &[String] {
        &self.controllers
    }

    /// Whether this is the cgroup2 (unified) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.is_v2
    }

    /// The container's cgroup inside this hierarchy, relative to the mount
    /// point and starting with `/`, such as `/capsa/<id>`.
    pub fn relative_path(&self) -> &str {
        &self.relative_path
    }

    /// The container's cgroup directory: the mount point joined with
    /// [`HierarchyDir::relative_path`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// v1 cpuset needs `cpuset.cpus` and `cpuset.mems` filled in by hand.
    fn is_v1_cpuset(&self) -> bool {
        !self.is_v2 && self.controllers.iter().any(|c| c == "cpuset")
    }
}
