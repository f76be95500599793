//! Container statistics for `events`: what the container's cgroup has
//! used, read from the control files of each controller, the cgroup v1 and
//! v2 forms side by side (as `limits.rs` does for the limits).
//!
//! [`Stats`] serializes to exactly the JSON runc prints as an event's
//! `data` (runc's `types/events.go`, which go-runc's `Stats` decodes): the
//! same names, the same fields left out when zero, the same units (CPU time
//! in nanoseconds, memory in bytes) and the same v1-compatible meanings on
//! v2 (`swap` is memory + swap, `cache` is the `file` pages).
//!
//! Each controller is read from the hierarchy that serves it, as
//! `resources.rs` chooses it for the limits: the v1 hierarchy that has it,
//! else the cgroup2 directory. A file that does not exist (a controller the
//! host does not mount or enable, a kernel without swap accounting) leaves
//! its part empty; only a file that exists but cannot be read or parsed is
//! an error.

mod json;
mod read;

use std::path::Path;

pub use json::*;
use read::*;

use super::{CgroupError, ContainerCgroup};

/// Where one controller's files are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Dir<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl ContainerCgroup {
    /// The container's statistics. Parts whose controller this host lacks
    /// (or whose files are gone, such as after the cgroup was removed) are
    /// left empty.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        match self.stats_dir("cpuacct") {
            Some(Dir::V1(d)) => s.cpu.usage = cpu_usage_v1(d)?,
            Some(Dir::V2(d)) => s.cpu.usage = cpu_usage_v2(d)?,
            None => {}
        }
        if let Some(dir) = self.stats_dir("cpu") {
            s.cpu.throttling = throttling(dir)?;
        }
        if let Some(Dir::V1(d)) = self.stats_dir("cpuset") {
            s.cpuset = cpuset_v1(d)?;
        }
        match self.stats_dir("memory") {
            Some(Dir::V1(d)) => s.memory = memory_v1(d)?,
            Some(Dir::V2(d)) => s.memory = memory_v2(d)?,
            None => {}
        }
        if let Some(dir) = self.stats_dir("pids") {
            s.pids = pids(dir)?;
        }
        match self.stats_dir("blkio") {
            Some(Dir::V1(d)) => s.blkio = blkio_v1(d)?,
            Some(Dir::V2(d)) => s.blkio = io_v2(d)?,
            None => {}
        }
        if let Some(dir) = self.stats_dir("hugetlb") {
            s.hugetlb = hugetlb(dir)?;
        }
        Ok(s)
    }

    /// How many processes the kernel's OOM killer has killed in the
    /// container's memory cgroup: `oom_kill` of v1 `memory.oom_control`
    /// (kernel 4.13+) or of v2 `memory.events`. `None` when there is no
    /// such counter (no memory controller, or the cgroup is gone).
    pub fn oom_kill_count(&self) -> Result<Option<u64>, CgroupError> {
        let (dir, file) = match self.stats_dir("memory") {
            Some(Dir::V1(d)) => (d, "memory.oom_control"),
            Some(Dir::V2(d)) => (d, "memory.events"),
            None => return Ok(None),
        };
        Ok(key_values(dir, file)?.and_then(|map| map.get("oom_kill").copied()))
    }

    /// The directory to read `controller`'s statistics from: its v1
    /// hierarchy, else the cgroup2 directory (where its files exist only
    /// when the controller is enabled; `cpu.stat` always does).
    fn stats_dir(&self, controller: &str) -> Option<Dir<'_>> {
        let hierarchies = self.hierarchies();
        hierarchies
            .iter()
            .find(|h| !h.is_v2() && h.controllers().iter().any(|c| c == controller))
            .map(|h| Dir::V1(h.dir()))
            .or_else(|| {
                hierarchies
                    .iter()
                    .find(|h| h.is_v2())
                    .map(|h| Dir::V2(h.dir()))
            })
    }
}

#[cfg(test)]
mod tests;
