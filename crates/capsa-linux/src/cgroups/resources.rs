//! `linux.resources` (all but `devices`, see `devices.rs`): which hierarchy
//! serves each controller, and the cgroup v2 controllers to enable above the
//! container. The writers, one function per resource with the v1 and v2
//! forms side by side, are in `limits.rs`.
//!
//! Where a controller lives is decided per controller, so one rule covers
//! every kind of host: the v1 hierarchy that has it if there is one, else
//! the cgroup2 hierarchy if its root lists it in `cgroup.controllers`. On a
//! pure v2 host that is always cgroup2; on a hybrid host it is v1 for most
//! controllers and cgroup2 for those only it has (hugetlb here). A cgroup2
//! controller is enabled in `cgroup.subtree_control` of every ancestor, from
//! the root of the hierarchy down, before the container's files appear.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use super::{limits, CgroupError, ContainerCgroup, HierarchyDir};

/// The container's directory in the hierarchy that serves one controller,
/// and whether that hierarchy is cgroup2 (which decides the file names and
/// value formats).
#[derive(Debug, Clone)]
pub(super) struct Ctl {
    pub dir: PathBuf,
    pub v2: bool,
}

impl Ctl {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Whether the kernel offers `file` here.
    pub fn has(&self, file: &str) -> bool {
        self.path(file).exists()
    }

    /// Writes `value` to `file` in one write. The file must exist: cgroupfs
    /// lists every file its controller supports, so a missing one means this
    /// host cannot apply the value (and a plain file in a test tree must be
    /// made first, which keeps the tests honest about file names).
    pub fn write(&self, field: &str, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = self.path(file);
        let result = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        match result {
            Ok(()) => {
                tracing::debug!("{}: wrote {value:?}", path.display());
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(CgroupError::ResourceFileMissing {
                field: field.to_string(),
                path,
            }),
            Err(source) => Err(CgroupError::ResourceWrite {
                field: field.to_string(),
                path,
                value: value.to_string(),
                source,
            }),
        }
    }

    /// The trimmed content of `file`.
    pub fn read(&self, field: &str, file: &str) -> Result<String, CgroupError> {
        let path = self.path(file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().to_string()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(CgroupError::ResourceFileMissing {
                field: field.to_string(),
                path,
            }),
            Err(source) => Err(CgroupError::ResourceRead {
                field: field.to_string(),
                path,
                source,
            }),
        }
    }
}

impl ContainerCgroup {
    /// Writes `linux.resources` (except `devices`) into the container's
    /// cgroup, which must exist. Used by `create` before the init runs and
    /// by `update`. The first value the host cannot apply stops it with an
    /// error naming `linux.resources.<field>` and the file.
    pub fn apply_resources(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let mut at = Resolver::new(self);
        if let Some(cpu) = r.cpu().as_ref().filter(|c| has_cpuset(c)) {
            let field = if cpu.cpus().as_deref().is_some_and(|s| !s.is_empty()) {
                "cpu.cpus"
            } else {
                "cpu.mems"
            };
            limits::cpuset(&at.controller(field, Some("cpuset"), Some("cpuset"))?, cpu)?;
        }
        if let Some(m) = r.memory() {
            if let Some(field) = memory_field(m) {
                limits::memory(&at.controller(field, Some("memory"), Some("memory"))?, m)?;
            } else {
                limits::ignored_kernel_memory(m);
            }
        }
        if let Some(field) = r.cpu().as_ref().and_then(cpu_field) {
            let cpu = r.cpu().as_ref().expect("cpu_field found a field");
            limits::cpu(&at.controller(field, Some("cpu"), Some("cpu"))?, cpu)?;
        }
        if let Some(p) = r.pids() {
            limits::pids(&at.controller("pids.limit", Some("pids"), Some("pids"))?, p)?;
        }
        if let Some(b) = r.block_io() {
            if let Some(field) = block_io_field(b) {
                limits::block_io(&at.controller(field, Some("blkio"), Some("io"))?, b)?;
            }
        }
        if let Some(list) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let c = at.controller("hugepageLimits", Some("hugetlb"), Some("hugetlb"))?;
            limits::hugepages(&c, list)?;
        }
        if let Some(n) = r.network() {
            network(&mut at, n)?;
        }
        if let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            limits::rdma(&at.controller("rdma", Some("rdma"), Some("rdma"))?, map)?;
        }
        let mut unified: Vec<_> = r.unified().iter().flatten().collect();
        unified.sort();
        for (key, value) in unified {
            let field = format!("unified.{key}");
            limits::unified(&at.unified(&field, key)?, &field, key, value)?;
        }
        Ok(())
    }
}

