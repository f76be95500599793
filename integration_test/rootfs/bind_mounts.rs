//! Bind mounts of a tree with a submount: bind vs rbind, recursive options,
//! nosymfollow, propagation.

use std::fs;
use std::path::PathBuf;

use capsa_integration_test::fs_fixtures::{
    add_bind, add_tmpfs, assert_mount_options, has_mount_at, host_mount_at, mount_at, run_ok,
    HostDir, HostMount,
};
use capsa_integration_test::Ctx;
use nix::mount::MsFlags;

use crate::{assert_result, script, try_cmd};

/// A host dir with a tmpfs mounted at `<dir>/sub` holding `sub/marker`.
fn dir_with_submount(host: &HostDir) -> (PathBuf, HostMount) {
    let dir = host.subdir("tree");
    fs::write(dir.join("top-file"), "top").expect("write top file");
    let sub = host.subdir("tree/sub");
    let guard = HostMount::tmpfs(&sub, "size=16m");
    fs::write(sub.join("marker"), "sub").expect("write marker");
    (dir, guard)
}

#[test]
fn bind_leaves_out_submounts_and_rbind_takes_them() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-rbind");
    let host = HostDir::new("rbind");
    let (tree, sub) = dir_with_submount(&host);
    add_bind(&mut b, &tree, "/bind", &["bind"]);
    add_bind(&mut b, &tree, "/rbind", &["rbind"]);
    script(
        &mut b,
        &[
            try_cmd("bind-top", "test -e /bind/top-file"),
            try_cmd("bind-sub", "test -e /bind/sub/marker"),
            try_cmd("rbind-top", "test -e /rbind/top-file"),
            try_cmd("rbind-sub", "test -e /rbind/sub/marker"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "bind-top", "ok");
    assert_result(&out, "bind-sub", "fail");
    assert_result(&out, "rbind-top", "ok");
    assert_result(&out, "rbind-sub", "ok");
    assert!(!has_mount_at(&out, "/bind/sub"), "bind took the submount");
    assert!(has_mount_at(&out, "/rbind/sub"), "rbind lost the submount");
    sub.unmount();
}

#[test]
fn recursive_options_reach_submounts() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-recur");
    let host = HostDir::new("recur");
    let (tree, sub) = dir_with_submount(&host);
    add_bind(&mut b, &tree, "/rro", &["rbind", "rro"]);
    add_bind(&mut b, &tree, "/ro", &["rbind", "ro"]);
    add_bind(&mut b, &tree, "/rnosuid", &["rbind", "rnosuid"]);
    add_bind(&mut b, &tree, "/rnoexec", &["rbind", "rnoexec"]);
    add_bind(&mut b, &tree, "/plain", &["rbind"]);
    script(
        &mut b,
        &[
            try_cmd("rro-top", "touch /rro/f"),
            try_cmd("rro-sub", "touch /rro/sub/f"),
            try_cmd("ro-top", "touch /ro/f"),
            try_cmd("ro-sub", "touch /ro/sub/from-ro"),
            "busybox cp /bin/busybox /plain/sub/busybox".to_string(),
            "busybox chmod 755 /plain/sub/busybox".to_string(),
            try_cmd("exec-plain-sub", "/plain/sub/busybox true"),
            try_cmd("exec-rnoexec-sub", "/rnoexec/sub/busybox true"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "rro-top", "fail");
    assert_result(&out, "rro-sub", "fail");
    assert_result(&out, "ro-top", "fail");
    // Plain `ro` is not recursive: the submount stays writable.
    assert_result(&out, "ro-sub", "ok");
    assert_result(&out, "exec-plain-sub", "ok");
    assert_result(&out, "exec-rnoexec-sub", "fail");
    assert_mount_options(
        &out,
        &[
            ("/rro", "ro"),
            ("/rro/sub", "ro"),
            ("/rnosuid", "nosuid"),
            ("/rnosuid/sub", "nosuid"),
            ("/rnoexec", "noexec"),
            ("/rnoexec/sub", "noexec"),
        ],
    );
    let plain = mount_at(&out, "/plain/sub");
    assert!(
        !plain.has_option("ro") && !plain.has_option("noexec") && !plain.has_option("nosuid"),
        "the recursive options leaked to another mount of the same tree: {}",
        plain.line
    );
    sub.unmount();
}

#[test]
fn nosymfollow_refuses_symlinks() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-nosym");
    add_tmpfs(&mut b, "/nsf", &["nosymfollow"]);
    add_tmpfs(&mut b, "/sf", &[]);
    script(
        &mut b,
        &[
            "busybox ln -s /etc/passwd /nsf/link".to_string(),
            "busybox ln -s /etc/passwd /sf/link".to_string(),
            try_cmd("follow-nsf", "cat /nsf/link >/dev/null"),
            try_cmd("follow-sf", "cat /sf/link >/dev/null"),
            try_cmd("readlink-nsf", "readlink /nsf/link >/dev/null"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    let m = mount_at(&out, "/nsf");
    assert!(m.has_option("nosymfollow"), "/nsf: {}", m.line);
    assert!(!mount_at(&out, "/sf").has_option("nosymfollow"));
    assert_result(&out, "follow-nsf", "fail");
    assert_result(&out, "follow-sf", "ok");
    assert_result(&out, "readlink-nsf", "ok");
}

#[test]
fn propagation_of_a_bind_mount() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-prop");
    let host = HostDir::new("prop");
    let dir = host.subdir("shared");
    let shared = HostMount::tmpfs(&dir, "size=16m");
    shared.set_propagation(MsFlags::MS_SHARED);
    let host_group = host_mount_at(&dir)
        .peer_group("shared")
        .expect("the host mount is shared after --make-shared");
    add_bind(&mut b, &dir, "/p-private", &["rbind", "rprivate"]);
    add_bind(&mut b, &dir, "/p-shared", &["rbind", "rshared"]);
    add_bind(&mut b, &dir, "/p-slave", &["rbind", "rslave"]);
    script(&mut b, &[]);
    let out = run_ok(&ctx, &b, &id);

    let private = mount_at(&out, "/p-private");
    assert!(
        private.peer_group("shared").is_none() && private.peer_group("master").is_none(),
        "rprivate: no propagation fields expected: {}",
        private.line
    );
    let slave = mount_at(&out, "/p-slave");
    assert_eq!(
        slave.peer_group("master"),
        Some(host_group),
        "rslave: a slave of the host's peer group {host_group}: {}",
        slave.line
    );
    assert_eq!(
        slave.peer_group("shared"),
        None,
        "rslave: not shared: {}",
        slave.line
    );
    let sh = mount_at(&out, "/p-shared");
    let group = sh
        .peer_group("shared")
        .unwrap_or_else(|| panic!("rshared: a shared:N field expected: {}", sh.line));
    assert_ne!(
        group, host_group,
        "rshared inside must not join the host's peer group: {}",
        sh.line
    );
    shared.unmount();
}
