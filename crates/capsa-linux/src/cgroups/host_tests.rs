use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The hybrid layout of the machine capsa was written on (trimmed).
const HYBRID_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HYBRID_SELF_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/8e3d3f4a5977e0f8ef991718e9433c33
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// A pure v2 host (Fedora-like), with shared-propagation optional fields.
const V2_MOUNTINFO: &str = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// A pure v1 host with cpu,cpuacct co-mounted (and a compatibility second
/// mount of it), net_cls,net_prio co-mounted, and a bind mount of a
/// sub-cgroup of pids listed before the whole hierarchy.
const V1_MOUNTINFO: &str = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
33 30 0:28 / /mnt/cpu\\040copy rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
34 30 0:29 /user.slice /mnt/pids-slice rw,nosuid shared:12 - cgroup cgroup rw,pids
35 30 0:29 / /sys/fs/cgroup/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
36 30 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:14 - cgroup cgroup rw,net_cls,net_prio
";

const V1_SELF_CGROUP: &str = "\
5:net_cls,net_prio:/
4:pids:/user.slice/user-1000.slice
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/session-2.scope
0::/user.slice/session-2.scope
";

fn detect(mountinfo: &str, self_cgroup: &str) -> Result<CgroupHost, CgroupError> {
    let dir = tempfile::tempdir().unwrap();
    let (m, c) = (dir.path().join("mountinfo"), dir.path().join("cgroup"));
    fs::write(&m, mountinfo).unwrap();
    fs::write(&c, self_cgroup).unwrap();
    CgroupHost::detect(&m, &c)
}

/// (mount point, controllers, is_v2, own cgroup) of every hierarchy.
fn summary(host: &CgroupHost) -> Vec<(PathBuf, Vec<&str>, bool, Option<&str>)> {
    host.hierarchies()
        .iter()
        .map(|h| {
            let controllers = h.controllers().iter().map(String::as_str).collect();
            (
                h.mount_point().to_path_buf(),
                controllers,
                h.is_v2(),
                h.own_cgroup(),
            )
        })
        .collect()
}

#[test]
fn detects_hybrid_layout() {
    let host = detect(HYBRID_MOUNTINFO, HYBRID_SELF_CGROUP).unwrap();
    assert_eq!(host.mode(), CgroupMode::Hybrid);
    let hierarchies = summary(&host);
    assert_eq!(hierarchies.len(), 10);
    assert_eq!(
        hierarchies[3],
        (
            PathBuf::from("/sys/fs/cgroup/memory"),
            vec!["memory"],
            false,
            Some("/process_api/8e3d3f4a5977e0f8ef991718e9433c33")
        )
    );
    assert_eq!(
        hierarchies[8],
        (
            PathBuf::from("/sys/fs/cgroup/systemd"),
            vec!["name=systemd"],
            false,
            Some("/")
        )
    );
    assert_eq!(
        hierarchies[9],
        (
            PathBuf::from("/sys/fs/cgroup/unified"),
            vec![],
            true,
            Some("/")
        )
    );
}

#[test]
fn detects_pure_v2_layout() {
    let host = detect(
        V2_MOUNTINFO,
        "0::/user.slice/user-1000.slice/session-2.scope\n",
    )
    .unwrap();
    assert_eq!(host.mode(), CgroupMode::V2);
    assert_eq!(
        summary(&host),
        vec![(
            PathBuf::from("/sys/fs/cgroup"),
            vec![],
            true,
            Some("/user.slice/user-1000.slice/session-2.scope")
        )]
    );
}

#[test]
fn detects_pure_v1_layout_with_co_mounted_and_duplicate_hierarchies() {
    let host = detect(V1_MOUNTINFO, V1_SELF_CGROUP).unwrap();
    assert_eq!(host.mode(), CgroupMode::V1);
    assert_eq!(
        summary(&host),
        vec![
            (
                PathBuf::from("/sys/fs/cgroup/systemd"),
                vec!["name=systemd"],
                false,
                Some("/user.slice/session-2.scope")
            ),
            (
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                vec!["cpu", "cpuacct"],
                false,
                Some("/user.slice")
            ),
            // The whole-hierarchy mount wins over the earlier bind of a part.
            (
                PathBuf::from("/sys/fs/cgroup/pids"),
                vec!["pids"],
                false,
                Some("/user.slice/user-1000.slice")
            ),
            (
                PathBuf::from("/sys/fs/cgroup/net_cls,net_prio"),
                vec!["net_cls", "net_prio"],
                false,
                Some("/")
            ),
        ]
    );
}

