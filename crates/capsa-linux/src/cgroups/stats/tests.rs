//! Statistics read from fake v1, v2 and hybrid trees, and the JSON they
//! make, compared with what runc 1.1.5 prints for the same files.

use std::fs;
use std::path::PathBuf;

use serde_json::json;
use tempfile::TempDir;

use super::super::fake_tree::{fake_tree, FakeTree};
use super::*;

/// A fake host with `mounts` (directory, fs type, super options); the
/// container's cgroup is `/capsa/ctr` in each, created empty.
struct Fake {
    root: TempDir,
    cgroup: ContainerCgroup,
}

fn fake(mounts: &[(&str, &str, &str)]) -> Fake {
    let FakeTree { root, host } = fake_tree(mounts, None);
    for (name, _, _) in mounts {
        fs::create_dir_all(root.path().join(name).join("capsa/ctr")).unwrap();
    }
    let cgroup = host.container_cgroup(None, "ctr").unwrap();
    Fake { root, cgroup }
}

/// This host's layout: one v1 hierarchy per controller, cgroup2 beside.
fn v1_host() -> Fake {
    fake(&[
        ("cpu", "cgroup", "rw,cpu"),
        ("cpuacct", "cgroup", "rw,cpuacct"),
        ("cpuset", "cgroup", "rw,cpuset"),
        ("memory", "cgroup", "rw,memory"),
        ("blkio", "cgroup", "rw,blkio"),
        ("pids", "cgroup", "rw,pids"),
        ("hugetlb", "cgroup", "rw,hugetlb"),
        ("unified", "cgroup2", "rw"),
    ])
}

fn v2_host() -> Fake {
    fake(&[("", "cgroup2", "rw,nsdelegate")])
}

impl Fake {
    /// Writes `files` (name, content) into the container's directory of
    /// hierarchy `name`.
    fn files(&self, name: &str, files: &[(&str, &str)]) -> &Self {
        let dir = self.dir(name);
        for (file, text) in files {
            fs::write(dir.join(file), text).unwrap();
        }
        self
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name).join("capsa/ctr")
    }
}

