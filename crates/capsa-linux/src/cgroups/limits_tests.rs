//! Every translation and every file written, on plain directories: a test
//! makes the control files a kernel would offer, applies a resource, and
//! reads back what was written. Files a resource must not touch keep their
//! "untouched" content.

use std::fs;

use serde_json::json;
use tempfile::TempDir;

use super::*;

const UNTOUCHED: &str = "untouched";

/// A directory with these control files, each holding [`UNTOUCHED`]
/// unless a value is given.
fn tree(v2: bool, files: &[&str]) -> (TempDir, Ctl) {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let (name, content) = f.split_once('=').unwrap_or((f, UNTOUCHED));
        fs::write(dir.path().join(name), content).unwrap();
    }
    let ctl = Ctl {
        dir: dir.path().to_path_buf(),
        v2,
    };
    (dir, ctl)
}

fn read(c: &Ctl, file: &str) -> String {
    fs::read_to_string(c.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn mem(v: serde_json::Value) -> LinuxMemory {
    serde_json::from_value(v).unwrap()
}

fn cpu_of(v: serde_json::Value) -> LinuxCpu {
    serde_json::from_value(v).unwrap()
}

fn blkio(v: serde_json::Value) -> LinuxBlockIo {
    serde_json::from_value(v).unwrap()
}

#[test]
fn shares_translate_to_weight_like_runc_and_crun() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(2048), 79);
    assert_eq!(shares_to_weight(262_144), 10_000);
    // Out of range is clamped as the v1 kernel clamps it.
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(shares_to_weight(1_000_000), 10_000);
}

#[test]
fn blkio_weight_translates_to_io_weight() {
    assert_eq!(blkio_weight_to_io_weight(10), 1);
    assert_eq!(blkio_weight_to_io_weight(500), 4950);
    assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    assert_eq!(blkio_weight_to_io_weight(1), 1);
}

#[test]
fn v2_swap_is_the_total_minus_the_limit() {
    let ok = |swap, limit| v2_swap(swap, limit).unwrap();
    assert_eq!(ok(Some(300), Some(100)), Some("200".into()));
    assert_eq!(ok(Some(100), Some(100)), Some("0".into()));
    assert_eq!(ok(Some(-1), Some(100)), Some("max".into()));
    assert_eq!(ok(None, Some(-1)), Some("max".into()));
    assert_eq!(ok(None, Some(100)), None);
    assert_eq!(ok(Some(0), Some(100)), None);
    assert_eq!(ok(None, None), None);
    assert!(v2_swap(Some(300), None)
        .unwrap_err()
        .contains("needs a memory limit"));
    assert!(v2_swap(Some(300), Some(-1)).is_err());
    assert!(v2_swap(Some(50), Some(100)).unwrap_err().contains("below"));
}

#[test]
fn v1_swap_goes_first_only_when_it_grows_past_the_limit() {
    assert!(v1_swap_first(100, 200));
    assert!(v1_swap_first(100, -1));
    assert!(!v1_swap_first(300, 200));
    assert!(!v1_swap_first(200, 200));
    // A fresh cgroup's "unlimited" limit is huge: the limit goes first.
    assert!(!v1_swap_first(9_223_372_036_854_771_712, 200));
}

#[test]
fn v1_memory_writes_every_file() {
    let (_d, c) = tree(
        false,
        &[
            "memory.limit_in_bytes=9223372036854771712\n",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "memory.use_hierarchy",
            "memory.kmem.limit_in_bytes",
            "memory.kmem.tcp.limit_in_bytes",
        ],
    );
    let m = mem(
        json!({"limit": 1048576, "swap": 2097152, "reservation": 524288,
        "swappiness": 10, "disableOOMKiller": true, "useHierarchy": true,
        "kernel": 4096, "kernelTCP": 4096}),
    );
    memory(&c, &m).unwrap();
    assert_eq!(read(&c, "memory.limit_in_bytes"), "1048576");
    assert_eq!(read(&c, "memory.memsw.limit_in_bytes"), "2097152");
    assert_eq!(read(&c, "memory.soft_limit_in_bytes"), "524288");
    assert_eq!(read(&c, "memory.swappiness"), "10");
    assert_eq!(read(&c, "memory.oom_control"), "1");
    assert_eq!(read(&c, "memory.use_hierarchy"), "1");
    // Kernel memory is ignored, as runc does.
    assert_eq!(read(&c, "memory.kmem.limit_in_bytes"), UNTOUCHED);
    assert_eq!(read(&c, "memory.kmem.tcp.limit_in_bytes"), UNTOUCHED);
}

