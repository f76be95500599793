use std::path::Path;

use serde_json::json;

use crate::{parse, NamespaceKind, SpecError};

fn minimal() -> serde_json::Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/", "env": ["PATH=/bin"]},
        "hostname": "box",
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "linux": {"namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "pid"}]}
    })
}

fn check(v: serde_json::Value) -> Result<crate::ValidSpec, SpecError> {
    parse(v.to_string().as_bytes(), Path::new("/b"))
}

fn err(v: serde_json::Value) -> String {
    check(v).expect_err("config should be refused").to_string()
}

#[test]
fn minimal_config_is_valid_and_resolved_against_the_bundle() {
    let s = check(minimal()).unwrap();
    assert_eq!(s.root.path, Path::new("/b/rootfs"));
    assert!(s.root.readonly);
    assert_eq!(s.hostname.as_deref(), Some("box"));
    // Sorted into creation order: user, pid, ..., mount.
    let kinds: Vec<_> = s.linux.namespaces.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NamespaceKind::Pid, NamespaceKind::Uts, NamespaceKind::Mount]
    );
}

#[test]
fn syntax_error_names_line_and_column() {
    let e = parse(
        b"{\n  \"ociVersion\": \"1.0.2\"\n  \"root\": {}\n}",
        Path::new("/b"),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("config.json: line 3 column 3:"), "{msg}");
    assert!(msg.contains("expected `,`"), "{msg}");
}

#[test]
fn wrong_type_names_the_json_path() {
    let mut v = minimal();
    v["process"]["args"] = json!("sh");
    let msg = err(v);
    assert!(
        msg.starts_with("config.json: process.args: invalid type"),
        "{msg}"
    );
}

#[test]
fn unknown_namespace_is_named() {
    let mut v = minimal();
    v["linux"]["namespaces"][2] = json!({"type": "foo"});
    assert_eq!(
        err(v),
        r#"config.json: linux.namespaces[2].type: unknown namespace "foo""#
    );
}

#[test]
fn unknown_capability_and_rlimit_are_named() {
    let mut v = minimal();
    v["process"]["capabilities"] = json!({"bounding": ["CAP_CHOWN", "CAP_TEST"]});
    assert_eq!(
        err(v),
        r#"config.json: process.capabilities.bounding[1]: unknown capability "CAP_TEST""#
    );
    let mut v = minimal();
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]);
    assert_eq!(
        err(v),
        r#"config.json: process.rlimits[0].type: unknown rlimit "RLIMIT_TEST""#
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = minimal();
    v["somethingNew"] = json!({"x": 1});
    v["process"]["futureField"] = json!(true);
    assert!(check(v).is_ok());
}

#[test]
fn empty_args_and_relative_cwd_are_refused() {
    let mut v = minimal();
    v["process"]["args"] = json!([]);
    assert!(err(v).starts_with("config.json: process.args:"));
    let mut v = minimal();
    v["process"]["cwd"] = json!("tmp");
    assert!(err(v).starts_with("config.json: process.cwd:"));
}

#[test]
fn missing_root_and_version_are_refused() {
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("root");
    assert_eq!(err(v), "config.json: root: required on Linux");
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("ociVersion");
    assert_eq!(err(v), "config.json: ociVersion: required");
}

#[test]
fn hostname_needs_uts_namespace() {
    let mut v = minimal();
    v["linux"]["namespaces"] = json!([{"type": "mount"}]);
    assert!(err(v).starts_with("config.json: hostname:"));
}

#[test]
fn duplicate_namespace_is_refused() {
    let mut v = minimal();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}, {"type": "pid"}]);
    assert!(err(v).contains("linux.namespaces[2].type: the pid namespace is listed twice"));
}