/// The files of the runc container whose `events --stats` is in
/// [`runc_v1_output`] (raw memory.stat cut short).
fn runc_v1_files(f: &Fake) {
    f.files(
        "cpuacct",
        &[
            ("cpuacct.usage", "9312050\n"),
            ("cpuacct.usage_percpu", "944579 8367471 \n"),
            ("cpuacct.stat", "user 0\nsystem 0\n"),
            (
                "cpuacct.usage_all",
                "cpu user system\n0 0 0\n1 4000000 4000000\n",
            ),
        ],
    )
    .files(
        "cpu",
        &[(
            "cpu.stat",
            "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n",
        )],
    )
    .files(
        "cpuset",
        &[
            ("cpuset.cpus", "0-1\n"),
            ("cpuset.mems", "0\n"),
            ("cpuset.cpu_exclusive", "0\n"),
            ("cpuset.mem_exclusive", "0\n"),
            ("cpuset.mem_hardwall", "0\n"),
            ("cpuset.memory_migrate", "0\n"),
            ("cpuset.memory_pressure", "0\n"),
            ("cpuset.memory_spread_page", "0\n"),
            ("cpuset.memory_spread_slab", "0\n"),
            ("cpuset.sched_load_balance", "1\n"),
            ("cpuset.sched_relax_domain_level", "-1\n"),
        ],
    )
    .files(
        "memory",
        &[
            (
                "memory.stat",
                "cache 0\nrss 57344\nhierarchical_memory_limit 67108864\n\
                 hierarchical_memsw_limit 9223372036854771712\npgfault 660\n",
            ),
            ("memory.usage_in_bytes", "483328\n"),
            ("memory.max_usage_in_bytes", "1994752\n"),
            ("memory.failcnt", "0\n"),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.memsw.usage_in_bytes", "483328\n"),
            ("memory.memsw.max_usage_in_bytes", "1994752\n"),
            ("memory.memsw.failcnt", "0\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.kmem.usage_in_bytes", "286720\n"),
            ("memory.kmem.max_usage_in_bytes", "548864\n"),
            ("memory.kmem.failcnt", "0\n"),
            ("memory.kmem.limit_in_bytes", "9223372036854771712\n"),
            ("memory.kmem.tcp.usage_in_bytes", "0\n"),
            ("memory.kmem.tcp.max_usage_in_bytes", "0\n"),
            ("memory.kmem.tcp.failcnt", "0\n"),
            ("memory.kmem.tcp.limit_in_bytes", "9223372036854771712\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
        ],
    )
    .files(
        "blkio",
        &[
            ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            ("blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
            ("blkio.throttle.io_serviced_recursive", "Total 0\n"),
            ("blkio.throttle.io_service_bytes_recursive", "Total 0\n"),
            ("blkio.throttle.io_serviced", "Total 0\n"),
            ("blkio.throttle.io_service_bytes", "Total 0\n"),
        ],
    )
    .files("pids", &[("pids.current", "1\n"), ("pids.max", "50\n")]);
}

/// `runc events --stats` for those files on this host (runc 1.1.5).
fn runc_v1_output() -> serde_json::Value {
    json!({
        "cpu": {
            "usage": {"total": 9312050, "percpu": [944579, 8367471],
                      "percpu_kernel": [0, 4000000], "percpu_user": [0, 4000000],
                      "kernel": 0, "user": 0},
            "throttling": {}
        },
        "cpuset": {"cpus": [0, 1], "cpu_exclusive": 0, "mems": [0], "mem_hardwall": 0,
                   "mem_exclusive": 0, "memory_migrate": 0, "memory_spread_page": 0,
                   "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 1,
                   "sched_relax_domain_level": -1},
        "memory": {
            "usage": {"limit": 67108864, "usage": 483328, "max": 1994752, "failcnt": 0},
            "swap": {"limit": 9223372036854771712_u64, "usage": 483328, "max": 1994752, "failcnt": 0},
            "kernel": {"limit": 9223372036854771712_u64, "usage": 286720, "max": 548864, "failcnt": 0},
            "kernelTCP": {"limit": 9223372036854771712_u64, "failcnt": 0},
            "raw": {"cache": 0, "hierarchical_memory_limit": 67108864,
                    "hierarchical_memsw_limit": 9223372036854771712_u64, "pgfault": 660,
                    "rss": 57344}
        },
        "pids": {"current": 1, "limit": 50},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": null
    })
}

#[test]
fn v1_stats_are_the_json_runc_prints() {
    let f = v1_host();
    runc_v1_files(&f);
    let stats = f.cgroup.stats().unwrap();
    assert_eq!(serde_json::to_value(&stats).unwrap(), runc_v1_output());
    // And go-runc's decoder shape reads it back.
    let back: Stats = serde_json::from_value(runc_v1_output()).unwrap();
    assert_eq!(back, stats);
    assert_eq!(f.cgroup.oom_kill_count().unwrap(), Some(0));
}

#[test]
fn v1_cpu_ticks_become_nanoseconds_and_throttling_is_read() {
    let f = v1_host();
    f.files("cpuacct", &[("cpuacct.stat", "user 150\nsystem 25\n")])
        .files(
            "cpu",
            &[(
                "cpu.stat",
                "nr_periods 40\nnr_throttled 7\nthrottled_time 123456789\n",
            )],
        );
    let cpu = f.cgroup.stats().unwrap().cpu;
    assert_eq!(cpu.usage.user, 1_500_000_000);
    assert_eq!(cpu.usage.kernel, 250_000_000);
    assert_eq!(
        serde_json::to_value(&cpu.throttling).unwrap(),
        json!({"periods": 40, "throttledPeriods": 7, "throttledTime": 123456789})
    );
}

#[test]
fn v1_blkio_takes_the_first_group_with_entries() {
    let f = v1_host();
    // BFQ files exist but hold only the total (no I/O through BFQ): the
    // throttling layer's recursive files are used.
    f.files(
        "blkio",
        &[
            ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            ("blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 10\n8:0 Write 3\n8:0 Sync 13\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 13\nTotal 13\n",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 40960\n8:0 Write 4096\nTotal 45056\n",
            ),
            ("blkio.throttle.io_serviced", "8:0 Read 999\n"),
        ],
    );
    let blkio = serde_json::to_value(f.cgroup.stats().unwrap().blkio).unwrap();
    assert_eq!(
        blkio,
        json!({
            "ioServiceBytesRecursive": [
                {"major": 8, "op": "Read", "value": 40960},
                {"major": 8, "op": "Write", "value": 4096}
            ],
            "ioServicedRecursive": [
                {"major": 8, "op": "Read", "value": 10},
                {"major": 8, "op": "Write", "value": 3},
                {"major": 8, "op": "Sync", "value": 13},
                {"major": 8, "op": "Async"},
                {"major": 8, "op": "Discard"},
                {"major": 8, "op": "Total", "value": 13}
            ]
        })
    );
}

#[test]
fn v1_blkio_bfq_with_entries_wins_and_sectors_have_no_op() {
    let f = v1_host();
    f.files(
        "blkio",
        &[
            ("blkio.bfq.sectors_recursive", "8:16 2048\n"),
            ("blkio.bfq.io_service_time_recursive", "8:16 Read 5\n"),
            ("blkio.bfq.io_wait_time_recursive", "8:16 Read 6\n"),
            ("blkio.bfq.io_merged_recursive", "8:16 Read 7\n"),
            ("blkio.bfq.io_queued_recursive", "8:16 Read 8\n"),
            ("blkio.bfq.time_recursive", "8:16 9\n"),
            ("blkio.bfq.io_serviced_recursive", "8:16 Read 10\n"),
            ("blkio.bfq.io_service_bytes_recursive", "8:16 Read 11\n"),
            ("blkio.throttle.io_serviced_recursive", "8:0 Read 999\n"),
        ],
    );
    let b = f.cgroup.stats().unwrap().blkio;
    let entry = |op: &str, value| BlkioEntry {
        major: 8,
        minor: 16,
        op: op.into(),
        value,
    };
    assert_eq!(b.sectors_recursive, vec![entry("", 2048)]);
    assert_eq!(b.io_time_recursive, vec![entry("", 9)]);
    assert_eq!(b.io_queued_recursive, vec![entry("Read", 8)]);
    assert_eq!(b.io_serviced_recursive, vec![entry("Read", 10)]);
    assert_eq!(b.io_service_bytes_recursive, vec![entry("Read", 11)]);
    let json = serde_json::to_value(&b).unwrap();
    assert!(
        json.get("ioQueueRecursive").is_some(),
        "runc's name: {json}"
    );
}

#[test]
fn v1_hugetlb_per_page_size_without_reservations() {
    let f = v1_host();
    f.files(
        "hugetlb",
        &[
            ("hugetlb.2MB.usage_in_bytes", "4194304\n"),
            ("hugetlb.2MB.max_usage_in_bytes", "6291456\n"),
            ("hugetlb.2MB.failcnt", "2\n"),
            ("hugetlb.2MB.limit_in_bytes", "8388608\n"),
            ("hugetlb.2MB.rsvd.usage_in_bytes", "1\n"),
            ("hugetlb.1GB.usage_in_bytes", "0\n"),
            ("hugetlb.1GB.max_usage_in_bytes", "0\n"),
            ("hugetlb.1GB.failcnt", "0\n"),
        ],
    );
    assert_eq!(
        serde_json::to_value(f.cgroup.stats().unwrap().hugetlb).unwrap(),
        json!({
            "1GB": {"failcnt": 0},
            "2MB": {"usage": 4194304, "max": 6291456, "failcnt": 2}
        })
    );
}

#[test]
fn v1_unlimited_pids_read_as_zero() {
    let f = v1_host();
    f.files("pids", &[("pids.current", "3\n"), ("pids.max", "max\n")]);
    let pids = f.cgroup.stats().unwrap().pids;
    assert_eq!(
        pids,
        Pids {
            current: 3,
            limit: 0
        }
    );
    assert_eq!(serde_json::to_value(pids).unwrap(), json!({"current": 3}));
}

#[test]
fn v2_stats_from_cgroup2_files() {
    let f = v2_host();
    f.files(
        "",
        &[
            (
                "cpu.stat",
                "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\n\
                 nr_throttled 4\nthrottled_usec 300\nnr_bursts 0\nburst_usec 0\n",
            ),
            ("memory.stat", "anon 4096\nfile 8192\nkernel 1024\n"),
            ("memory.current", "16384\n"),
            ("memory.max", "67108864\n"),
            ("memory.peak", "32768\n"),
            ("memory.swap.current", "4096\n"),
            ("memory.swap.max", "0\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
            ),
            ("pids.current", "2\n"),
            ("pids.max", "20\n"),
            (
                "io.stat",
                "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
                 253:1 rbytes=4096 wbytes=0 rios=4 wios=0 dbytes=0 dios=0\n",
            ),
            ("hugetlb.2MB.current", "2097152\n"),
            ("hugetlb.2MB.events", "max 3\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.rsvd.current", "0\n"),
        ],
    );
    let s = serde_json::to_value(f.cgroup.stats().unwrap()).unwrap();
    assert_eq!(
        s["cpu"],
        json!({
            "usage": {"total": 2_500_000, "kernel": 500_000, "user": 2_000_000},
            "throttling": {"periods": 10, "throttledPeriods": 4, "throttledTime": 300_000}
        })
    );
    assert_eq!(
        s["memory"],
        json!({
            "cache": 8192,
            "usage": {"limit": 67108864, "usage": 16384, "max": 32768, "failcnt": 0},
            // memory + swap, as v1 reports it.
            "swap": {"limit": 67108864, "usage": 20480, "failcnt": 0},
            "kernel": {"limit": 0, "failcnt": 0},
            "kernelTCP": {"limit": 0, "failcnt": 0},
            "raw": {"anon": 4096, "file": 8192, "kernel": 1024}
        })
    );
    assert_eq!(s["pids"], json!({"current": 2, "limit": 20}));
    assert_eq!(
        s["blkio"],
        json!({
            "ioServiceBytesRecursive": [
                {"major": 8, "op": "Read", "value": 1024},
                {"major": 8, "op": "Write", "value": 2048},
                {"major": 253, "minor": 1, "op": "Read", "value": 4096},
                {"major": 253, "minor": 1, "op": "Write"}
            ],
            "ioServicedRecursive": [
                {"major": 8, "op": "Read", "value": 1},
                {"major": 8, "op": "Write", "value": 2},
                {"major": 253, "minor": 1, "op": "Read", "value": 4},
                {"major": 253, "minor": 1, "op": "Write"}
            ]
        })
    );
    assert_eq!(
        s["hugetlb"],
        json!({"2MB": {"usage": 2097152, "failcnt": 3}})
    );
    assert_eq!(s["cpuset"]["cpus"], json!(null), "no v1 cpuset: defaults");
    assert_eq!(f.cgroup.oom_kill_count().unwrap(), Some(2));
}

#[test]
fn v2_unlimited_memory_and_swap_stay_unlimited() {
    let f = v2_host();
    f.files(
        "",
        &[
            ("memory.stat", "file 0\n"),
            ("memory.current", "100\n"),
            ("memory.max", "max\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "max\n"),
        ],
    );
    let m = f.cgroup.stats().unwrap().memory;
    assert_eq!(m.usage.limit, u64::MAX);
    assert_eq!(m.swap.limit, u64::MAX);
    assert_eq!(m.swap.usage, 100);
}

#[test]
fn v2_without_the_pids_controller_counts_cgroup_procs() {
    let f = v2_host();
    f.files("", &[("cgroup.procs", "41\n42\n43\n")]);
    assert_eq!(
        f.cgroup.stats().unwrap().pids,
        Pids {
            current: 3,
            limit: 0
        }
    );
}

#[test]
fn hybrid_reads_each_controller_where_it_lives() {
    // v1 memory and cpuacct; hugetlb and pids only in cgroup2.
    let f = fake(&[
        ("cpuacct", "cgroup", "rw,cpuacct"),
        ("memory", "cgroup", "rw,memory"),
        ("unified", "cgroup2", "rw"),
    ]);
    f.files(
        "cpuacct",
        &[
            ("cpuacct.usage", "77\n"),
            ("cpuacct.usage_percpu", "70 7\n"),
        ],
    )
    .files(
        "memory",
        &[
            ("memory.stat", "cache 5\n"),
            ("memory.usage_in_bytes", "10\n"),
            ("memory.limit_in_bytes", "20\n"),
            ("memory.max_usage_in_bytes", "15\n"),
            ("memory.failcnt", "1\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
            ),
        ],
    )
    .files(
        "unified",
        &[
            // Must not be used: cpuacct is v1 here.
            (
                "cpu.stat",
                "usage_usec 999\nuser_usec 999\nsystem_usec 999\n",
            ),
            ("memory.events", "oom_kill 99\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.events", "max 0\n"),
            ("cgroup.procs", "1\n"),
        ],
    );
    let s = f.cgroup.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 77);
    assert_eq!(s.cpu.usage.percpu, vec![70, 7]);
    assert_eq!(s.cpu.usage.user, 0);
    assert_eq!(s.memory.cache, 5);
    assert_eq!(
        s.memory.usage,
        MemoryEntry {
            limit: 20,
            usage: 10,
            max: 15,
            failcnt: 1
        }
    );
    assert_eq!(s.memory.swap, MemoryEntry::default(), "no memsw files");
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), ["2MB"]);
    assert_eq!(f.cgroup.oom_kill_count().unwrap(), Some(4));
}

