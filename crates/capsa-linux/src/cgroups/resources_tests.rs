//! Which hierarchy serves each controller, and the cgroup2 controllers
//! enabled above the container, on fake v1, hybrid and v2 trees.

use std::fs;

use serde_json::json;
use tempfile::TempDir;

use super::super::fake_tree::{fake_tree, FakeTree};
use super::*;

/// A fake host: `mounts` are (directory, fs type, super options); the
/// cgroup2 root lists `v2_controllers`. The container's cgroup is
/// `/capsa/ctr`, already created, its files made by [`Fake::files`].
struct Fake {
    root: TempDir,
    cgroup: ContainerCgroup,
}

fn fake(mounts: &[(&str, &str, &str)], v2_controllers: &str) -> Fake {
    let FakeTree { root, host } = fake_tree(mounts, Some(v2_controllers));
    let cgroup = host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();
    // The intermediate cgroup2 directory, as the kernel would show it once
    // the root delegates everything.
    for h in cgroup.hierarchies().iter().filter(|h| h.is_v2()) {
        let capsa = h.mount_point().join("capsa");
        fs::write(capsa.join("cgroup.controllers"), v2_controllers).unwrap();
        fs::write(capsa.join("cgroup.subtree_control"), "").unwrap();
    }
    Fake { root, cgroup }
}

impl Fake {
    /// Makes control files in the container's directory of hierarchy `name`.
    fn files(&self, name: &str, files: &[&str]) -> &Self {
        let dir = self.dir(name);
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
        self
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name).join("capsa/ctr")
    }

    fn read(&self, relative: &str) -> String {
        let path = self.root.path().join(relative);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn apply(&self, json: serde_json::Value) -> Result<(), CgroupError> {
        self.cgroup
            .apply_resources(&serde_json::from_value(json).unwrap())
    }
}

/// This host: v1 controllers, cgroup2 at `unified` with hugetlb only.
fn hybrid() -> Fake {
    fake(
        &[
            ("cpu", "cgroup", "rw,cpu"),
            ("cpuset", "cgroup", "rw,cpuset"),
            ("memory", "cgroup", "rw,memory"),
            ("pids", "cgroup", "rw,pids"),
            ("blkio", "cgroup", "rw,blkio"),
            ("freezer", "cgroup", "rw,freezer"),
            ("unified", "cgroup2", "rw"),
        ],
        "hugetlb\n",
    )
}

fn pure_v2() -> Fake {
    fake(
        &[("cg2", "cgroup2", "rw,nsdelegate")],
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
}

#[test]
fn hybrid_uses_v1_controllers_and_cgroup2_for_hugetlb() {
    let f = hybrid();
    f.files("memory", &["memory.limit_in_bytes"])
        .files(
            "cpu",
            &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
        )
        .files("pids", &["pids.max"])
        .files("unified", &["hugetlb.2MB.max"]);
    f.apply(json!({
        "memory": {"limit": 1048576},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 42},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "devices": [{"allow": false, "access": "rwm"}]
    }))
    .unwrap();
    assert_eq!(f.read("memory/capsa/ctr/memory.limit_in_bytes"), "1048576");
    assert_eq!(f.read("cpu/capsa/ctr/cpu.shares"), "512");
    assert_eq!(f.read("cpu/capsa/ctr/cpu.cfs_quota_us"), "20000");
    assert_eq!(f.read("cpu/capsa/ctr/cpu.cfs_period_us"), "100000");
    assert_eq!(f.read("cpuset/capsa/ctr/cpuset.cpus"), "1");
    assert_eq!(f.read("cpuset/capsa/ctr/cpuset.mems"), "0");
    assert_eq!(f.read("pids/capsa/ctr/pids.max"), "42");
    assert_eq!(f.read("unified/capsa/ctr/hugetlb.2MB.max"), "2097152");
    // hugetlb enabled from the cgroup2 root down, not in the container.
    assert_eq!(f.read("unified/cgroup.subtree_control"), "+hugetlb");
    assert_eq!(f.read("unified/capsa/cgroup.subtree_control"), "+hugetlb");
    assert!(!f.dir("unified").join("cgroup.subtree_control").exists());
}

#[test]
fn pure_v2_enables_each_controller_once_per_ancestor() {
    let f = pure_v2();
    f.files(
        "cg2",
        &[
            "memory.max",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "pids.max",
            "cpuset.cpus",
        ],
    );
    // An ancestor already delegating everything is left alone.
    let capsa_subtree = f.root.path().join("cg2/capsa/cgroup.subtree_control");
    fs::write(&capsa_subtree, "cpuset cpu memory pids\n").unwrap();
    f.apply(json!({
        "memory": {"limit": 2097152, "swap": 4194304},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": 0}
    }))
    .unwrap();
    assert_eq!(f.read("cg2/capsa/ctr/memory.max"), "2097152");
    assert_eq!(f.read("cg2/capsa/ctr/memory.swap.max"), "2097152");
    assert_eq!(f.read("cg2/capsa/ctr/cpu.weight"), "39");
    assert_eq!(f.read("cg2/capsa/ctr/cpu.max"), "50000 100000");
    assert_eq!(f.read("cg2/capsa/ctr/pids.max"), "max");
    assert_eq!(f.read("cg2/capsa/ctr/cpuset.cpus"), "0-1");
    // Plain files keep only the last write: pids was enabled last at the
    // root, and nothing below it (already delegated).
    assert_eq!(f.read("cg2/cgroup.subtree_control"), "+pids");
    assert_eq!(
        f.read("cg2/capsa/cgroup.subtree_control"),
        "cpuset cpu memory pids\n"
    );
}

