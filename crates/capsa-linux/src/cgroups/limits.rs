//! One function per resource, the cgroup v1 and v2 forms side by side (as
//! crun's `cgroup-resources.c` does): the model is the runtime spec's, only
//! the file names and value translations differ. The directory and version
//! come in a [`Ctl`] chosen by `resources.rs`, so each function is tested on
//! a plain directory.
//!
//! Ordering and translations follow runc (`opencontainers/cgroups` `fs/` for
//! v1, `fs2/` for v2) so that a config behaves the same under capsa.

use std::collections::HashMap;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxRdma,
    LinuxThrottleDevice,
};

use super::resources::Ctl;
use super::CgroupError;

/// cgroup v1 `cpu.shares` bounds (the kernel clamps to them).
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// `-1` (or any negative) is "no limit": `max` in cgroup2 files, `-1` in v1.
fn v2_limit(value: i64) -> String {
    if value < 0 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

fn refused(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::ResourceRefused {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// `memory.kernel` and `memory.kernelTCP` are not written: kernel memory
/// limits are deprecated in v1 (ignored since 5.4, gone in 6.x) and absent
/// in v2. runc ignores them the same way.
#[allow(deprecated)] // oci-spec marks `kernel` deprecated for this reason.
pub(super) fn ignored_kernel_memory(m: &LinuxMemory) {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!(
            "linux.resources.memory.kernel and kernelTCP are ignored: the kernel no longer \
             supports kernel memory limits"
        );
    }
}

/// `memory`: limit, reservation, swap, swappiness, disableOOMKiller,
/// useHierarchy, checkBeforeUpdate.
pub(super) fn memory(c: &Ctl, m: &LinuxMemory) -> Result<(), CgroupError> {
    ignored_kernel_memory(m);
    let limit = m.limit();
    let swappiness = m
        .swappiness()
        .filter(|s| *s != capsa_spec::SWAPPINESS_UNSET);
    if c.v2 {
        if let Some(s) = swappiness {
            return Err(refused(
                "memory.swappiness",
                format!("cgroup v2 has no per-cgroup swappiness, so {s} cannot be applied"),
            ));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(refused(
                "memory.disableOOMKiller",
                "cgroup v2 cannot disable the OOM killer of a cgroup",
            ));
        }
        if m.use_hierarchy() == Some(false) {
            return Err(refused(
                "memory.useHierarchy",
                "cgroup v2 accounting is always hierarchical",
            ));
        }
        if let (Some(true), Some(limit)) = (m.check_before_update(), limit.filter(|l| *l > 0)) {
            let current = c.read("memory.checkBeforeUpdate", "memory.current")?;
            if current.parse::<i64>().is_ok_and(|cur| limit < cur) {
                return Err(refused(
                    "memory.limit",
                    format!(
                        "{limit} is below the current usage {current} ({}) and \
                         memory.checkBeforeUpdate is set",
                        c.path("memory.current").display()
                    ),
                ));
            }
        }
        // Swap first: memory.swap.max is independent of memory.max in v2,
        // and runc writes it first.
        let swap = v2_swap(m.swap(), limit).map_err(|reason| refused("memory.swap", reason))?;
        if let Some(value) = swap {
            match c.write("memory.swap", "memory.swap.max", &value) {
                // A kernel without swap accounting: "no limit" and "no swap"
                // both hold already.
                Err(CgroupError::ResourceFileMissing { .. }) if value == "max" || value == "0" => {}
                other => other?,
            }
        }
        if let Some(l) = limit {
            c.write("memory.limit", "memory.max", &v2_limit(l))?;
        }
        if let Some(r) = m.reservation() {
            c.write("memory.reservation", "memory.low", &v2_limit(r))?;
        }
        return Ok(());
    }
    memory_v1_limit_and_swap(c, limit, m.swap())?;
    if let Some(r) = m.reservation() {
        c.write(
            "memory.reservation",
            "memory.soft_limit_in_bytes",
            &r.to_string(),
        )?;
    }
    if let Some(s) = swappiness {
        c.write("memory.swappiness", "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        c.write("memory.disableOOMKiller", "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        c.write(
            "memory.useHierarchy",
            "memory.use_hierarchy",
            if h { "1" } else { "0" },
        )?;
    }
    Ok(())
}

/// v1 `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (memory +
/// swap, the spec's own meaning of `swap`). The kernel keeps memsw >= limit
/// at every moment, so the order depends on the current limit (runc's
/// `setMemoryAndSwap`).
fn memory_v1_limit_and_swap(
    c: &Ctl,
    limit: Option<i64>,
    swap: Option<i64>,
) -> Result<(), CgroupError> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    // Unlimited memory without a swap value means unlimited swap too, where
    // the kernel accounts swap at all.
    let swap = match (limit, swap) {
        (Some(-1), None) if c.has(MEMSW) => Some(-1),
        _ => swap,
    };
    let write_limit = |l: i64| c.write("memory.limit", LIMIT, &l.to_string());
    let write_swap = |s: i64| match c.write("memory.swap", MEMSW, &s.to_string()) {
        // No swap accounting in this kernel: "no limit" holds already.
        Err(CgroupError::ResourceFileMissing { .. }) if s == -1 => Ok(()),
        other => other,
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current: u64 = c.read("memory.limit", LIMIT)?.parse().unwrap_or(u64::MAX);
            if v1_swap_first(current, s) {
                write_swap(s)?;
                write_limit(l)
            } else {
                write_limit(l)?;
                write_swap(s)
            }
        }
        (Some(l), None) => write_limit(l),
        (None, Some(s)) => write_swap(s),
        (None, None) => Ok(()),
    }
}

/// Whether v1 memsw must be written before the memory limit: when it grows
/// past the current limit (or becomes unlimited), writing the limit first
/// could leave limit > memsw for a moment, which the kernel refuses.
/// Otherwise the new limit is at most the new memsw, which is below the
/// current limit and so below the current memsw: the limit goes first.
pub(super) fn v1_swap_first(current_limit: u64, swap: i64) -> bool {
    swap == -1 || u64::try_from(swap).is_ok_and(|s| current_limit < s)
}

/// The cgroup2 `memory.swap.max` for the spec's memory+swap `swap` (runc's
/// `ConvertMemorySwapToCgroupV2Value`): swap alone, the total minus the
/// memory limit. `None`: leave the file alone.
pub(super) fn v2_swap(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, String> {
    let limit = limit.unwrap_or(0);
    match swap.unwrap_or(0) {
        // Unlimited memory and no swap value: unlimited swap too, as v1.
        0 if limit == -1 => Ok(Some("max".into())),
        0 => Ok(None),
        s if s < 0 => Ok(Some("max".into())),
        _ if limit <= 0 => {
            Err("a swap limit needs a memory limit (memory.limit) in cgroup v2".into())
        }
        s if s < limit => Err(format!("{s} is below memory.limit {limit}")),
        s => Ok(Some((s - limit).to_string())),
    }
}

/// The cgroup2 `cpu.weight` (1-10000) for v1 `cpu.shares` (2-262144, 1024
/// the default): runc's and crun's linear formula, which maps 2 to 1,
/// 1024 to 39 and 262144 to 10000. 0 means "not set".
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `cpu` (the cpu controller): shares, quota, period, burst, realtime
/// runtime and period, idle.
pub(super) fn cpu(c: &Ctl, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let shares = cpu.shares().filter(|s| *s != 0);
    let quota = cpu.quota().filter(|q| *q != 0);
    let period = cpu.period().filter(|p| *p != 0);
    let rt_runtime = cpu.realtime_runtime().filter(|r| *r != 0);
    let rt_period = cpu.realtime_period().filter(|p| *p != 0);
    if c.v2 {
        if rt_runtime.is_some() || rt_period.is_some() {
            let field = if rt_runtime.is_some() {
                "cpu.realtimeRuntime"
            } else {
                "cpu.realtimePeriod"
            };
            return Err(refused(
                field,
                "cgroup v2 has no realtime CPU budgets (cpu.rt_* are cgroup v1 files)",
            ));
        }
        if let Some(s) = shares {
            c.write("cpu.shares", "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            c.write("cpu.idle", "cpu.idle", &idle.to_string())?;
        }
        if quota.is_some() || period.is_some() {
            // "quota period", or "max period" for no limit; the period may
            // be left out to keep the current one.
            let mut value = quota
                .filter(|q| *q > 0)
                .map_or("max".into(), |q| q.to_string());
            if let Some(p) = period {
                value += &format!(" {p}");
            }
            let field = if quota.is_some() {
                "cpu.quota"
            } else {
                "cpu.period"
            };
            c.write(field, "cpu.max", &value)?;
        }
        // After cpu.max: the kernel refuses a burst above the quota.
        if let Some(b) = cpu.burst() {
            c.write("cpu.burst", "cpu.max.burst", &b.to_string())?;
        }
        return Ok(());
    }
    // v1: the realtime period before the runtime, so the runtime fits it.
    if let Some(p) = rt_period {
        c.write("cpu.realtimePeriod", "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = rt_runtime {
        c.write("cpu.realtimeRuntime", "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(s) = shares {
        c.write("cpu.shares", "cpu.shares", &s.to_string())?;
        // The kernel clamps instead of refusing; say so rather than run
        // with another value than asked (as runc does).
        let got = c.read("cpu.shares", "cpu.shares")?;
        if got != s.to_string() {
            return Err(refused(
                "cpu.shares",
                format!(
                    "the kernel keeps cpu.shares between {MIN_SHARES} and {MAX_SHARES}: {s} became {got}"
                ),
            ));
        }
    }
    cpu_v1_bandwidth(c, quota, period)?;
    if let Some(b) = cpu.burst() {
        c.write("cpu.burst", "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        c.write("cpu.idle", "cpu.idle", &idle.to_string())?;
    }
    Ok(())
}

/// v1 `cpu.cfs_period_us` then `cpu.cfs_quota_us`. A shorter period can be
/// refused (EINVAL) while the old quota no longer fits a parent's limit; as
/// runc does, it is then written again after the quota.
fn cpu_v1_bandwidth(c: &Ctl, quota: Option<i64>, period: Option<u64>) -> Result<(), CgroupError> {
    let mut retry_period = None;
    if let Some(p) = period {
        match c.write("cpu.period", "cpu.cfs_period_us", &p.to_string()) {
            Err(CgroupError::ResourceWrite { ref source, .. })
                if quota.is_some() && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                retry_period = Some(p);
            }
            other => other?,
        }
    }
    if let Some(q) = quota {
        let value = if q < 0 { -1 } else { q };
        c.write("cpu.quota", "cpu.cfs_quota_us", &value.to_string())?;
    }
    if let Some(p) = retry_period {
        c.write("cpu.period", "cpu.cfs_period_us", &p.to_string())?;
    }
    Ok(())
}

/// `cpu.cpus` and `cpu.mems`: the same files in both versions. A CPU or
/// node the host (or the parent cgroup) lacks is refused by the kernel.
pub(super) fn cpuset(c: &Ctl, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        c.write("cpu.cpus", "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        c.write("cpu.mems", "cpuset.mems", mems)?;
    }
    Ok(())
}

/// `pids.limit`: `pids.max` in both versions, `max` for <= 0.
pub(super) fn pids(c: &Ctl, p: &LinuxPids) -> Result<(), CgroupError> {
    let limit = p.limit();
    let value = if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    };
    c.write("pids.limit", "pids.max", &value)
}

/// The cgroup2 `io.weight` (1-10000) for a blkio weight (10-1000): runc's
/// `ConvertBlkIOToIOWeightValue`, 10 to 1, 500 to 4950, 1000 to 10000.
pub(super) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// `blockIO`: weight, leafWeight, weightDevice, throttle*Device. v1 writes
/// the `blkio.*` files (or their `blkio.bfq.*` names on kernels where CFQ is
/// gone), v2 `io.weight` / `io.bfq.weight` and `io.max`.
pub(super) fn block_io(c: &Ctl, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().filter(|w| *w != 0);
    let leaf = b.leaf_weight().filter(|w| *w != 0);
    let devices = b.weight_device().as_deref().unwrap_or_default();
    let throttles: [(&str, &str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    if c.v2 {
        if leaf.is_some()
            || devices
                .iter()
                .any(|d| d.leaf_weight().is_some_and(|w| w != 0))
        {
            return Err(refused(
                "blockIO.leafWeight",
                "cgroup v2 has no leaf weights (blkio.leaf_weight is a cgroup v1 file)",
            ));
        }
        // BFQ takes the blkio scale itself; io.weight (io.cost) its own.
        let bfq = c.has("io.bfq.weight");
        if let Some(w) = weight {
            if bfq {
                c.write("blockIO.weight", "io.bfq.weight", &w.to_string())?;
            } else {
                let value = format!("default {}", blkio_weight_to_io_weight(w));
                c.write("blockIO.weight", "io.weight", &value)?;
            }
        }
        for (i, d) in devices.iter().enumerate() {
            let Some(w) = d.weight().filter(|w| *w != 0) else {
                continue;
            };
            let field = format!("blockIO.weightDevice[{i}]");
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io_weight(w))
            };
            c.write(&field, file, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        for (name, _, key, list) in throttles {
            for (i, d) in list.iter().flatten().enumerate() {
                // In io.max, 0 does not lift a limit: "max" does (v1's 0).
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                let line = format!("{}:{} {key}={rate}", d.major(), d.minor());
                c.write(&format!("blockIO.{name}[{i}]"), "io.max", &line)?;
            }
        }
        return Ok(());
    }
    // v1: blkio.weight, or blkio.bfq.weight where only BFQ offers weights.
    let (weight_file, weight_device_file) = if !c.has("blkio.weight") && c.has("blkio.bfq.weight") {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = weight {
        c.write("blockIO.weight", weight_file, &w.to_string())?;
    }
    if let Some(w) = leaf {
        c.write("blockIO.leafWeight", "blkio.leaf_weight", &w.to_string())?;
    }
    for (i, d) in devices.iter().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            c.write(&field, weight_device_file, &line)?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            c.write(&field, "blkio.leaf_weight_device", &line)?;
        }
    }
    for (name, file, _, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            c.write(&format!("blockIO.{name}[{i}]"), file, &line)?;
        }
    }
    Ok(())
}

/// `hugepageLimits`: v1 `hugetlb.<size>.limit_in_bytes`, v2
/// `hugetlb.<size>.max`; the reservation limit (`.rsvd.`) too where the
/// kernel has it, as runc does, so reserved pages cannot escape the limit.
pub(super) fn hugepages(c: &Ctl, list: &[LinuxHugepageLimit]) -> Result<(), CgroupError> {
    for (i, h) in list.iter().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let size = h.page_size();
        let (file, rsvd, value) = if c.v2 {
            (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
                v2_limit(h.limit()),
            )
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                h.limit().to_string(),
            )
        };
        c.write(&field, &file, &value)?;
        if c.has(&rsvd) {
            c.write(&field, &rsvd, &value)?;
        }
    }
    Ok(())
}

/// `rdma`: `rdma.max` in both versions, one line per device:
/// `mlx5_1 hca_handle=3 hca_object=max`.
pub(super) fn rdma(c: &Ctl, map: &HashMap<String, LinuxRdma>) -> Result<(), CgroupError> {
    let mut devices: Vec<_> = map.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limits) in devices {
        let mut line = device.clone();
        if let Some(n) = limits.hca_handles() {
            line += &format!(" hca_handle={n}");
        }
        if let Some(n) = limits.hca_objects() {
            line += &format!(" hca_object={n}");
        }
        if line != *device {
            c.write(&format!("rdma.{device}"), "rdma.max", &line)?;
        }
    }
    Ok(())
}

/// `unified`: cgroup2 only; the value is written as-is to the file of that
/// name (`resources.rs` refuses it without a cgroup2 hierarchy).
pub(super) fn unified(c: &Ctl, field: &str, key: &str, value: &str) -> Result<(), CgroupError> {
    c.write(field, key, value)
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "limits_proptests.rs"]
mod proptests;
