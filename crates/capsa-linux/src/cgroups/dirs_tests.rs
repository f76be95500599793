//! Fake trees in a tempdir: plain directories stand in for cgroups and plain
//! files for control files.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::super::fake_tree::{fake_tree, FakeTree};
use super::super::CgroupHost;
use super::*;

/// A host whose hierarchies are directories of a tempdir.
struct FakeHost {
    root: TempDir,
    host: CgroupHost,
}

/// `mounts` are (directory name, fs type, super options), in mount order.
fn fake_host(mounts: &[(&str, &str, &str)]) -> FakeHost {
    let FakeTree { root, host } = fake_tree(mounts, None);
    FakeHost { root, host }
}

/// cpuset, pids and a cgroup2 mount: the shape of a hybrid host.
fn hybrid() -> FakeHost {
    fake_host(&[
        ("cpuset", "cgroup", "rw,cpuset"),
        ("pids", "cgroup", "rw,pids"),
        ("unified", "cgroup2", "rw"),
    ])
}

impl FakeHost {
    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// cgroupfs lets `rmdir` remove a directory listing control files;
    /// plain directories need the stand-in files deleted first.
    fn clear_control_files(&self, relative: &str) {
        fn clear(dir: &Path) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    clear(&path);
                } else {
                    fs::remove_file(path).unwrap();
                }
            }
        }
        clear(&self.path(relative));
    }
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn create_makes_directories_and_copies_cpuset_to_each_new_one() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();

    for mount in ["cpuset", "pids", "unified"] {
        assert!(fake.path(mount).join("capsa/ctr").is_dir(), "{mount}");
    }
    for dir in ["cpuset/capsa", "cpuset/capsa/ctr"] {
        assert_eq!(read(fake.path(dir).join("cpuset.cpus")), "0-3");
        assert_eq!(read(fake.path(dir).join("cpuset.mems")), "0");
    }
    assert!(!fake.path("pids/capsa/cpuset.cpus").exists());
    let expected: Vec<PathBuf> = ["cpuset", "pids", "unified"]
        .iter()
        .flat_map(|m| [fake.path(m).join("capsa"), fake.path(m).join("capsa/ctr")])
        .collect();
    assert_eq!(cgroup.created_dirs(), expected);
}

#[test]
fn create_rolls_back_when_a_hierarchy_fails() {
    let fake = fake_host(&[
        ("pids", "cgroup", "rw,pids"),
        ("unified", "cgroup2", "rw"),
        ("gone", "cgroup", "rw,memory"),
    ]);
    fs::remove_dir(fake.path("gone")).unwrap();
    let cgroup = fake.host.container_cgroup(Some("/a/b"), "ctr").unwrap();
    let err = cgroup.create().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot create cgroup directory {}: No such file or directory (os error 2)",
            fake.path("gone/a").display()
        )
    );
    assert!(!fake.path("pids/a").exists());
    assert!(!fake.path("unified/a").exists());
    assert!(cgroup.created_dirs().is_empty());
}

#[test]
fn create_names_the_missing_cpuset_file() {
    let fake = hybrid();
    fs::remove_file(fake.path("cpuset/cpuset.mems")).unwrap();
    let err = fake
        .host
        .container_cgroup(None, "ctr")
        .unwrap()
        .create()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read {}: No such file or directory (os error 2)",
            fake.path("cpuset/cpuset.mems").display()
        )
    );
}

#[test]
fn add_process_writes_the_pid_in_every_hierarchy() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(Some("/x"), "ctr").unwrap();
    let err = cgroup.add_process(42).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write pid 42 to {}: No such file or directory (os error 2)",
            fake.path("cpuset/x/cgroup.procs").display()
        )
    );
    cgroup.create().unwrap();
    cgroup.add_process(42).unwrap();
    for mount in ["cpuset", "pids", "unified"] {
        assert_eq!(read(fake.path(mount).join("x/cgroup.procs")), "42");
    }
}

#[test]
fn pids_are_read_recursively_from_the_v2_hierarchy() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(None, "ctr").unwrap();
    assert_eq!(cgroup.pids().unwrap(), Vec::<i32>::new());
    cgroup.create().unwrap();
    fs::create_dir_all(fake.path("unified/capsa/ctr/sub/deeper")).unwrap();
    fs::write(fake.path("unified/capsa/ctr/cgroup.procs"), "30\n10\n").unwrap();
    fs::write(fake.path("unified/capsa/ctr/sub/cgroup.procs"), "20\n10\n").unwrap();
    fs::write(
        fake.path("unified/capsa/ctr/sub/deeper/cgroup.procs"),
        "70\n",
    )
    .unwrap();
    fs::write(fake.path("pids/capsa/ctr/cgroup.procs"), "99\n").unwrap();
    assert_eq!(cgroup.pids().unwrap(), vec![10, 20, 30, 70]);

    fs::write(fake.path("unified/capsa/ctr/sub/cgroup.procs"), "twenty\n").unwrap();
    let err = cgroup.pids().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: \"twenty\" is not a pid",
            fake.path("unified/capsa/ctr/sub/cgroup.procs").display()
        )
    );
}