#[test]
fn nested_runtime_sees_own_cgroup_relative_to_mount_root() {
    // Inside a v1 container without a cgroup namespace, only part of the
    // hierarchy is mounted, and /proc/self/cgroup shows host paths.
    let mountinfo = "\
900 800 0:29 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids
901 800 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
";
    let host = detect(mountinfo, "4:pids:/docker/abc/sub\n3:memory:/elsewhere\n").unwrap();
    let own: Vec<_> = host.hierarchies().iter().map(|h| h.own_cgroup()).collect();
    assert_eq!(own, vec![Some("/sub"), None]);
    let err = host.container_cgroup(Some("x"), "ctr").unwrap_err();
    assert!(matches!(err, CgroupError::NoOwnCgroup { .. }), "{err}");
    assert!(err.to_string().contains("/sys/fs/cgroup/memory"), "{err}");
    // Absolute paths do not need our own cgroup.
    let cgroup = host.container_cgroup(Some("/x"), "ctr").unwrap();
    assert_eq!(
        cgroup.hierarchies()[1].dir(),
        Path::new("/sys/fs/cgroup/memory/x")
    );
}

#[test]
fn unescapes_mount_points() {
    assert_eq!(unescape(r"/mnt/a\040b\134c"), b"/mnt/a b\\c".to_vec());
    assert_eq!(unescape(r"/odd\9"), br"/odd\9".to_vec());
}

#[test]
fn v1_controllers_fall_back_to_super_options() {
    let mountinfo = "1 0 0:5 / /cg rw - cgroup cgroup rw,noprefix,cpu,release_agent=/x\n";
    let host = detect(mountinfo, "0::/\n").unwrap();
    assert_eq!(
        summary(&host),
        vec![(PathBuf::from("/cg"), vec!["cpu"], false, None)]
    );
}

#[test]
fn reports_malformed_lines_and_missing_mounts() {
    let err = detect("27 1 254:0 / / rw - ext4\nbroken line\n", "0::/\n").unwrap_err();
    assert!(
        err.to_string()
            .ends_with(r#"line 2: malformed mountinfo entry (no " - " separator): "broken line""#),
        "{err}"
    );
    let err = detect(V2_MOUNTINFO, "0::/\nnonsense\n").unwrap_err();
    assert!(err.to_string().contains("line 2: expected"), "{err}");
    let err = detect("27 1 254:0 / / rw - ext4 /dev/vda rw\n", "0::/\n").unwrap_err();
    assert!(matches!(err, CgroupError::NoCgroupMounts(_)), "{err}");
    let err = CgroupHost::detect(Path::new("/nonexistent/mountinfo"), Path::new("/x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot read /nonexistent/mountinfo: No such file or directory (os error 2)"
    );
}

#[test]
fn resolves_default_absolute_and_relative_paths() {
    let host = detect(HYBRID_MOUNTINFO, HYBRID_SELF_CGROUP).unwrap();
    let dirs = |cgroup: &ContainerCgroup| -> Vec<PathBuf> {
        cgroup
            .hierarchies()
            .iter()
            .map(|h| h.dir().to_path_buf())
            .collect()
    };

    let default = host.container_cgroup(None, "ctr").unwrap();
    assert_eq!(default.relative_path(), "/capsa/ctr");
    assert_eq!(
        dirs(&default)[3],
        Path::new("/sys/fs/cgroup/memory/capsa/ctr")
    );
    assert_eq!(
        dirs(&default)[9],
        Path::new("/sys/fs/cgroup/unified/capsa/ctr")
    );

    let absolute = host.container_cgroup(Some("/a/b"), "ctr").unwrap();
    assert_eq!(dirs(&absolute)[3], Path::new("/sys/fs/cgroup/memory/a/b"));

    let relative = host.container_cgroup(Some("a/b"), "ctr").unwrap();
    assert_eq!(relative.relative_path(), "a/b");
    let memory = &relative.hierarchies()[3];
    assert_eq!(
        memory.relative_path(),
        "/process_api/8e3d3f4a5977e0f8ef991718e9433c33/a/b"
    );
    assert_eq!(
        memory.dir(),
        Path::new("/sys/fs/cgroup/memory/process_api/8e3d3f4a5977e0f8ef991718e9433c33/a/b")
    );
    assert_eq!(
        relative.hierarchies()[0].dir(),
        Path::new("/sys/fs/cgroup/cpu/a/b")
    );
    assert_eq!(memory.controllers(), ["memory".to_string()]);
    assert!(!memory.is_v2());

    let err = host
        .container_cgroup(Some("/a/../../etc"), "ctr")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.cgroupsPath \"/a/../../etc\""),
        "{err}"
    );
}

#[test]
fn container_cgroup_round_trips_through_json() {
    let host = detect(HYBRID_MOUNTINFO, HYBRID_SELF_CGROUP).unwrap();
    let cgroup = host.container_cgroup(Some("a/b"), "ctr").unwrap();
    let json = serde_json::to_string(&cgroup).unwrap();
    let back: ContainerCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.relative_path(), cgroup.relative_path());
    assert_eq!(back.hierarchies(), cgroup.hierarchies());
    assert_eq!(back.created_dirs(), cgroup.created_dirs());
}
