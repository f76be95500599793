//! `linux.resources` as systemd unit properties (systemd.resource-control(5)),
//! mapped as runc's systemd driver maps them. systemd writes these to the
//! unit's cgroup itself and keeps them across `daemon-reload`; capsa then
//! writes every resource to the cgroup files too (the cgroupfs code), which
//! covers what systemd has no property for and gives the exact values.
//!
//! Property names differ by host: a pure cgroup v2 host gets the v2 names
//! (MemoryMax, CPUWeight, IOWeight, ...); a v1 or hybrid host the v1 ones
//! (MemoryLimit, CPUShares, BlockIOWeight), as runc's legacy manager.

use oci_spec::runtime::LinuxResources;

use super::super::limits::{blkio_weight_to_io_weight, shares_to_weight, v2_swap};
use super::super::CgroupError;
use super::wire::Value;

/// systemd's "infinity" for byte and task counts and for USec values.
const INFINITY: u64 = u64::MAX;
/// The kernel's default CFS period, when the spec sets a quota alone.
const DEFAULT_PERIOD_US: u64 = 100_000;
/// The first systemd versions with CPUQuotaPeriodUSec, with AllowedCPUs /
/// AllowedMemoryNodes, and with CPUWeight=0 meaning `cpu.idle`.
const PERIOD_SINCE: u32 = 242;
const CPUSET_SINCE: u32 = 244;
const IDLE_SINCE: u32 = 252;

/// One unit property: its name and value (sent inside a variant).
pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// The properties for `r` on a host that is pure cgroup v2 (`v2`) or not,
/// managed by systemd `version`.
pub fn resource_properties(
    r: &LinuxResources,
    v2: bool,
    version: u32,
) -> Result<Vec<Property>, CgroupError> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit().filter(|l| *l != 0) {
            let name = if v2 { "MemoryMax" } else { "MemoryLimit" };
            out.push(prop(name, Value::U64(bytes(limit))));
        }
        if let Some(low) = m.reservation().filter(|l| *l != 0).filter(|_| v2) {
            out.push(prop("MemoryLow", Value::U64(bytes(low))));
        }
        if v2 {
            let swap =
                v2_swap(m.swap(), m.limit()).map_err(|reason| CgroupError::ResourceRefused {
                    field: "memory.swap".into(),
                    reason,
                })?;
            if let Some(swap) = swap {
                out.push(prop("MemorySwapMax", Value::U64(parse_max(&swap))));
            }
        }
    }
    if let Some(c) = r.cpu() {
        let idle = v2 && version >= IDLE_SINCE && c.idle() == Some(1);
        if idle {
            out.push(prop("CPUWeight", Value::U64(0)));
        }
        if let Some(shares) = c.shares().filter(|s| *s != 0).filter(|_| !idle) {
            if v2 {
                out.push(prop("CPUWeight", Value::U64(shares_to_weight(shares))));
            } else {
                out.push(prop("CPUShares", Value::U64(shares)));
            }
        }
        out.extend(cpu_quota(c.quota(), c.period(), version));
        if version >= CPUSET_SINCE {
            for (value, name, field) in [
                (c.cpus(), "AllowedCPUs", "cpu.cpus"),
                (c.mems(), "AllowedMemoryNodes", "cpu.mems"),
            ] {
                if let Some(list) = value.as_deref().filter(|s| !s.is_empty()) {
                    let bits =
                        range_to_bits(list).map_err(|reason| CgroupError::ResourceRefused {
                            field: field.into(),
                            reason,
                        })?;
                    out.push(prop(name, byte_array(bits)));
                }
            }
        }
    }
    if let Some(weight) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if weight != 0 {
            out.push(if v2 {
                prop("IOWeight", Value::U64(blkio_weight_to_io_weight(weight)))
            } else {
                prop("BlockIOWeight", Value::U64(u64::from(weight)))
            });
        }
    }
    if let Some(p) = r.pids() {
        let max = u64::try_from(p.limit()).ok().filter(|l| *l > 0);
        out.push(prop("TasksMax", Value::U64(max.unwrap_or(INFINITY))));
    }
    if v2 {
        out.extend(unified_properties(r));
    }
    Ok(out)
}

/// `CPUQuotaPeriodUSec` and `CPUQuotaPerSecUSec` (runc's `addCpuQuota`).
/// systemd keeps the quota as a whole percentage of a CPU, so a fraction is
/// rounded up to the next 10 ms per second: the files get the exact value.
fn cpu_quota(quota: Option<i64>, period: Option<u64>, version: u32) -> Vec<Property> {
    let quota = quota.unwrap_or(0);
    let period = period.unwrap_or(0);
    let mut out = Vec::new();
    if period != 0 && version >= PERIOD_SINCE {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota != 0 || period != 0 {
        let per_sec = match u64::try_from(quota).ok().filter(|q| *q > 0) {
            Some(q) => {
                let period = if period == 0 {
                    DEFAULT_PERIOD_US
                } else {
                    period
                };
                (q.saturating_mul(1_000_000) / period).div_ceil(10_000) * 10_000
            }
            None => INFINITY,
        };
        out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
    }
    out
}

/// The `unified` keys systemd has a property for; the files get them all.
fn unified_properties(r: &LinuxResources) -> Vec<Property> {
    let mut keys: Vec<_> = r.unified().iter().flatten().collect();
    keys.sort();
    let mut out = Vec::new();
    for (key, value) in keys {
        let value = value.trim();
        let name = match key.as_str() {
            "memory.high" => "MemoryHigh",
            "memory.low" => "MemoryLow",
            "memory.min" => "MemoryMin",
            "memory.max" => "MemoryMax",
            "memory.swap.max" => "MemorySwapMax",
            "pids.max" => "TasksMax",
            "cpu.weight" => "CPUWeight",
            _ => continue,
        };
        if value == "max" || value.parse::<u64>().is_ok() {
            out.push(prop(name, Value::U64(parse_max(value))));
        }
    }
    out
}

/// A byte count of the spec: -1 (or any negative) is unlimited.
fn bytes(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

fn parse_max(v: &str) -> u64 {
    v.parse().unwrap_or(INFINITY)
}

fn byte_array(bits: Vec<u8>) -> Value {
    Value::Array {
        elem: "y".into(),
        items: bits.into_iter().map(Value::Byte).collect(),
    }
}

/// A cpu or memory-node list such as `0-3,8` as the bit mask systemd's
/// AllowedCPUs takes: byte 0 holds 0-7 (bit 0 is CPU 0), byte 1 8-15, ...
pub fn range_to_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{part:?} in {list:?} is not a number or a range a-b");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let n: usize = part.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi >= 1 << 16 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    if bits.is_empty() {
        return Err(format!("{list:?} names no cpu or node"));
    }
    Ok(bits)
}

#[cfg(test)]
#[path = "properties_tests.rs"]
mod tests;