#[test]
fn v1_memory_unlimited_takes_swap_along_and_unset_swappiness_is_skipped() {
    let (_d, c) = tree(
        false,
        &[
            "memory.limit_in_bytes=1048576",
            "memory.memsw.limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
        ],
    );
    memory(
        &c,
        &mem(json!({"limit": -1, "swappiness": u64::MAX, "disableOOMKiller": false})),
    )
    .unwrap();
    assert_eq!(read(&c, "memory.limit_in_bytes"), "-1");
    assert_eq!(read(&c, "memory.memsw.limit_in_bytes"), "-1");
    assert_eq!(read(&c, "memory.swappiness"), UNTOUCHED);
    assert_eq!(read(&c, "memory.oom_control"), UNTOUCHED);
}

#[test]
fn v1_memory_without_swap_accounting() {
    // No memsw file: unlimited is fine, a real swap limit is an error.
    let (_d, c) = tree(false, &["memory.limit_in_bytes=1048576"]);
    memory(&c, &mem(json!({"limit": -1}))).unwrap();
    memory(&c, &mem(json!({"limit": 100, "swap": -1}))).unwrap();
    let err = memory(&c, &mem(json!({"limit": 100, "swap": 200}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.memory.swap: {} does not exist on this host, so the value cannot be applied",
            c.path("memory.memsw.limit_in_bytes").display()
        )
    );
}

#[test]
fn v1_memory_swap_order_follows_the_current_limit() {
    // memsw is a directory, so writing it fails: whether the limit was
    // written before shows the order.
    let (_d, c) = tree(false, &["memory.limit_in_bytes=100"]);
    fs::create_dir(c.path("memory.memsw.limit_in_bytes")).unwrap();
    let growing = mem(json!({"limit": 150, "swap": 300}));
    assert!(memory(&c, &growing).is_err());
    assert_eq!(
        read(&c, "memory.limit_in_bytes"),
        "100",
        "swap must go first"
    );
    let shrinking = mem(json!({"limit": 50, "swap": 80}));
    let err = memory(&c, &shrinking).unwrap_err();
    assert_eq!(
        read(&c, "memory.limit_in_bytes"),
        "50",
        "the limit must go first"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("linux.resources.memory.swap: cannot write \"80\" to "),
        "{text}"
    );
}

#[test]
fn v2_memory_translates_and_writes_every_file() {
    let (_d, c) = tree(
        true,
        &[
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "memory.current=4096",
        ],
    );
    let m = mem(
        json!({"limit": 1048576, "swap": 3145728, "reservation": 524288,
        "kernel": 1, "checkBeforeUpdate": true, "useHierarchy": true}),
    );
    memory(&c, &m).unwrap();
    assert_eq!(read(&c, "memory.max"), "1048576");
    assert_eq!(read(&c, "memory.swap.max"), "2097152");
    assert_eq!(read(&c, "memory.low"), "524288");
    memory(&c, &mem(json!({"limit": -1, "reservation": -1}))).unwrap();
    assert_eq!(read(&c, "memory.max"), "max");
    assert_eq!(read(&c, "memory.swap.max"), "max");
    assert_eq!(read(&c, "memory.low"), "max");
}

#[test]
fn v2_memory_refuses_what_it_cannot_express() {
    let (_d, c) = tree(
        true,
        &["memory.max", "memory.swap.max", "memory.current=1048576\n"],
    );
    let cases = [
        (json!({"swappiness": 10}), "linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness, so 10 cannot be applied"),
        (json!({"disableOOMKiller": true}), "linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer of a cgroup"),
        (json!({"useHierarchy": false}), "linux.resources.memory.useHierarchy: cgroup v2 accounting is always hierarchical"),
        (json!({"swap": 100}), "linux.resources.memory.swap: a swap limit needs a memory limit (memory.limit) in cgroup v2"),
    ];
    for (json, want) in cases {
        assert_eq!(memory(&c, &mem(json)).unwrap_err().to_string(), want);
    }
    let err = memory(&c, &mem(json!({"limit": 4096, "checkBeforeUpdate": true}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.memory.limit: 4096 is below the current usage 1048576 ({}) and memory.checkBeforeUpdate is set",
            c.path("memory.current").display()
        )
    );
    assert_eq!(
        read(&c, "memory.max"),
        UNTOUCHED,
        "nothing written on refusal"
    );
    // Without checkBeforeUpdate the kernel decides (it reclaims or OOM-kills).
    memory(&c, &mem(json!({"limit": 4096}))).unwrap();
    assert_eq!(read(&c, "memory.max"), "4096");
    // Swappiness "unset" (-1 from Docker) is not a value.
    memory(&c, &mem(json!({"swappiness": u64::MAX}))).unwrap();
}

#[test]
fn v2_memory_without_swap_accounting_accepts_max_and_zero() {
    let (_d, c) = tree(true, &["memory.max"]);
    memory(&c, &mem(json!({"limit": -1}))).unwrap();
    memory(&c, &mem(json!({"limit": 100, "swap": 100}))).unwrap();
    let err = memory(&c, &mem(json!({"limit": 100, "swap": 200}))).unwrap_err();
    assert!(
        matches!(err, CgroupError::ResourceFileMissing { .. }),
        "{err}"
    );
}

#[test]
fn v1_cpu_writes_every_file() {
    let files = [
        "cpu.shares",
        "cpu.cfs_quota_us",
        "cpu.cfs_period_us",
        "cpu.cfs_burst_us",
        "cpu.rt_runtime_us",
        "cpu.rt_period_us",
        "cpu.idle",
    ];
    let (_d, c) = tree(false, &files);
    let spec = cpu_of(
        json!({"shares": 2048, "quota": 50000, "period": 100000, "burst": 1000,
        "realtimeRuntime": 95000, "realtimePeriod": 1000000, "idle": 0}),
    );
    cpu(&c, &spec).unwrap();
    assert_eq!(read(&c, "cpu.shares"), "2048");
    assert_eq!(read(&c, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&c, "cpu.cfs_period_us"), "100000");
    assert_eq!(read(&c, "cpu.cfs_burst_us"), "1000");
    assert_eq!(read(&c, "cpu.rt_runtime_us"), "95000");
    assert_eq!(read(&c, "cpu.rt_period_us"), "1000000");
    assert_eq!(read(&c, "cpu.idle"), "0");
    // No quota: -1 in v1. Unset fields are left alone.
    let (_d, c) = tree(false, &files);
    cpu(&c, &cpu_of(json!({"quota": -1}))).unwrap();
    assert_eq!(read(&c, "cpu.cfs_quota_us"), "-1");
    for f in files.iter().filter(|f| **f != "cpu.cfs_quota_us") {
        assert_eq!(read(&c, f), UNTOUCHED, "{f}");
    }
}

#[test]
fn v2_cpu_translates_to_weight_and_cpu_max() {
    let files = ["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"];
    let (_d, c) = tree(true, &files);
    cpu(
        &c,
        &cpu_of(json!({"shares": 1024, "quota": 50000, "period": 100000, "burst": 500, "idle": 1})),
    )
    .unwrap();
    assert_eq!(read(&c, "cpu.weight"), "39");
    assert_eq!(read(&c, "cpu.max"), "50000 100000");
    assert_eq!(read(&c, "cpu.max.burst"), "500");
    assert_eq!(read(&c, "cpu.idle"), "1");
    cpu(&c, &cpu_of(json!({"quota": -1, "period": 250000}))).unwrap();
    assert_eq!(read(&c, "cpu.max"), "max 250000");
    cpu(&c, &cpu_of(json!({"period": 100000}))).unwrap();
    assert_eq!(read(&c, "cpu.max"), "max 100000");
    cpu(&c, &cpu_of(json!({"quota": 20000}))).unwrap();
    assert_eq!(read(&c, "cpu.max"), "20000");
    for (json, field) in [
        (json!({"realtimeRuntime": 1000}), "cpu.realtimeRuntime"),
        (json!({"realtimePeriod": 1000}), "cpu.realtimePeriod"),
    ] {
        let err = cpu(&c, &cpu_of(json)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "linux.resources.{field}: cgroup v2 has no realtime"
            )),
            "{err}"
        );
    }
}

