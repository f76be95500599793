//! The lifecycle against the host's real cgroups. It needs root, so it is
//! ignored by default; run it as root with
//! `cargo test -p capsa-linux cgroups -- --include-ignored`.

use std::fs;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::unistd::Uid;

use super::{CgroupHost, ContainerCgroup};

/// Kills the sleepers and removes the cgroup even when an assertion fails,
/// so a failed run leaves nothing behind on the host.
struct Cleanup<'a> {
    cgroup: &'a ContainerCgroup,
    children: Vec<Child>,
}

impl Cleanup<'_> {
    fn kill_children(&mut self) {
        for mut child in self.children.drain(..) {
            // Already exited is fine; `wait` reaps it either way.
            let _ = child.kill();
            child.wait().unwrap();
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.kill_children();
        let _ = self.cgroup.remove();
    }
}

fn sleeper() -> (Child, i32) {
    let child = Command::new("sleep").arg("5").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    (child, pid)
}

#[test]
#[ignore = "needs root and real cgroups"]
fn container_cgroup_lifecycle_on_the_real_host() {
    let cgroup = real_host_cgroup("life");
    let id = cgroup
        .relative_path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let parents_before: Vec<bool> = cgroup
        .hierarchies()
        .iter()
        .map(|h| h.dir().parent().unwrap().exists())
        .collect();

    cgroup.create().unwrap();
    let mut cleanup = Cleanup {
        cgroup: &cgroup,
        children: Vec::new(),
    };
    for hierarchy in cgroup.hierarchies() {
        assert!(hierarchy.dir().is_dir(), "{}", hierarchy.dir().display());
        // A nested cgroup, as a container's own cgroup manager would make.
        fs::create_dir(hierarchy.dir().join("sub")).unwrap();
    }

    let (child, pid) = sleeper();
    cleanup.children.push(child);
    cgroup.add_process(pid).unwrap();
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let joined = own
        .lines()
        .filter(|l| l.ends_with(&format!("/capsa/{id}")))
        .count();
    assert_eq!(joined, cgroup.hierarchies().len(), "{own}");

    // A second process in the nested cgroup (cpuset's would need its
    // cpus and mems filled in first; it can stay in the parent there).
    let (child, nested_pid) = sleeper();
    cleanup.children.push(child);
    cgroup.add_process(nested_pid).unwrap();
    for hierarchy in cgroup.hierarchies() {
        if !hierarchy.controllers().iter().any(|c| c == "cpuset") {
            let procs = hierarchy.dir().join("sub/cgroup.procs");
            fs::write(&procs, nested_pid.to_string()).unwrap();
        }
    }
    let mut expected = vec![pid, nested_pid];
    expected.sort_unstable();
    assert_eq!(cgroup.pids().unwrap(), expected);

    let err = cgroup.add_process(i32::MAX).unwrap_err();
    let procs = cgroup.hierarchies()[0].dir().join("cgroup.procs");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write pid {} to {}: No such process (os error 3)",
            i32::MAX,
            procs.display()
        )
    );

    // The sleepers were just killed: `remove` must wait for them to leave.
    cleanup.kill_children();
    cgroup.remove().unwrap();
    for (hierarchy, parent_existed) in cgroup.hierarchies().iter().zip(parents_before) {
        assert!(!hierarchy.dir().exists(), "{}", hierarchy.dir().display());
        let parent = hierarchy.dir().parent().unwrap();
        if !parent_existed {
            assert!(!parent.exists(), "{}", parent.display());
        }
    }
}

fn real_host_cgroup(tag: &str) -> ContainerCgroup {
    assert!(
        Uid::effective().is_root(),
        "this test needs root: it creates cgroups under /sys/fs/cgroup"
    );
    let host = CgroupHost::detect(
        Path::new("/proc/self/mountinfo"),
        Path::new("/proc/self/cgroup"),
    )
    .unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("capsa-test-{tag}-{}-{nanos}", std::process::id());
    host.container_cgroup(None, &id).unwrap()
}

/// The container's directory of a controller and whether it is cgroup2.
fn dir_of(cgroup: &ContainerCgroup, v1: &str, v2: &str) -> (std::path::PathBuf, bool) {
    let c = super::resources::Resolver::new(cgroup)
        .controller("test", Some(v1), Some(v2))
        .unwrap();
    (c.dir, c.v2)
}

