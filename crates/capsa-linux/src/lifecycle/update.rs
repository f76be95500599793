//! `update`: new resource limits for a created, running or paused
//! container.
//!
//! As runc, the values given are merged into the container's current
//! resources (a field left out keeps its value: an update of `cpu.period`
//! alone keeps the quota), the merged whole is written to the cgroup, and
//! it is recorded in the state so that the next update merges into it.
//! containerd and CRI-O send the whole `LinuxResources` every time; podman
//! and people send parts.
//!
//! Device rules are kept: rewriting them would deny every device for a
//! moment in v1, so a changed `devices` list is refused, an unchanged one
//! (containerd resends the config's) accepted.

use std::collections::HashMap;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxResources,
};

use super::ContainerStatus;
use crate::error::Error;
use crate::Runtime;

impl Runtime {
    /// Applies `resources` (merged into the current ones) to the container
    /// `id`. Nothing is recorded when the host refuses a value; the values
    /// written before it stay in the cgroup (runc behaves the same).
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), Error> {
        capsa_spec::validate_resources(resources)?;
        let dir = self.state.open(id)?;
        let mut st = dir.load()?;
        if self.status_of(&dir, &st) == ContainerStatus::Stopped {
            return Err(Error::NotRunning);
        }
        let current = st.spec.linux.resources.clone().unwrap_or_default();
        if let Some(devices) = resources.devices() {
            if current.devices().as_deref().unwrap_or_default() != devices.as_slice() {
                return Err(Error::Unsupported(
                    "linux.resources.devices: changing the device rules of an existing container"
                        .into(),
                ));
            }
        }
        let merged = merge_resources(&current, resources);
        st.cgroup.update_resources(&merged)?;
        st.spec.linux.resources = Some(merged);
        dir.save(&st)?;
        Ok(())
    }
}

/// `new` laid over `old`: every field `new` sets replaces the old value;
/// lists keyed by something (huge page sizes, RDMA devices, unified keys)
/// are merged by that key; other lists are replaced whole. `devices` stays
/// as in `old`.
pub(crate) fn merge_resources(old: &LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut out = old.clone();
    if let Some(m) = new.memory() {
        out.set_memory(Some(merge_memory(old.memory().unwrap_or_default(), m)));
    }
    if let Some(c) = new.cpu() {
        out.set_cpu(Some(merge_cpu(old.cpu().clone().unwrap_or_default(), c)));
    }
    if let Some(p) = new.pids() {
        out.set_pids(Some(*p));
    }
    if let Some(b) = new.block_io() {
        let merged = merge_block_io(old.block_io().clone().unwrap_or_default(), b);
        out.set_block_io(Some(merged));
    }
    if let Some(list) = new.hugepage_limits() {
        let mut merged: Vec<LinuxHugepageLimit> = old.hugepage_limits().clone().unwrap_or_default();
        for h in list {
            match merged.iter_mut().find(|o| o.page_size() == h.page_size()) {
                Some(o) => *o = h.clone(),
                None => merged.push(h.clone()),
            }
        }
        out.set_hugepage_limits(Some(merged));
    }
    if let Some(n) = new.network() {
        let mut merged: LinuxNetwork = old.network().clone().unwrap_or_default();
        if n.class_id().is_some() {
            merged.set_class_id(n.class_id());
        }
        if n.priorities().is_some() {
            merged.set_priorities(n.priorities().clone());
        }
        out.set_network(Some(merged));
    }
    if let Some(map) = new.rdma() {
        let mut merged = old.rdma().clone().unwrap_or_default();
        merged.extend(map.iter().map(|(k, v)| (k.clone(), *v)));
        out.set_rdma(Some(merged));
    }
    if let Some(map) = new.unified() {
        let mut merged: HashMap<String, String> = old.unified().clone().unwrap_or_default();
        merged.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(merged));
    }
    out
}

#[allow(deprecated)] // `kernel` is deprecated by oci-spec; still carried over.
fn merge_memory(mut m: LinuxMemory, n: &LinuxMemory) -> LinuxMemory {
    m.set_limit(n.limit().or(m.limit()));
    m.set_reservation(n.reservation().or(m.reservation()));
    m.set_swap(n.swap().or(m.swap()));
    m.set_kernel(n.kernel().or(m.kernel()));
    m.set_kernel_tcp(n.kernel_tcp().or(m.kernel_tcp()));
    m.set_swappiness(n.swappiness().or(m.swappiness()));
    m.set_disable_oom_killer(n.disable_oom_killer().or(m.disable_oom_killer()));
    m.set_use_hierarchy(n.use_hierarchy().or(m.use_hierarchy()));
    m.set_check_before_update(n.check_before_update().or(m.check_before_update()));
    m
}

