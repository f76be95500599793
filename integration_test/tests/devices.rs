//! `linux.devices` and the default `/dev`: device nodes made with the configured
//! type, numbers, mode and owner; the default devices and symlinks; host nodes bound
//! in a user namespace; a bad device type refused.
//!
//! Each test looks from inside the container (`stat`, `readlink`, writes) and ends
//! with `assert_nothing_left`.

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;

use capsa_integration_test::fs_fixtures::{create_fails, has_mount_at, run_ok, value_of};
use capsa_integration_test::{capsa_only, Bundle, Ctx};
use serde_json::{json, Value};

fn set_devices(b: &mut Bundle, devices: Value) {
    b.edit(|c| c["linux"]["devices"] = devices);
}

/// `stat -c '%F %t:%T %a %u:%g'` of each path, printed as `<path>=<stat>`.
fn stat_lines(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| format!("echo \"{p}=$(stat -c '%F %t:%T %a %u:%g' {p} 2>&1)\""))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The configured devices of the node tests.
fn node_devices() -> Value {
    json!([
            { "path": "/dev/mynull", "type": "c", "major": 1, "minor": 9,
              "fileMode": 0o600, "uid": 1000, "gid": 1000 },
            { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
              "fileMode": 0o666, "uid": 0, "gid": 0 },
            { "path": "/dev/myblk", "type": "b", "major": 7, "minor": 0,
              "fileMode": 0o640, "uid": 0, "gid": 6 },
            { "path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 0 },
            { "path": "/dev/sub/dev", "type": "c", "major": 1, "minor": 3,
              "fileMode": 0o644, "uid": 0, "gid": 0 }
    ])
}

/// Runs a container with [`node_devices`] and checks each node from inside.
fn check_configured_nodes(ctx: &Ctx, id: &str, mut b: Bundle) {
    set_devices(&mut b, node_devices());
    b.sh(&stat_lines(&[
        "/dev/mynull",
        "/dev/fuse",
        "/dev/myblk",
        "/dev/myfifo",
        "/dev/sub/dev",
    ]));
    let out = run_ok(ctx, &b, id);

    for (path, want) in [
        ("/dev/mynull", "character special file 1:9 600 1000:1000"),
        ("/dev/fuse", "character special file a:e5 666 0:0"),
        ("/dev/myblk", "block special file 7:0 640 0:6"),
        ("/dev/myfifo", "fifo 0:0 620 0:0"),
        ("/dev/sub/dev", "character special file 1:3 644 0:0"),
    ] {
        assert_eq!(value_of(&out, path), want, "stat {path} inside:\n{out}");
    }
}

/// The bundle's default `linux.resources.devices` denies everything (as `runc spec`
/// writes it): the configured nodes must still be made (runc allows mknod of any
/// node in the device cgroup), though not necessarily opened.
#[test]
fn configured_char_block_fifo_and_nested_devices() {
    let ctx = Ctx::new();
    let (id, b) = ctx.id_and_bundle("dev-nodes");
    check_configured_nodes(&ctx, &id, b);
}

/// The same nodes with device cgroup rules that allow each of them.
#[test]
fn configured_devices_allowed_by_the_device_cgroup() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dev-allowed");
    b.edit(|c| {
        let rules = c["linux"]["resources"]["devices"]
            .as_array_mut()
            .expect("device rules");
        for (t, major, minor) in [("c", 1, 9), ("c", 10, 229), ("b", 7, 0), ("c", 1, 3)] {
            rules.push(
                json!({ "allow": true, "type": t, "major": major, "minor": minor,
                               "access": "rwm" }),
            );
        }
    });
    check_configured_nodes(&ctx, &id, b);
}