fn read_trimmed(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root and real cgroups"]
fn resources_are_applied_to_a_real_cgroup() {
    let cgroup = real_host_cgroup("res");
    cgroup.create().unwrap();
    let _cleanup = Cleanup {
        cgroup: &cgroup,
        children: Vec::new(),
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 17}
    }))
    .unwrap();
    cgroup.apply_resources(&r).unwrap();

    let (mem, v2) = dir_of(&cgroup, "memory", "memory");
    if v2 {
        assert_eq!(read_trimmed(&mem, "memory.max"), "67108864");
        assert_eq!(read_trimmed(&mem, "memory.low"), "33554432");
        if mem.join("memory.swap.max").exists() {
            assert_eq!(read_trimmed(&mem, "memory.swap.max"), "67108864");
        }
    } else {
        assert_eq!(read_trimmed(&mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read_trimmed(&mem, "memory.soft_limit_in_bytes"), "33554432");
        if mem.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                read_trimmed(&mem, "memory.memsw.limit_in_bytes"),
                "134217728"
            );
        }
    }
    let (cpu, v2) = dir_of(&cgroup, "cpu", "cpu");
    if v2 {
        assert_eq!(read_trimmed(&cpu, "cpu.weight"), "20");
        assert_eq!(read_trimmed(&cpu, "cpu.max"), "20000 100000");
    } else {
        assert_eq!(read_trimmed(&cpu, "cpu.shares"), "512");
        assert_eq!(read_trimmed(&cpu, "cpu.cfs_quota_us"), "20000");
        assert_eq!(read_trimmed(&cpu, "cpu.cfs_period_us"), "100000");
    }
    let (cpuset, _) = dir_of(&cgroup, "cpuset", "cpuset");
    assert_eq!(read_trimmed(&cpuset, "cpuset.cpus"), "0");
    assert_eq!(read_trimmed(&cpuset, "cpuset.mems"), "0");
    let (pids, _) = dir_of(&cgroup, "pids", "pids");
    assert_eq!(read_trimmed(&pids, "pids.max"), "17");

    // An update: unlimited pids, a new quota, memory limit unlimited.
    let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": -1, "swap": -1},
        "cpu": {"quota": -1, "period": 50000},
        "pids": {"limit": -1}
    }))
    .unwrap();
    cgroup.apply_resources(&r).unwrap();
    assert_eq!(read_trimmed(&pids, "pids.max"), "max");
    let (_, v2) = dir_of(&cgroup, "cpu", "cpu");
    if v2 {
        assert_eq!(read_trimmed(&cpu, "cpu.max"), "max 50000");
    } else {
        assert_eq!(read_trimmed(&cpu, "cpu.cfs_quota_us"), "-1");
        assert_eq!(read_trimmed(&cpu, "cpu.cfs_period_us"), "50000");
    }

    // A CPU this host lacks: the kernel refuses, the error names the field.
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"cpu": {"cpus": "0-4095"}})).unwrap();
    let err = cgroup.apply_resources(&r).unwrap_err().to_string();
    assert!(
        err.starts_with("linux.resources.cpu.cpus: cannot write \"0-4095\" to ")
            && err.contains("cpuset.cpus"),
        "{err}"
    );
    assert_eq!(read_trimmed(&cpuset, "cpuset.cpus"), "0");
}

#[test]
#[ignore = "needs root and real cgroups"]
fn hugetlb_on_the_cgroup2_side_of_a_hybrid_host() {
    let cgroup = real_host_cgroup("huge");
    let Some(v2) = cgroup.hierarchies().iter().find(|h| h.is_v2()) else {
        eprintln!("no cgroup2 hierarchy: nothing to test");
        return;
    };
    let listed = fs::read_to_string(v2.mount_point().join("cgroup.controllers")).unwrap();
    let v1_has = cgroup
        .hierarchies()
        .iter()
        .any(|h| h.controllers().iter().any(|c| c == "hugetlb"));
    if v1_has || !listed.split_whitespace().any(|c| c == "hugetlb") {
        eprintln!("hugetlb is not a cgroup2-only controller here: nothing to test");
        return;
    }
    cgroup.create().unwrap();
    let _cleanup = Cleanup {
        cgroup: &cgroup,
        children: Vec::new(),
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
    }))
    .unwrap();
    cgroup.apply_resources(&r).unwrap();
    assert_eq!(read_trimmed(v2.dir(), "hugetlb.2MB.max"), "4194304");
    let parent = v2.dir().parent().unwrap();
    assert!(read_trimmed(parent, "cgroup.subtree_control")
        .split_whitespace()
        .any(|c| c == "hugetlb"));
}

/// A shell loop appending to a file every 10 ms: it grows while the
/// process runs and stops while it is frozen.
fn ticker(file: &Path) -> (Child, i32) {
    let script = format!("while :; do echo x >> {}; sleep 0.01; done", file.display());
    let child = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    (child, pid)
}

fn size(file: &Path) -> u64 {
    fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

#[test]
#[ignore = "needs root and real cgroups"]
fn freeze_and_thaw_a_real_process() {
    let cgroup = real_host_cgroup("freeze");
    cgroup.create().unwrap();
    let mut cleanup = Cleanup {
        cgroup: &cgroup,
        children: Vec::new(),
    };
    let out = tempfile::NamedTempFile::new().unwrap();
    let (child, pid) = ticker(out.path());
    cleanup.children.push(child);
    cgroup.add_process(pid).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(size(out.path()) > 0, "the ticker never ran");

    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    let frozen_at = size(out.path());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        size(out.path()),
        frozen_at,
        "a frozen process made progress"
    );

    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        size(out.path()) > frozen_at,
        "the thawed process did not continue"
    );

    // SIGKILL to a frozen process takes effect once it is thawed.
    cgroup.freeze().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    cgroup.thaw().unwrap();
    let mut child = cleanup.children.pop().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
}
