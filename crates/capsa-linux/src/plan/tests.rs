//! Unit tests of the plan.

use super::*;
use nix::sys::resource::Resource;
use std::path::Path;

fn spec(namespaces: serde_json::Value, extra: serde_json::Value) -> ValidSpec {
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "mode=755"]}],
        "linux": {"namespaces": namespaces, "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                  "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]}
    });
    if !v["linux"]["namespaces"].to_string().contains("\"user\"") {
        let linux = v["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    }
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in more {
            obj.insert(k.clone(), val.clone());
        }
    }
    capsa_spec::parse(v.to_string().as_bytes(), Path::new("/b")).unwrap()
}

fn cgroup() -> ContainerCgroup {
    serde_json::from_value(serde_json::json!({"relative_path": "/capsa/x", "hierarchies": []}))
        .unwrap_or_else(|_| {
            panic!("ContainerCgroup's serialized form changed: update this test fixture")
        })
}

fn build_ns(namespaces: serde_json::Value) -> NamespacePlan {
    let opts = CreateOptions {
        id: "x".into(),
        bundle: "/b".into(),
        ..Default::default()
    };
    build(
        &spec(namespaces, serde_json::json!({})),
        &opts,
        cgroup(),
        &HostFacts::default(),
    )
    .unwrap()
    .namespaces
}

#[test]
fn new_namespaces_are_made_by_the_clone_and_at_once_by_the_init() {
    let ns = build_ns(
        serde_json::json!([{"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "cgroup"}]),
    );
    assert_eq!(ns.clone_flags, CloneFlags::CLONE_NEWPID);
    assert_eq!(
        ns.early_unshare,
        CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS
    );
    assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWCGROUP);
    assert!(!ns.fork_after && !ns.unshare_user && ns.own_pid_ns && ns.new_cgroup_ns);
}

#[test]
fn with_a_new_user_namespace_the_clone_makes_them_all() {
    let ns = build_ns(serde_json::json!([{"type": "user"}, {"type": "pid"}, {"type": "network"}]));
    assert_eq!(
        ns.clone_flags,
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET
    );
    assert!(ns.early_unshare.is_empty());
}

#[test]
fn joining_a_pid_namespace_needs_a_fork() {
    let ns =
        build_ns(serde_json::json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"}]));
    assert!(ns.clone_flags.is_empty());
    assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWNS);
    assert!(ns.fork_after);
    assert_eq!(
        ns.join,
        vec![(NamespaceKind::Pid, PathBuf::from("/proc/1/ns/pid"))]
    );
}

#[test]
fn a_new_user_namespace_with_joins_is_unshared_after_them() {
    let ns = build_ns(
        serde_json::json!([{"type": "user"}, {"type": "network", "path": "/run/netns/x"}, {"type": "pid"}]),
    );
    assert!(ns.clone_flags.is_empty());
    assert!(ns.unshare_user && ns.fork_after && ns.in_user_ns);
    assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWPID);
}

#[test]
fn a_time_namespace_needs_unshare_and_fork() {
    let ns = build_ns(serde_json::json!([{"type": "time"}, {"type": "pid"}]));
    assert!(ns.fork_after);
    assert!(ns
        .unshare_flags
        .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)));
}

#[test]
fn process_and_mounts_are_translated() {
    let opts = CreateOptions {
        id: "x".into(),
        bundle: "/b".into(),
        ..Default::default()
    };
    let plan = build(
        &spec(
            serde_json::json!([{"type": "mount"}]),
            serde_json::json!({}),
        ),
        &opts,
        cgroup(),
        &HostFacts::default(),
    )
    .unwrap();
    let p = plan.process.unwrap();
    assert!(p.caps.bounding.contains(&caps::Capability::CAP_KILL));
    assert_eq!(p.rlimits[0].0, Resource::RLIMIT_NOFILE);
    assert_eq!((p.rlimits[0].2, p.rlimits[0].3), (10, 20));
    assert_eq!(plan.mounts[0].options.flags, MsFlags::MS_NOSUID);
    assert_eq!(plan.mounts[0].options.data, "mode=755");
    assert_eq!(plan.session_keyring.as_deref(), Some("_ses.x"));
}

#[test]
fn console_sockets_without_a_terminal_are_refused_by_path() {
    let opts = CreateOptions {
        id: "x".into(),
        bundle: "/b".into(),
        console: Some(Console::Socket("/s".into())),
        ..Default::default()
    };
    let s = spec(
        serde_json::json!([{"type": "mount"}]),
        serde_json::json!({}),
    );
    let e = build(&s, &opts, cgroup(), &HostFacts::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot use console socket"), "{e}");
}

fn idmaps(namespaces: serde_json::Value, mounts: serde_json::Value) -> Vec<Option<IdmapPlan>> {
    let opts = CreateOptions {
        id: "x".into(),
        bundle: "/b".into(),
        ..Default::default()
    };
    let s = spec(namespaces, serde_json::json!({ "mounts": mounts }));
    build(&s, &opts, cgroup(), &HostFacts::default())
        .unwrap()
        .mounts
        .into_iter()
        .map(|m| {
            assert!(m.idmap.is_none() || m.options.bind, "{m:?}");
            m.idmap
        })
        .collect()
}

#[test]
fn idmapped_mounts_take_their_own_mappings_or_the_containers() {
    let own = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let mine = vec![IdMapping {
        container_id: 0,
        host_id: 1000,
        size: 1,
    }];
    let container = vec![IdMapping {
        container_id: 0,
        host_id: 1000,
        size: 10,
    }];
    let plans = idmaps(
        serde_json::json!([{"type": "mount"}, {"type": "user"}]),
        serde_json::json!([
            {"destination": "/a", "source": "/a", "options": ["bind"]},
            {"destination": "/b", "source": "/b", "options": ["rbind", "idmap"],
             "uidMappings": own, "gidMappings": own},
            {"destination": "/c", "source": "/c", "type": "bind",
             "uidMappings": own, "gidMappings": own},
            {"destination": "/d", "source": "/d", "options": ["rbind", "ridmap"]},
        ]),
    );
    assert_eq!(plans[0], None);
    let own_plan = IdmapUserns::Mappings {
        uid: mine.clone(),
        gid: mine,
    };
    assert_eq!(
        plans[1],
        Some(IdmapPlan {
            recursive: false,
            userns: own_plan.clone(),
        })
    );
    // Mappings without an option: idmapped, not recursive (runc).
    assert_eq!(
        plans[2],
        Some(IdmapPlan {
            recursive: false,
            userns: own_plan,
        })
    );
    assert_eq!(
        plans[3],
        Some(IdmapPlan {
            recursive: true,
            userns: IdmapUserns::Mappings {
                uid: container.clone(),
                gid: container,
            },
        })
    );
    // A joined user namespace is used itself.
    let plans = idmaps(
        serde_json::json!([{"type": "mount"}, {"type": "user", "path": "/proc/7/ns/user"}]),
        serde_json::json!([{"destination": "/d", "source": "/d", "options": ["bind", "idmap"]}]),
    );
    assert_eq!(
        plans[0].as_ref().map(|p| &p.userns),
        Some(&IdmapUserns::Path("/proc/7/ns/user".into()))
    );
}