#[test]
fn pids_prefer_v1_pids_then_freezer() {
    let fake = fake_host(&[
        ("cpuset", "cgroup", "rw,cpuset"),
        ("freezer", "cgroup", "rw,freezer"),
        ("pids", "cgroup", "rw,pids"),
    ]);
    let cgroup = fake.host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();
    fs::write(fake.path("cpuset/capsa/ctr/cgroup.procs"), "1\n").unwrap();
    fs::write(fake.path("freezer/capsa/ctr/cgroup.procs"), "2\n").unwrap();
    fs::write(fake.path("pids/capsa/ctr/cgroup.procs"), "3\n").unwrap();
    assert_eq!(cgroup.pids().unwrap(), vec![3]);

    let without_pids = fake_host(&[
        ("cpuset", "cgroup", "rw,cpuset"),
        ("freezer", "cgroup", "rw,freezer"),
    ]);
    let cgroup = without_pids.host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();
    fs::write(without_pids.path("freezer/capsa/ctr/cgroup.procs"), "2\n").unwrap();
    assert_eq!(cgroup.pids().unwrap(), vec![2]);
}

#[test]
fn remove_deletes_nested_cgroups_and_the_parents_it_made() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();
    cgroup.add_process(42).unwrap();
    for mount in ["cpuset", "pids", "unified"] {
        fs::create_dir_all(fake.path(mount).join("capsa/ctr/sub/deeper")).unwrap();
        fake.clear_control_files(&format!("{mount}/capsa"));
    }
    cgroup.remove().unwrap();
    for mount in ["cpuset", "pids", "unified"] {
        assert!(!fake.path(mount).join("capsa").exists(), "{mount}");
        assert!(fake.path(mount).is_dir(), "{mount}");
    }
    // Already gone: nothing to do.
    cgroup.remove().unwrap();
}

#[test]
fn remove_keeps_parents_it_did_not_make_or_that_others_share() {
    let fake = hybrid();
    fs::create_dir(fake.path("pids/capsa")).unwrap();
    let first = fake.host.container_cgroup(None, "first").unwrap();
    let second = fake.host.container_cgroup(None, "second").unwrap();
    first.create().unwrap();
    second.create().unwrap();
    assert!(!first.created_dirs().contains(&fake.path("pids/capsa")));
    assert!(!second.created_dirs().contains(&fake.path("cpuset/capsa")));

    for mount in ["cpuset", "pids", "unified"] {
        fake.clear_control_files(&format!("{mount}/capsa"));
    }
    first.remove().unwrap();
    for mount in ["cpuset", "pids", "unified"] {
        assert!(!fake.path(mount).join("capsa/first").exists(), "{mount}");
        assert!(fake.path(mount).join("capsa/second").is_dir(), "{mount}");
    }
    second.remove().unwrap();
    assert!(!fake.path("unified/capsa/second").exists());
    // Made by `first` (which left it to `second`) or there before: kept.
    assert!(fake.path("pids/capsa").is_dir());
    assert!(fake.path("unified/capsa").is_dir());
}

#[test]
fn remove_works_from_the_reloaded_state() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(Some("/a/b"), "ctr").unwrap();
    cgroup.create().unwrap();
    let json = serde_json::to_string(&cgroup).unwrap();
    let reloaded: ContainerCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(reloaded.created_dirs(), cgroup.created_dirs());
    for mount in ["cpuset", "pids", "unified"] {
        fake.clear_control_files(&format!("{mount}/a"));
    }
    reloaded.remove().unwrap();
    for mount in ["cpuset", "pids", "unified"] {
        assert!(!fake.path(mount).join("a").exists(), "{mount}");
    }
}

#[test]
fn remove_reports_what_it_could_not_remove_and_goes_on() {
    let fake = hybrid();
    let cgroup = fake.host.container_cgroup(None, "ctr").unwrap();
    cgroup.create().unwrap();
    fake.clear_control_files("cpuset/capsa");
    // A real directory with a file in it stands for anything `rmdir` refuses.
    fs::write(fake.path("pids/capsa/ctr/stray"), "").unwrap();
    let err = cgroup.remove().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot remove cgroup directory {}: Directory not empty (os error 39)",
            fake.path("pids/capsa/ctr").display()
        )
    );
    assert!(!fake.path("cpuset/capsa").exists());
    assert!(!fake.path("unified/capsa").exists());
    assert!(fake.path("pids/capsa/ctr").is_dir());
}