#[test]
fn user_namespace_needs_mappings() {
    let mut v = minimal();
    v["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "uts"}]);
    assert!(err(v.clone()).starts_with("config.json: linux.uidMappings:"));
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let s = check(v).unwrap();
    assert_eq!(s.linux.uid_mappings[0].host_id, 1000);
}

#[test]
fn unsupported_features_are_named() {
    let mut v = minimal();
    // NOTIFY and the filter flags are the seccomp compiler's business now.
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/agent.sock"});
    assert!(check(v).is_ok());
    let mut v = minimal();
    v["linux"]["intelRdt"] = json!({"closID": "x"});
    assert!(err(v).starts_with("config.json: linux.intelRdt:"));
    let mut v = minimal();
    v["process"]["apparmorProfile"] = json!("docker-default");
    let p = check(v).unwrap().process.unwrap();
    assert_eq!(p.apparmor_profile.as_deref(), Some("docker-default"));
}

#[test]
fn terminal_and_console_size_are_kept() {
    let mut v = minimal();
    v["process"]["terminal"] = json!(true);
    v["process"]["consoleSize"] = json!({"height": 40, "width": 100});
    let p = check(v).unwrap().process.unwrap();
    assert!(p.terminal);
    assert_eq!(p.console_size, Some((40, 100)));
}

#[test]
fn device_rules_and_devices_are_typed() {
    let mut v = minimal();
    v["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]});
    v["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    let s = check(v).unwrap();
    assert_eq!(s.linux.device_rules.len(), 2);
    assert_eq!(s.linux.device_rules[0].kind, 'a');
    assert_eq!(s.linux.devices[0].major, 10);
    let mut v = minimal();
    v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a"}]);
    assert!(err(v).starts_with("config.json: linux.devices[0].type:"));
}

#[test]
fn mounts_need_absolute_destinations_and_bind_sources() {
    let mut v = minimal();
    v["mounts"] = json!([{"destination": "proc", "type": "proc"}]);
    assert!(err(v).starts_with("config.json: mounts[0].destination:"));
    let mut v = minimal();
    v["mounts"] = json!([{"destination": "/data", "options": ["rbind"], "source": "data"}]);
    let s = check(v).unwrap();
    assert_eq!(s.mounts[0].kind, "bind");
    assert_eq!(s.mounts[0].source.as_deref(), Some(Path::new("/b/data")));
}

#[test]
fn idmapped_mounts_keep_their_mappings() {
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let mut v = minimal();
    v["mounts"] = json!([{"destination": "/data", "source": "/d", "options": ["bind", "idmap"],
                          "uidMappings": map, "gidMappings": map}]);
    let s = check(v).unwrap();
    let want = [crate::IdMapping {
        container_id: 0,
        host_id: 1000,
        size: 1,
    }];
    assert_eq!(s.mounts[0].uid_mappings, want);
    assert_eq!(s.mounts[0].gid_mappings, want);
    assert!(s.mounts[0].is_idmapped());
    // Mappings without the option still map (runc 1.2); the option without
    // mappings takes the container's user namespace ones.
    let mut v = minimal();
    v["mounts"] = json!([{"destination": "/data", "source": "/d", "type": "bind",
                          "uidMappings": map, "gidMappings": map}]);
    assert!(check(v).unwrap().mounts[0].is_idmapped());
    let mut v = minimal();
    v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "user"}]);
    v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["hostname"] = json!(null);
    v["mounts"] = json!([{"destination": "/data", "source": "/d", "options": ["rbind", "ridmap"],
                          "uidMappings": [], "gidMappings": []}]);
    let s = check(v).unwrap();
    assert!(s.mounts[0].is_idmapped() && s.mounts[0].uid_mappings.is_empty());
}

