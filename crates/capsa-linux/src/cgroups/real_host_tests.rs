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
    let id = format!("capsa-test-{}-{nanos}", std::process::id());
    let cgroup = host.container_cgroup(None, &id).unwrap();
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