#[test]
fn default_devices_and_dev_symlinks() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dev-default");
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let mut script: Vec<String> = nodes
        .iter()
        .map(|n| format!("echo \"{n}=$(stat -c '%F %t:%T %a' /dev/{n})\""))
        .collect();
    for l in ["fd", "stdin", "stdout", "stderr", "ptmx"] {
        script.push(format!("echo \"link-{l}=$(readlink /dev/{l})\""));
    }
    script.push("echo null-write=$(echo hi > /dev/null && echo ok)".to_string());
    script.push("echo zero-read=$(head -c 4 /dev/zero | wc -c)".to_string());
    b.sh(&script.join("; "));
    let out = run_ok(&ctx, &b, &id);

    for (n, nums) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        assert_eq!(
            value_of(&out, n),
            format!("character special file {nums} 666"),
            "/dev/{n}:\n{out}"
        );
    }
    for (l, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert_eq!(
            value_of(&out, &format!("link-{l}")),
            target,
            "/dev/{l}:\n{out}"
        );
    }
    assert_eq!(value_of(&out, "null-write"), "ok");
    assert_eq!(value_of(&out, "zero-read"), "4");
}

/// `lchown -R` without following symlinks.
fn chown_tree(path: &Path, id: u32) {
    lchown(path, Some(id), Some(id)).unwrap_or_else(|e| panic!("lchown {}: {e}", path.display()));
    if fs::symlink_metadata(path).expect("stat").is_dir() {
        for e in fs::read_dir(path).expect("read dir") {
            chown_tree(&e.expect("dir entry").path(), id);
        }
    }
}

#[test]
fn devices_in_a_user_namespace_are_bound_host_nodes() {
    const HOST: u32 = 100_000;
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dev-userns");
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "user" }));
        let map = json!([{ "containerID": 0, "hostID": HOST, "size": 65536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        c["linux"]["devices"] = json!([
            { "path": "/dev/null", "type": "c", "major": 1, "minor": 3,
              "fileMode": 0o666, "uid": 0, "gid": 0 },
            { "path": "/dev/full", "type": "c", "major": 1, "minor": 7,
              "fileMode": 0o666, "uid": 0, "gid": 0 }
        ]);
        // runc drops its default cgroup rule for a node the config lists itself.
        let rules = c["linux"]["resources"]["devices"]
            .as_array_mut()
            .expect("device rules");
        for minor in [3, 7] {
            rules.push(
                json!({ "allow": true, "type": "c", "major": 1, "minor": minor,
                               "access": "rwm" }),
            );
        }
    });
    chown_tree(&b.rootfs(), HOST);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");
    b.sh(&format!(
        "{}; echo null-write=$(echo hi > /dev/null && echo ok); \
         echo full-write=$(echo hi 2>/dev/null > /dev/full && echo ok || echo enospc); \
         echo zero-read=$(head -c 3 /dev/zero | wc -c); cat /proc/self/mountinfo",
        stat_lines(&["/dev/null", "/dev/full"])
    ));
    let out = run_ok(&ctx, &b, &id);

    // Host nodes (owned by the host's root, outside the mapping: the overflow id).
    for (path, nums) in [("/dev/null", "1:3"), ("/dev/full", "1:7")] {
        let stat = value_of(&out, path);
        assert!(
            stat.starts_with(&format!("character special file {nums} 666")),
            "stat {path} inside a user namespace: {stat:?}\n{out}"
        );
        assert!(
            has_mount_at(&out, path),
            "{path} should be a bind mount of the host node:\n{out}"
        );
    }
    assert_eq!(value_of(&out, "null-write"), "ok", "{out}");
    assert_eq!(value_of(&out, "full-write"), "enospc", "{out}");
    assert_eq!(value_of(&out, "zero-read"), "3", "{out}");
}

#[test]
fn bad_device_type_is_refused() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dev-badtype");
    b.args(&["sleep", "1000"]);
    set_devices(
        &mut b,
        json!([
            { "path": "/dev/ok", "type": "c", "major": 1, "minor": 3 },
            { "path": "/dev/bad", "type": "x", "major": 1, "minor": 3 }
        ]),
    );
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("the error names the linux.devices[i] entry") {
        assert!(line.contains("linux.devices[1]"), "{line}");
    }
    assert!(!b.rootfs().join("dev/ok").exists());
}
