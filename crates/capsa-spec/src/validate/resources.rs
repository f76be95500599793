//! `linux.resources` (everything but `devices`, which `linux.rs` turns into
//! typed rules): the checks that need no host. The values stay in
//! oci-spec's types; the Linux crate writes them to the cgroup files and
//! reports what this particular host cannot apply (a missing controller or
//! file, a CPU the host lacks).
//!
//! Every error names the JSON path, `linux.resources.<field>`. `capsa update`
//! reads a bare `LinuxResources` object and reports the same paths.

use oci_spec::runtime as oci;

use crate::error::SpecError;

/// The JSON path prefix of every field checked here.
const AT: &str = "linux.resources";

/// The kernel's limits for CFS bandwidth control (`cpu.cfs_period_us`):
/// 1 ms to 1 s; a quota below 1 ms is refused too.
const CFS_MIN_US: u64 = 1_000;
const CFS_MAX_PERIOD_US: u64 = 1_000_000;

/// What runc accepts as "not set" for swappiness: Docker sends -1, which
/// becomes `u64::MAX` in the spec's unsigned field.
pub const SWAPPINESS_UNSET: u64 = u64::MAX;

/// Checks everything but `devices` (see `linux.rs`).
pub(crate) fn validate(r: &oci::LinuxResources) -> Result<(), SpecError> {
    if let Some(m) = r.memory() {
        memory(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c)?;
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        if !is_page_size(h.page_size()) {
            return Err(SpecError::invalid(
                format!("{AT}.hugepageLimits[{i}].pageSize"),
                format!(
                    "{:?} is not a huge page size such as \"2MB\" or \"1GB\"",
                    h.page_size()
                ),
            ));
        }
        bytes_or_unlimited(h.limit(), &format!("hugepageLimits[{i}].limit"))?;
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            if !is_word(p.name()) {
                return Err(SpecError::invalid(
                    format!("{AT}.network.priorities[{i}].name"),
                    format!("{:?} is not a network interface name", p.name()),
                ));
            }
        }
    }
    for device in r.rdma().iter().flat_map(|m| m.keys()) {
        if !is_word(device) {
            return Err(SpecError::invalid(
                format!("{AT}.rdma"),
                format!("{device:?} is not an RDMA device name"),
            ));
        }
    }
    for key in r.unified().iter().flat_map(|m| m.keys()) {
        unified_key(key)?;
    }
    Ok(())
}

fn memory(m: &oci::LinuxMemory) -> Result<(), SpecError> {
    let limit = m.limit();
    for (field, value) in [
        ("limit", limit),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
    ] {
        if let Some(v) = value {
            bytes_or_unlimited(v, &format!("memory.{field}"))?;
        }
    }
    if let (Some(swap), Some(limit)) = (m.swap(), limit) {
        if swap > 0 && limit > 0 && swap < limit {
            return Err(SpecError::invalid(
                format!("{AT}.memory.swap"),
                format!(
                    "{swap} is below memory.limit {limit}: swap is the limit of memory plus swap"
                ),
            ));
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 && s != SWAPPINESS_UNSET {
            return Err(SpecError::invalid(
                format!("{AT}.memory.swappiness"),
                format!("{s} is not between 0 and 100"),
            ));
        }
    }
    Ok(())
}

fn cpu(c: &oci::LinuxCpu) -> Result<(), SpecError> {
    let at = |f: &str| format!("{AT}.cpu.{f}");
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(CFS_MIN_US..=CFS_MAX_PERIOD_US).contains(&p) {
            return Err(SpecError::invalid(
                at("period"),
                format!("{p} is not between {CFS_MIN_US} and {CFS_MAX_PERIOD_US} microseconds"),
            ));
        }
    }
    if let Some(q) = c.quota() {
        if q > 0 && (q as u64) < CFS_MIN_US {
            return Err(SpecError::invalid(
                at("quota"),
                format!("{q} is below the kernel's minimum of {CFS_MIN_US} microseconds"),
            ));
        }
        if q < -1 {
            return Err(SpecError::invalid(
                at("quota"),
                format!("{q} is neither a number of microseconds nor -1 (no limit)"),
            ));
        }
    }
    if let Some(idle) = c.idle() {
        if idle != 0 && idle != 1 {
            return Err(SpecError::invalid(
                at("idle"),
                format!("{idle} is not 0 or 1"),
            ));
        }
    }
    for (field, list) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(list) = list.as_deref().filter(|l| !l.is_empty()) {
            if !is_id_list(list) {
                return Err(SpecError::invalid(
                    at(field),
                    format!("{list:?} is not a list of ids and ranges such as \"0-3,6\""),
                ));
            }
        }
    }
    Ok(())
}