#[test]
fn idmapped_mounts_are_checked() {
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let with = |mount: serde_json::Value| {
        let mut v = minimal();
        v["mounts"] = json!([{"destination": "/proc", "type": "proc", "source": "proc"}, mount]);
        err(v)
    };
    assert_eq!(
        with(json!({"destination": "/data", "source": "/d", "options": ["bind"], "uidMappings": map})),
        "config.json: mounts[1].gidMappings: required with uidMappings (an idmapped mount maps both)"
    );
    assert_eq!(
        with(json!({"destination": "/data", "source": "/d", "options": ["bind"], "gidMappings": map})),
        "config.json: mounts[1].uidMappings: required with gidMappings (an idmapped mount maps both)"
    );
    assert_eq!(
        with(
            json!({"destination": "/data", "source": "/d", "options": ["bind"],
                    "uidMappings": map,
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}]})
        ),
        "config.json: mounts[1].gidMappings[0].size: must be greater than 0"
    );
    assert!(with(json!({"destination": "/data", "source": "/d", "options": ["bind"],
                        "gidMappings": map,
                        "uidMappings": [map[0], {"containerID": 4294967295u32, "hostID": 1, "size": 2}]}))
    .starts_with("config.json: mounts[1].uidMappings[1]: the range of 2 ids"));
    assert_eq!(
        with(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["ridmap"],
                    "uidMappings": map, "gidMappings": map})),
        "config.json: mounts[1].options: \"ridmap\" applies to bind mounts only, not to type \"tmpfs\""
    );
    assert_eq!(
        with(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                    "uidMappings": map, "gidMappings": map})),
        "config.json: mounts[1].uidMappings: id mappings apply to bind mounts only, not to type \"tmpfs\""
    );
    // No mappings of its own and no user namespace to take them from.
    assert!(
        with(json!({"destination": "/data", "source": "/d", "options": ["bind", "idmap"]}))
            .starts_with("config.json: mounts[1].options: an idmapped mount without uidMappings"),
    );
}