#[test]
fn cpuset_is_the_same_in_both_versions() {
    for v2 in [false, true] {
        let (_d, c) = tree(v2, &["cpuset.cpus", "cpuset.mems"]);
        cpuset(&c, &cpu_of(json!({"cpus": "0-1", "mems": "0"}))).unwrap();
        assert_eq!(read(&c, "cpuset.cpus"), "0-1");
        assert_eq!(read(&c, "cpuset.mems"), "0");
        let (_d, c) = tree(v2, &["cpuset.cpus", "cpuset.mems"]);
        cpuset(&c, &cpu_of(json!({"cpus": "", "mems": "0"}))).unwrap();
        assert_eq!(read(&c, "cpuset.cpus"), UNTOUCHED);
    }
}

#[test]
fn pids_max_is_max_for_zero_and_negative() {
    for (limit, want) in [(10, "10"), (0, "max"), (-1, "max")] {
        for v2 in [false, true] {
            let (_d, c) = tree(v2, &["pids.max"]);
            pids(
                &c,
                &serde_json::from_value(json!({"limit": limit})).unwrap(),
            )
            .unwrap();
            assert_eq!(read(&c, "pids.max"), want);
        }
    }
}

#[test]
fn v1_blkio_without_weight_files_names_field_and_file() {
    // This host's kernel: throttling only, no CFQ or BFQ weights.
    let (_d, c) = tree(false, &["blkio.throttle.read_bps_device"]);
    let err = block_io(&c, &blkio(json!({"weight": 500}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.blockIO.weight: {} does not exist on this host, so the value cannot be applied",
            c.path("blkio.weight").display()
        )
    );
    let err = block_io(&c, &blkio(json!({"leafWeight": 500}))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.blockIO.leafWeight: "),
        "{err}"
    );
    let throttle = json!({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]});
    block_io(&c, &blkio(throttle)).unwrap();
    assert_eq!(read(&c, "blkio.throttle.read_bps_device"), "8:0 1048576");
}