#[test]
fn missing_files_leave_parts_empty() {
    for f in [v1_host(), v2_host()] {
        let s = f.cgroup.stats().unwrap();
        assert_eq!(s, Stats::default());
        assert_eq!(f.cgroup.oom_kill_count().unwrap(), None);
    }
    // The cgroup removed altogether (a container deleted meanwhile).
    let f = v1_host();
    fs::remove_dir_all(f.root.path().join("memory")).unwrap();
    fs::remove_dir_all(f.root.path().join("hugetlb")).unwrap();
    assert_eq!(f.cgroup.stats().unwrap(), Stats::default());
    // The empty shape is runc's for a host without those controllers.
    assert_eq!(
        serde_json::to_value(Stats::default()).unwrap(),
        json!({
            "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
            "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                       "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                       "memory_pressure": 0, "sched_load_balance": 0,
                       "sched_relax_domain_level": 0},
            "memory": {"usage": {"limit": 0, "failcnt": 0}, "swap": {"limit": 0, "failcnt": 0},
                       "kernel": {"limit": 0, "failcnt": 0},
                       "kernelTCP": {"limit": 0, "failcnt": 0}},
            "pids": {},
            "blkio": {},
            "hugetlb": {},
            "intel_rdt": {},
            "network_interfaces": null
        })
    );
}

