//! Fake cgroup hosts for unit tests: a tempdir whose subdirectories stand in
//! for the mounted hierarchies, described by a `mountinfo` and a
//! `/proc/self/cgroup` written beside them, and the [`CgroupHost`] detected
//! from those two files as on a real host.

use std::fs;

use tempfile::TempDir;

use super::CgroupHost;

pub(crate) struct FakeTree {
    pub root: TempDir,
    pub host: CgroupHost,
}

/// `mounts` are (directory name, fs type, super options), in mount order; an
/// empty name mounts the hierarchy at the tempdir itself.
/// Each mount point gets what the kernel shows at a hierarchy's root that
/// capsa reads: `cpuset.cpus` and `cpuset.mems` where cpuset is mounted,
/// and with `v2_controllers`, a cgroup2 root's `cgroup.controllers` (that
/// list) and an empty `cgroup.subtree_control`. capsa's own cgroup is `/`.
pub(crate) fn fake_tree(mounts: &[(&str, &str, &str)], v2_controllers: Option<&str>) -> FakeTree {
    let root = tempfile::tempdir().unwrap();
    let mut mountinfo = String::new();
    for (i, (name, fs_type, options)) in mounts.iter().enumerate() {
        let mount_point = root.path().join(name);
        fs::create_dir_all(&mount_point).unwrap();
        if let (Some(list), "cgroup2") = (v2_controllers, *fs_type) {
            fs::write(mount_point.join("cgroup.controllers"), list).unwrap();
            fs::write(mount_point.join("cgroup.subtree_control"), "").unwrap();
        }
        if options.contains("cpuset") {
            fs::write(mount_point.join("cpuset.cpus"), "0-3\n").unwrap();
            fs::write(mount_point.join("cpuset.mems"), "0\n").unwrap();
        }
        mountinfo += &format!(
            "{} 1 0:{} / {} rw - {fs_type} {fs_type} {options}\n",
            i + 10,
            i + 10,
            mount_point.display()
        );
    }
    fs::write(root.path().join("mountinfo"), mountinfo).unwrap();
    fs::write(root.path().join("cgroup"), "0::/\n").unwrap();
    let host =
        CgroupHost::detect(&root.path().join("mountinfo"), &root.path().join("cgroup")).unwrap();
    FakeTree { root, host }
}