/// `network.classID` (net_cls) and `network.priorities` (net_prio): cgroup
/// v1 only; cgroup2 has no such controllers (an eBPF program does that).
fn network(at: &mut Resolver, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        let c = at.controller("network.classID", Some("net_cls"), None)?;
        c.write("network.classID", "net_cls.classid", &id.to_string())?;
    }
    let priorities = n.priorities().as_deref().unwrap_or_default();
    if !priorities.is_empty() {
        let c = at.controller("network.priorities", Some("net_prio"), None)?;
        for (i, p) in priorities.iter().enumerate() {
            let line = format!("{} {}", p.name(), p.priority());
            c.write(
                &format!("network.priorities[{i}]"),
                "net_prio.ifpriomap",
                &line,
            )?;
        }
    }
    Ok(())
}

fn has_cpuset(c: &LinuxCpu) -> bool {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    set(c.cpus()) || set(c.mems())
}

/// The first field of `cpu` that the cpu controller applies, if any.
fn cpu_field(c: &LinuxCpu) -> Option<&'static str> {
    [
        ("cpu.shares", c.shares().is_some_and(|s| s != 0)),
        ("cpu.quota", c.quota().is_some_and(|q| q != 0)),
        ("cpu.period", c.period().is_some_and(|p| p != 0)),
        ("cpu.burst", c.burst().is_some()),
        (
            "cpu.realtimeRuntime",
            c.realtime_runtime().is_some_and(|r| r != 0),
        ),
        (
            "cpu.realtimePeriod",
            c.realtime_period().is_some_and(|p| p != 0),
        ),
        ("cpu.idle", c.idle().is_some()),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

/// The first field of `memory` the memory controller applies; `None` when
/// only the ignored kernel-memory limits are set.
fn memory_field(m: &LinuxMemory) -> Option<&'static str> {
    [
        ("memory.limit", m.limit().is_some()),
        ("memory.reservation", m.reservation().is_some()),
        ("memory.swap", m.swap().is_some()),
        (
            "memory.swappiness",
            m.swappiness()
                .is_some_and(|s| s != capsa_spec::SWAPPINESS_UNSET),
        ),
        ("memory.disableOOMKiller", m.disable_oom_killer().is_some()),
        ("memory.useHierarchy", m.use_hierarchy().is_some()),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

fn block_io_field(b: &LinuxBlockIo) -> Option<&'static str> {
    fn some<T>(list: &Option<Vec<T>>) -> bool {
        list.as_ref().is_some_and(|l| !l.is_empty())
    }
    [
        ("blockIO.weight", b.weight().is_some_and(|w| w != 0)),
        (
            "blockIO.leafWeight",
            b.leaf_weight().is_some_and(|w| w != 0),
        ),
        ("blockIO.weightDevice", some(b.weight_device())),
        (
            "blockIO.throttleReadBpsDevice",
            some(b.throttle_read_bps_device()),
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            some(b.throttle_write_bps_device()),
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            some(b.throttle_read_iops_device()),
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            some(b.throttle_write_iops_device()),
        ),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

/// Finds the hierarchy of each controller, enabling cgroup2 controllers on
/// the way (once per controller and call).
pub(super) struct Resolver<'a> {
    cgroup: &'a ContainerCgroup,
    enabled: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(cgroup: &'a ContainerCgroup) -> Self {
        Resolver {
            cgroup,
            enabled: Vec::new(),
        }
    }

    /// The directory for a controller named `v1` in cgroup v1 and `v2` in
    /// cgroup2 (`None`: that version has no such controller).
    pub fn controller(
        &mut self,
        field: &str,
        v1: Option<&str>,
        v2: Option<&str>,
    ) -> Result<Ctl, CgroupError> {
        let hierarchies = self.cgroup.hierarchies();
        if let Some(name) = v1 {
            let has = |h: &&HierarchyDir| !h.is_v2() && h.controllers().iter().any(|c| c == name);
            if let Some(h) = hierarchies.iter().find(has) {
                return Ok(Ctl {
                    dir: h.dir().to_path_buf(),
                    v2: false,
                });
            }
        }
        let unified = hierarchies.iter().find(|h| h.is_v2());
        let missing = |reason: String| CgroupError::ControllerMissing {
            field: field.to_string(),
            controller: v1.or(v2).unwrap_or_default().to_string(),
            reason,
        };
        match (v2, unified) {
            (Some(name), Some(h)) => self.enable(field, h, name),
            (None, _) => Err(missing(
                "which is not mounted as a cgroup v1 hierarchy on this host (cgroup v2 has no equivalent)"
                    .into(),
            )),
            (Some(_), None) => Err(missing(
                "which is not mounted as a cgroup v1 hierarchy on this host, and there is no cgroup v2 hierarchy"
                    .into(),
            )),
        }
    }

    /// The cgroup2 directory for `unified.<key>`; its controller is the part
    /// of the key before the first dot (`cgroup.*` files need none).
    pub fn unified(&mut self, field: &str, key: &str) -> Result<Ctl, CgroupError> {
        let Some(h) = self.cgroup.hierarchies().iter().find(|h| h.is_v2()) else {
            return Err(CgroupError::ResourceRefused {
                field: field.to_string(),
                reason: "unified sets cgroup v2 files, and this host has no cgroup v2 hierarchy"
                    .into(),
            });
        };
        match key.split('.').next() {
            Some("cgroup") | None => Ok(Ctl {
                dir: h.dir().to_path_buf(),
                v2: true,
            }),
            Some(controller) => self.enable(field, h, controller),
        }
    }

    /// Enables `controller` in `cgroup.subtree_control` of every ancestor of
    /// the container's cgroup2 directory, from the mount point down.
    fn enable(
        &mut self,
        field: &str,
        h: &HierarchyDir,
        controller: &str,
    ) -> Result<Ctl, CgroupError> {
        let ctl = Ctl {
            dir: h.dir().to_path_buf(),
            v2: true,
        };
        if self.enabled.iter().any(|c| c == controller) {
            return Ok(ctl);
        }
        let root_list = h.mount_point().join("cgroup.controllers");
        if !listed(&root_list, controller) {
            return Err(CgroupError::ControllerMissing {
                field: field.to_string(),
                controller: controller.to_string(),
                reason: format!(
                    "which {} does not list{}",
                    root_list.display(),
                    if self.cgroup.hierarchies().iter().any(|h| !h.is_v2()) {
                        " (and no cgroup v1 hierarchy has it)"
                    } else {
                        ""
                    }
                ),
            });
        }
        for ancestor in ancestors(h) {
            let subtree = ancestor.join("cgroup.subtree_control");
            if listed(&subtree, controller) {
                continue;
            }
            let available = ancestor.join("cgroup.controllers");
            if !listed(&available, controller) {
                return Err(CgroupError::ControllerMissing {
                    field: field.to_string(),
                    controller: controller.to_string(),
                    reason: format!(
                        "which {} does not list (its parent does not delegate it)",
                        available.display()
                    ),
                });
            }
            let dir = Ctl {
                dir: ancestor,
                v2: true,
            };
            dir.write(field, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
        self.enabled.push(controller.to_string());
        Ok(ctl)
    }
}

/// The mount point and every directory between it and the container's
/// directory (not the container's own), top down.
fn ancestors(h: &HierarchyDir) -> Vec<PathBuf> {
    let mut dirs = vec![h.mount_point().to_path_buf()];
    let components: Vec<&str> = h
        .relative_path()
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    for depth in 1..components.len() {
        dirs.push(h.mount_point().join(components[..depth].join("/")));
    }
    dirs
}

/// Whether the space-separated list in `file` has `name`; a missing or
/// unreadable file lists nothing.
fn listed(file: &Path, name: &str) -> bool {
    fs::read_to_string(file).is_ok_and(|t| t.split_whitespace().any(|c| c == name))
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