#[test]
fn malformed_files_are_named() {
    let f = v1_host();
    f.files("pids", &[("pids.current", "lots\n")]);
    let err = f.cgroup.stats().unwrap_err().to_string();
    assert!(err.contains("pids/capsa/ctr/pids.current"), "{err}");
    assert!(err.contains("expected a number"), "{err}");

    let f = v2_host();
    f.files("", &[("memory.stat", "anon 1\nbroken\n")]);
    let err = f.cgroup.stats().unwrap_err().to_string();
    assert!(err.contains("memory.stat line 2"), "{err}");
}

#[test]
fn counters_read_like_runc() {
    assert_eq!(parse_counter("12\n"), Some(12));
    assert_eq!(parse_counter("max"), Some(u64::MAX));
    assert_eq!(parse_counter("-1"), Some(0));
    assert_eq!(parse_counter("-"), None);
    assert_eq!(parse_counter("1.5"), None);
}

#[test]
fn cpu_lists() {
    let f = v1_host();
    f.files(
        "cpuset",
        &[("cpuset.cpus", "0-2,5,7-8\n"), ("cpuset.mems", "\n")],
    );
    let s = f.cgroup.stats().unwrap();
    assert_eq!(s.cpuset.cpus, vec![0, 1, 2, 5, 7, 8]);
    assert!(s.cpuset.mems.is_empty());
    f.files("cpuset", &[("cpuset.cpus", "3-1\n")]);
    assert!(f.cgroup.stats().is_err());
}