fn merge_cpu(mut c: LinuxCpu, n: &LinuxCpu) -> LinuxCpu {
    c.set_shares(n.shares().or(c.shares()));
    c.set_quota(n.quota().or(c.quota()));
    c.set_idle(n.idle().or(c.idle()));
    c.set_burst(n.burst().or(c.burst()));
    c.set_period(n.period().or(c.period()));
    c.set_realtime_runtime(n.realtime_runtime().or(c.realtime_runtime()));
    c.set_realtime_period(n.realtime_period().or(c.realtime_period()));
    if n.cpus().is_some() {
        c.set_cpus(n.cpus().clone());
    }
    if n.mems().is_some() {
        c.set_mems(n.mems().clone());
    }
    c
}

fn merge_block_io(mut b: LinuxBlockIo, n: &LinuxBlockIo) -> LinuxBlockIo {
    b.set_weight(n.weight().or(b.weight()));
    b.set_leaf_weight(n.leaf_weight().or(b.leaf_weight()));
    if n.weight_device().is_some() {
        b.set_weight_device(n.weight_device().clone());
    }
    if n.throttle_read_bps_device().is_some() {
        b.set_throttle_read_bps_device(n.throttle_read_bps_device().clone());
    }
    if n.throttle_write_bps_device().is_some() {
        b.set_throttle_write_bps_device(n.throttle_write_bps_device().clone());
    }
    if n.throttle_read_iops_device().is_some() {
        b.set_throttle_read_iops_device(n.throttle_read_iops_device().clone());
    }
    if n.throttle_write_iops_device().is_some() {
        b.set_throttle_write_iops_device(n.throttle_write_iops_device().clone());
    }
    b
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn merged(old: serde_json::Value, new: serde_json::Value) -> serde_json::Value {
        serde_json::to_value(merge_resources(&r(old), &r(new))).unwrap()
    }

    #[test]
    fn fields_left_out_keep_their_values() {
        let old = json!({
            "memory": {"limit": 100, "swap": 200},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]
        });
        let got = merged(
            old,
            json!({"memory": {"limit": 150}, "cpu": {"period": 200000}, "pids": {"limit": 20}}),
        );
        assert_eq!(
            got,
            json!({
                "memory": {"limit": 150, "swap": 200},
                "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0"},
                "pids": {"limit": 20},
                "devices": [{"allow": false, "access": "rwm"}]
            })
        );
    }

    #[test]
    fn keyed_lists_merge_by_key_and_other_lists_are_replaced() {
        let old = json!({
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": 2}],
            "unified": {"memory.high": "1", "pids.max": "5"},
            "rdma": {"mlx4_0": {"hcaHandles": 1}},
            "blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]},
            "network": {"classID": 7}
        });
        let new = json!({
            "hugepageLimits": [{"pageSize": "1GB", "limit": 3}, {"pageSize": "64KB", "limit": 4}],
            "unified": {"memory.high": "9"},
            "rdma": {"mlx5_1": {"hcaObjects": 2}},
            "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 5}]},
            "network": {"priorities": [{"name": "lo", "priority": 1}]}
        });
        let got = merged(old, new);
        assert_eq!(
            got["hugepageLimits"],
            json!([{"pageSize": "2MB", "limit": 1}, {"pageSize": "1GB", "limit": 3}, {"pageSize": "64KB", "limit": 4}])
        );
        assert_eq!(got["unified"], json!({"memory.high": "9", "pids.max": "5"}));
        assert_eq!(
            got["rdma"],
            json!({"mlx4_0": {"hcaHandles": 1}, "mlx5_1": {"hcaObjects": 2}})
        );
        assert_eq!(
            got["blockIO"],
            json!({"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 16, "rate": 5}]})
        );
        assert_eq!(
            got["network"],
            json!({"classID": 7, "priorities": [{"name": "lo", "priority": 1}]})
        );
    }

    #[test]
    fn an_empty_update_changes_nothing() {
        let old = r(json!({"memory": {"limit": 100}, "cpu": {"cpus": "0-1"}}));
        assert_eq!(merge_resources(&old, &LinuxResources::default()), old);
        assert_eq!(
            merge_resources(&LinuxResources::default(), &old),
            old,
            "the first update of a container without resources"
        );
    }
}