#[test]
fn a_controller_the_cgroup2_root_lacks_is_named() {
    let f = pure_v2();
    fs::write(f.root.path().join("cg2/cgroup.controllers"), "cpu memory").unwrap();
    let err = f.apply(json!({"pids": {"limit": 5}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.pids.limit: needs the pids controller, which {} does not list",
            f.root.path().join("cg2/cgroup.controllers").display()
        )
    );
    // On the hybrid host: memory is v1's, so cgroup2 does not have it.
    let f = hybrid();
    let err = f
        .apply(json!({"unified": {"memory.high": "100"}}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.unified.memory.high: needs the memory controller, which {} does not list (and no cgroup v1 hierarchy has it)",
            f.root.path().join("unified/cgroup.controllers").display()
        )
    );
}

#[test]
fn an_ancestor_that_does_not_delegate_is_named() {
    let f = pure_v2();
    f.files("cg2", &["pids.max"]);
    fs::write(f.root.path().join("cg2/capsa/cgroup.controllers"), "cpu").unwrap();
    let err = f.apply(json!({"pids": {"limit": 5}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.pids.limit: needs the pids controller, which {} does not list (its parent does not delegate it)",
            f.root.path().join("cg2/capsa/cgroup.controllers").display()
        )
    );
}

#[test]
fn network_needs_v1_net_cls_and_net_prio() {
    let f = hybrid();
    let err = f
        .apply(json!({"network": {"classID": 1048577}}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.resources.network.classID: needs the net_cls controller, which is not mounted as a \
         cgroup v1 hierarchy on this host (cgroup v2 has no equivalent)"
    );
    let f = fake(&[("net_cls,net_prio", "cgroup", "rw,net_cls,net_prio")], "");
    f.files(
        "net_cls,net_prio",
        &["net_cls.classid", "net_prio.ifpriomap"],
    );
    f.apply(
        json!({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 2}]}}),
    )
    .unwrap();
    assert_eq!(
        f.read("net_cls,net_prio/capsa/ctr/net_cls.classid"),
        "1048577"
    );
    assert_eq!(
        f.read("net_cls,net_prio/capsa/ctr/net_prio.ifpriomap"),
        "lo 2"
    );
}

#[test]
fn unified_is_refused_without_cgroup2_and_written_with_it() {
    let f = fake(&[("memory", "cgroup", "rw,memory")], "");
    let err = f
        .apply(json!({"unified": {"memory.high": "100"}}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.resources.unified.memory.high: unified sets cgroup v2 files, and this host has no \
         cgroup v2 hierarchy"
    );
    let f = pure_v2();
    f.files("cg2", &["memory.high", "cgroup.max.depth"]);
    f.apply(json!({"unified": {"memory.high": "100", "cgroup.max.depth": "2"}}))
        .unwrap();
    assert_eq!(f.read("cg2/capsa/ctr/memory.high"), "100");
    assert_eq!(f.read("cg2/capsa/ctr/cgroup.max.depth"), "2");
    assert_eq!(f.read("cg2/capsa/cgroup.subtree_control"), "+memory");
}

#[test]
fn blkio_on_this_kernel_fails_naming_field_and_file() {
    let f = hybrid();
    f.files("blkio", &["blkio.throttle.read_bps_device"]);
    let err = f.apply(json!({"blockIO": {"weight": 500}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.blockIO.weight: {} does not exist on this host, so the value cannot be applied",
            f.dir("blkio").join("blkio.weight").display()
        )
    );
}

#[test]
fn only_kernel_memory_needs_no_memory_controller() {
    let f = fake(&[("pids", "cgroup", "rw,pids")], "");
    f.apply(json!({"memory": {"kernel": 1000, "kernelTCP": 1000}}))
        .unwrap();
    let err = f.apply(json!({"memory": {"limit": 1000}})).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "linux.resources.memory.limit: needs the memory controller, which is not mounted"
        ),
        "{err}"
    );
}

#[test]
fn empty_sections_write_nothing() {
    let f = fake(&[("pids", "cgroup", "rw,pids")], "");
    f.apply(json!({
        "memory": {}, "cpu": {"cpus": ""}, "blockIO": {}, "hugepageLimits": [],
        "network": {}, "rdma": {}, "unified": {}
    }))
    .unwrap();
}

#[test]
fn pause_uses_the_v1_freezer_on_hybrid_hosts_and_cgroup_freeze_on_v2() {
    let f = hybrid();
    f.files("freezer", &["freezer.state"]);
    f.cgroup.freeze().unwrap();
    assert_eq!(f.read("freezer/capsa/ctr/freezer.state"), "FROZEN");
    assert!(f.cgroup.is_frozen().unwrap());
    f.cgroup.thaw().unwrap();
    assert_eq!(f.read("freezer/capsa/ctr/freezer.state"), "THAWED");
    assert!(!f.cgroup.is_frozen().unwrap());

    let f = pure_v2();
    fs::write(
        f.dir("cg2").join("cgroup.events"),
        "populated 1\nfrozen 1\n",
    )
    .unwrap();
    f.cgroup.freeze().unwrap();
    assert_eq!(f.read("cg2/capsa/ctr/cgroup.freeze"), "1");
    assert!(f.cgroup.is_frozen().unwrap());

    let f = fake(&[("pids", "cgroup", "rw,pids")], "");
    assert_eq!(
        f.cgroup.freeze().unwrap_err().to_string(),
        "cannot pause: the host has no cgroup v1 freezer hierarchy and no cgroup v2 hierarchy"
    );
    assert!(!f.cgroup.is_frozen().unwrap());
}