#[test]
fn sysctls_must_be_namespaced() {
    let mut v = minimal();
    v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert!(err(v).contains("needs a network namespace"));
    let mut v = minimal();
    v["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
    assert!(err(v).contains("not a namespaced sysctl"));
    let mut v = minimal();
    v["linux"]["namespaces"] = json!([{"type": "ipc"}, {"type": "uts"}]);
    v["linux"]["sysctl"] = json!({"kernel.shmmax": "100"});
    assert!(check(v).is_ok());
}

#[test]
fn hooks_are_checked() {
    let mut v = minimal();
    v["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]});
    assert!(err(v).starts_with("config.json: hooks.prestart[0].timeout:"));
    let mut v = minimal();
    v["hooks"] = json!({"poststop": [{"path": "true"}]});
    assert!(err(v).starts_with("config.json: hooks.poststop[0].path:"));
}

#[test]
fn trailing_garbage_is_a_syntax_error() {
    let text = format!("{} x", minimal());
    let e = parse(text.as_bytes(), Path::new("/b")).unwrap_err();
    assert!(matches!(e, SpecError::Syntax { .. }), "{e}");
}

#[test]
fn resources_are_kept_raw_and_checked() {
    let mut v = minimal();
    v["linux"]["resources"] = json!({"memory": {"limit": 1000000}, "pids": {"limit": 10}});
    let s = check(v).unwrap();
    let r = s.linux.resources.unwrap();
    assert_eq!(r.memory().unwrap().limit(), Some(1000000));
    assert_eq!(r.pids().unwrap().limit(), 10);
    let mut v = minimal();
    v["linux"]["resources"] = json!({"memory": {"limit": -5}});
    assert!(err(v).starts_with("config.json: linux.resources.memory.limit:"));
}

#[test]
fn update_resources_name_their_fields() {
    let r = crate::parse_resources(br#"{"pids": {"limit": 5}, "cpu": {"shares": 512}}"#).unwrap();
    assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
    let e = crate::parse_resources(br#"{"cpu": {"shares": "x"}}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("--resources: linux.resources.cpu.shares:"),
        "{e}"
    );
    let e = crate::parse_resources(br#"{"cpu": {"cpus": "0-"}}"#).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("--resources: linux.resources.cpu.cpus:"),
        "{e}"
    );
    let e = crate::parse_resources(br#""x""#).unwrap_err();
    assert!(
        e.to_string().starts_with("--resources: linux.resources:"),
        "{e}"
    );
    assert!(crate::parse_resources(b"{} x").is_err());
}

#[test]
fn scheduler_is_typed_and_checked_like_runc() {
    let mut v = minimal();
    v["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 5, "flags": ["SCHED_RESET_ON_FORK", "SCHED_RESET_ON_FORK"]});
    let s = check(v).unwrap().process.unwrap().scheduler.unwrap();
    assert_eq!(s.policy, crate::SchedPolicy::Other);
    assert_eq!(s.nice, 5);
    assert_eq!(s.flags, [crate::SchedFlag::ResetOnFork]);

    let bad = |sched: serde_json::Value| {
        let mut v = minimal();
        v["process"]["scheduler"] = sched;
        err(v)
    };
    let msg = bad(json!({"policy": "SCHED_NOPE"}));
    assert!(
        msg.starts_with("config.json: process.scheduler.policy: unknown variant"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1, "{msg}");
    let msg = bad(json!({"policy": "SCHED_OTHER", "nice": 20}));
    assert!(
        msg.starts_with("config.json: process.scheduler.nice:"),
        "{msg}"
    );
    let msg = bad(json!({"policy": "SCHED_BATCH", "priority": 3}));
    assert!(
        msg.starts_with("config.json: process.scheduler.priority:"),
        "{msg}"
    );
    let msg = bad(json!({"policy": "SCHED_FIFO"}));
    assert!(msg.contains("needs a priority from 1 to 99"), "{msg}");
    let msg = bad(json!({"policy": "SCHED_RR", "period": 1000}));
    assert!(
        msg.starts_with("config.json: process.scheduler.period:"),
        "{msg}"
    );
    let msg = bad(json!({"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}));
    assert!(
        msg.starts_with("config.json: process.scheduler.flags[0]:"),
        "{msg}"
    );
    let mut v = minimal();
    v["process"]["scheduler"] = json!({"policy": "SCHED_DEADLINE", "runtime": 10_000_000, "deadline": 20_000_000, "period": 30_000_000});
    let s = check(v).unwrap().process.unwrap().scheduler.unwrap();
    assert_eq!(
        (s.runtime, s.deadline, s.period),
        (10_000_000, 20_000_000, 30_000_000)
    );
}

#[test]
fn io_priority_class_and_level_are_checked() {
    let mut v = minimal();
    v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 7});
    let io = check(v).unwrap().process.unwrap().io_priority.unwrap();
    assert_eq!((io.class, io.level), (crate::IoPriorityClass::Idle, 7));
    let mut v = minimal();
    v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 8});
    let msg = err(v);
    assert!(
        msg.starts_with("config.json: process.ioPriority.priority:"),
        "{msg}"
    );
    let mut v = minimal();
    v["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_NOPE", "priority": 1});
    let msg = err(v);
    assert!(
        msg.starts_with("config.json: process.ioPriority.class:"),
        "{msg}"
    );
}

#[test]
fn personality_domain_and_flags_are_checked() {
    let mut v = minimal();
    v["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    let p = check(v).unwrap().linux.personality.unwrap();
    assert_eq!(p.domain, crate::PersonalityDomain::Linux32);
    assert_eq!(p.flags, ["ADDR_NO_RANDOMIZE"]);
    let mut v = minimal();
    v["linux"]["personality"] = json!({"domain": "LINUX64"});
    let msg = err(v);
    assert!(
        msg.starts_with("config.json: linux.personality.domain:"),
        "{msg}"
    );
    let mut v = minimal();
    v["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NOPE"]});
    let msg = err(v);
    assert!(
        msg.starts_with("config.json: linux.personality.flags[0]:"),
        "{msg}"
    );
}