fn block_io(b: &oci::LinuxBlockIo) -> Result<(), SpecError> {
    let weight = |w: Option<u16>, field: String| match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => Err(SpecError::invalid(
            format!("{AT}.blockIO.{field}"),
            format!("{w} is not between 10 and 1000"),
        )),
        _ => Ok(()),
    };
    weight(b.weight(), "weight".into())?;
    weight(b.leaf_weight(), "leafWeight".into())?;
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        device_numbers(d.major(), d.minor(), &format!("weightDevice[{i}]"))?;
        weight(d.weight(), format!("weightDevice[{i}].weight"))?;
        weight(d.leaf_weight(), format!("weightDevice[{i}].leafWeight"))?;
    }
    for (name, list) in [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ] {
        for (i, d) in list.iter().flatten().enumerate() {
            device_numbers(d.major(), d.minor(), &format!("{name}[{i}]"))?;
        }
    }
    Ok(())
}

fn device_numbers(major: i64, minor: i64, field: &str) -> Result<(), SpecError> {
    if major < 0 || minor < 0 {
        return Err(SpecError::invalid(
            format!("{AT}.blockIO.{field}"),
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

/// A byte count, or -1 for no limit.
fn bytes_or_unlimited(value: i64, field: &str) -> Result<(), SpecError> {
    if value < -1 {
        return Err(SpecError::invalid(
            format!("{AT}.{field}"),
            format!("{value} is neither a number of bytes nor -1 (no limit)"),
        ));
    }
    Ok(())
}

/// A cgroup v2 file name: `<controller>.<name>`, one path component.
fn unified_key(key: &str) -> Result<(), SpecError> {
    let bad = |why: &str| {
        Err(SpecError::invalid(
            format!("{AT}.unified.{key}"),
            format!("{key:?} {why}"),
        ))
    };
    if key.contains('/') || key.contains('\0') {
        return bad("is not a file name (it contains '/')");
    }
    match key.split_once('.') {
        Some((controller, name)) if is_word(controller) && !name.is_empty() => {}
        _ => return bad("is not a cgroup v2 file name such as \"memory.high\""),
    }
    if matches!(
        key,
        "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control"
    ) {
        return bad("is managed by the runtime and cannot be set");
    }
    Ok(())
}

/// `2MB`, `1GB`, `64KB`: the names the kernel uses in hugetlb file names.
fn is_page_size(s: &str) -> bool {
    let Some(digits) = ["KB", "MB", "GB"].iter().find_map(|u| s.strip_suffix(u)) else {
        return false;
    };
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `0-3,6`: cpuset(7) list format.
fn is_id_list(s: &str) -> bool {
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    s.trim_end_matches('\n')
        .split(',')
        .all(|part| match part.split_once('-') {
            Some((a, b)) => number(a) && number(b),
            None => number(part),
        })
}

/// A name that can stand in a cgroup file line: non-empty, no whitespace.
fn is_word(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> Result<(), String> {
        let r: oci::LinuxResources = serde_json::from_value(json).unwrap();
        validate(&r).map_err(|e| e.to_string())
    }

    #[test]
    fn good_values_pass() {
        check(serde_json::json!({
            "memory": {"limit": 1048576, "reservation": -1, "swap": 2097152, "swappiness": 60,
                       "kernel": 1, "kernelTCP": 1, "disableOOMKiller": true},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0",
                    "idle": 1, "burst": 1000, "realtimeRuntime": 950000, "realtimePeriod": 1000000},
            "pids": {"limit": -1},
            "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
            "unified": {"memory.high": "max", "cgroup.freeze": "0"}
        }))
        .unwrap();
        // Docker's "not set" swappiness, -1 seen through an unsigned field.
        check(serde_json::json!({"memory": {"swappiness": u64::MAX}})).unwrap();
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases = [
            (
                serde_json::json!({"memory": {"limit": -2}}),
                "linux.resources.memory.limit:",
            ),
            (
                serde_json::json!({"memory": {"limit": 200, "swap": 100}}),
                "linux.resources.memory.swap: 100 is below memory.limit 200",
            ),
            (
                serde_json::json!({"memory": {"swappiness": 101}}),
                "linux.resources.memory.swappiness: 101 is not between 0 and 100",
            ),
            (
                serde_json::json!({"cpu": {"period": 10}}),
                "linux.resources.cpu.period:",
            ),
            (
                serde_json::json!({"cpu": {"quota": 999}}),
                "linux.resources.cpu.quota:",
            ),
            (
                serde_json::json!({"cpu": {"quota": -2}}),
                "linux.resources.cpu.quota:",
            ),
            (
                serde_json::json!({"cpu": {"idle": 2}}),
                "linux.resources.cpu.idle:",
            ),
            (
                serde_json::json!({"cpu": {"cpus": "0-"}}),
                "linux.resources.cpu.cpus:",
            ),
            (
                serde_json::json!({"cpu": {"mems": "a"}}),
                "linux.resources.cpu.mems:",
            ),
            (
                serde_json::json!({"blockIO": {"weight": 5}}),
                "linux.resources.blockIO.weight:",
            ),
            (
                serde_json::json!({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 2000}]}}),
                "linux.resources.blockIO.weightDevice[0].leafWeight:",
            ),
            (
                serde_json::json!({"blockIO": {"throttleWriteIOPSDevice": [{"major": -1, "minor": 0, "rate": 1}]}}),
                "linux.resources.blockIO.throttleWriteIOPSDevice[0]:",
            ),
            (
                serde_json::json!({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}),
                "linux.resources.hugepageLimits[0].pageSize:",
            ),
            (
                serde_json::json!({"network": {"priorities": [{"name": "a b", "priority": 1}]}}),
                "linux.resources.network.priorities[0].name:",
            ),
            (
                serde_json::json!({"rdma": {"": {}}}),
                "linux.resources.rdma:",
            ),
            (
                serde_json::json!({"unified": {"../memory.max": "1"}}),
                "linux.resources.unified.../memory.max:",
            ),
            (
                serde_json::json!({"unified": {"memory": "1"}}),
                "linux.resources.unified.memory:",
            ),
            (
                serde_json::json!({"unified": {"cgroup.procs": "1"}}),
                "linux.resources.unified.cgroup.procs:",
            ),
        ];
        for (json, want) in cases {
            let got = check(json.clone()).unwrap_err();
            assert!(
                got.starts_with(&format!("config.json: {want}")),
                "{json}: {got}"
            );
        }
    }

    #[test]
    fn list_and_size_formats() {
        assert!(is_id_list("0") && is_id_list("0-3,5,7-8") && is_id_list("1\n"));
        assert!(!is_id_list("") && !is_id_list("0,,1") && !is_id_list("-1") && !is_id_list("0 1"));
        assert!(is_page_size("2MB") && is_page_size("1GB") && is_page_size("64KB"));
        assert!(!is_page_size("MB") && !is_page_size("2mb") && !is_page_size("2 MB"));
    }
}