#[test]
fn v1_blkio_writes_every_file() {
    let files = [
        "blkio.weight",
        "blkio.weight_device",
        "blkio.leaf_weight",
        "blkio.leaf_weight_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    let (_d, c) = tree(false, &files);
    let b = blkio(json!({
        "weight": 300, "leafWeight": 200,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 100, "leafWeight": 50}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 3}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]
    }));
    block_io(&c, &b).unwrap();
    let want = [
        ("blkio.weight", "300"),
        ("blkio.leaf_weight", "200"),
        ("blkio.weight_device", "8:0 100"),
        ("blkio.leaf_weight_device", "8:0 50"),
        ("blkio.throttle.read_bps_device", "8:0 1"),
        ("blkio.throttle.write_bps_device", "8:16 2"),
        ("blkio.throttle.read_iops_device", "8:0 3"),
        ("blkio.throttle.write_iops_device", "8:0 0"),
    ];
    for (file, value) in want {
        assert_eq!(read(&c, file), value, "{file}");
    }
}

#[test]
fn v1_blkio_uses_bfq_names_when_only_bfq_has_weights() {
    let (_d, c) = tree(false, &["blkio.bfq.weight", "blkio.bfq.weight_device"]);
    let b =
        blkio(json!({"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}]}));
    block_io(&c, &b).unwrap();
    assert_eq!(read(&c, "blkio.bfq.weight"), "300");
    assert_eq!(read(&c, "blkio.bfq.weight_device"), "8:0 100");
}

#[test]
fn v2_io_translates_weights_and_throttles() {
    let (_d, c) = tree(true, &["io.weight", "io.max"]);
    block_io(&c, &blkio(json!({"weight": 500}))).unwrap();
    assert_eq!(read(&c, "io.weight"), "default 4950");
    block_io(
        &c,
        &blkio(json!({"weightDevice": [{"major": 8, "minor": 0, "weight": 1000}]})),
    )
    .unwrap();
    assert_eq!(read(&c, "io.weight"), "8:0 10000");
    let cases = [
        ("throttleReadBpsDevice", 1048576, "8:0 rbps=1048576"),
        ("throttleWriteBpsDevice", 2, "8:0 wbps=2"),
        ("throttleReadIOPSDevice", 3, "8:0 riops=3"),
        ("throttleWriteIOPSDevice", 0, "8:0 wiops=max"),
    ];
    for (name, rate, line) in cases {
        block_io(
            &c,
            &blkio(json!({name: [{"major": 8, "minor": 0, "rate": rate}]})),
        )
        .unwrap();
        assert_eq!(read(&c, "io.max"), line, "{name}");
    }
    let err = block_io(&c, &blkio(json!({"leafWeight": 100}))).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weights"),
        "{err}"
    );
    // BFQ takes the blkio scale unchanged.
    let (_d, c) = tree(true, &["io.bfq.weight", "io.weight"]);
    block_io(&c, &blkio(json!({"weight": 500}))).unwrap();
    assert_eq!(read(&c, "io.bfq.weight"), "500");
    assert_eq!(read(&c, "io.weight"), UNTOUCHED);
}

#[test]
fn hugepage_limits_in_both_versions_with_reservations() {
    let list: Vec<LinuxHugepageLimit> = serde_json::from_value(
        json!([{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": -1}]),
    )
    .unwrap();
    let (_d, c) = tree(
        false,
        &[
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.rsvd.limit_in_bytes",
            "hugetlb.1GB.limit_in_bytes",
        ],
    );
    hugepages(&c, &list).unwrap();
    assert_eq!(read(&c, "hugetlb.2MB.limit_in_bytes"), "4194304");
    assert_eq!(read(&c, "hugetlb.2MB.rsvd.limit_in_bytes"), "4194304");
    assert_eq!(read(&c, "hugetlb.1GB.limit_in_bytes"), "-1");
    let (_d, c) = tree(
        true,
        &["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"],
    );
    hugepages(&c, &list).unwrap();
    assert_eq!(read(&c, "hugetlb.2MB.max"), "4194304");
    assert_eq!(read(&c, "hugetlb.2MB.rsvd.max"), "4194304");
    assert_eq!(read(&c, "hugetlb.1GB.max"), "max");
    // A page size this host lacks.
    let (_d, c) = tree(true, &["hugetlb.2MB.max"]);
    let err = hugepages(&c, &list).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "linux.resources.hugepageLimits[1]: {} does not exist on this host, so the value cannot be applied",
            c.path("hugetlb.1GB.max").display()
        )
    );
}

#[test]
fn rdma_lines_name_each_device() {
    let map: HashMap<String, LinuxRdma> =
        serde_json::from_value(json!({"mlx5_1": {"hcaHandles": 3, "hcaObjects": 100}, "mlx4_0": {"hcaObjects": 7}, "none": {}}))
            .unwrap();
    // Each write replaces the plain file's content: the last one shows.
    let dir = tempfile::tempdir().unwrap();
    let c = Ctl {
        dir: dir.path().to_path_buf(),
        v2: true,
    };
    fs::write(c.path("rdma.max"), "").unwrap();
    rdma(&c, &map).unwrap();
    // Sorted by device: mlx5_1 was written last.
    assert_eq!(read(&c, "rdma.max"), "mlx5_1 hca_handle=3 hca_object=100");
    let single: HashMap<String, LinuxRdma> =
        serde_json::from_value(json!({"mlx4_0": {"hcaObjects": 7}})).unwrap();
    rdma(&c, &single).unwrap();
    assert_eq!(read(&c, "rdma.max"), "mlx4_0 hca_object=7");
}

#[test]
fn unified_writes_the_named_file() {
    let (_d, c) = tree(true, &["memory.high"]);
    unified(&c, "unified.memory.high", "memory.high", "123456").unwrap();
    assert_eq!(read(&c, "memory.high"), "123456");
    let err = unified(&c, "unified.memory.oom.group", "memory.oom.group", "1").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.resources.unified.memory.oom.group: "),
        "{err}"
    );
}

#[test]
fn a_kernel_refusal_names_field_value_and_file() {
    // A directory cannot be written: stands in for the kernel's EINVAL.
    let (_d, c) = tree(false, &[]);
    fs::create_dir(c.path("cpuset.cpus")).unwrap();
    let err = cpuset(&c, &cpu_of(json!({"cpus": "0-63"}))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "linux.resources.cpu.cpus: cannot write \"0-63\" to {}: ",
            c.path("cpuset.cpus").display()
        )),
        "{text}"
    );
}
