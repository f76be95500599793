//! Mount option families on tmpfs and bind mounts: ro/rw, nosuid/nodev/noexec, the
//! atime family, tmpfs data options, tmpcopyup.

use std::fs;

use capsa_integration_test::fs_fixtures::{
    add_bind, add_tmpfs, assert_mount_options, create_fails, mount_at, run_ok, write_file, HostDir,
};
use capsa_integration_test::{capsa_only, Ctx};

use crate::{assert_result, script, try_cmd};

#[test]
fn ro_and_rw_on_tmpfs_and_bind_mounts() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-rorw");
    let host = HostDir::new("rorw");
    let ro_src = host.subdir("ro");
    let rw_src = host.subdir("rw");
    add_tmpfs(&mut b, "/t-ro", &["ro"]);
    add_tmpfs(&mut b, "/t-rw", &["rw"]);
    add_bind(&mut b, &ro_src, "/b-ro", &["bind", "ro"]);
    add_bind(&mut b, &rw_src, "/b-rw", &["bind", "rw"]);
    script(
        &mut b,
        &[
            try_cmd("t-ro", "touch /t-ro/f"),
            try_cmd("t-rw", "touch /t-rw/f"),
            try_cmd("b-ro", "touch /b-ro/f"),
            try_cmd("b-rw", "touch /b-rw/f"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "t-ro", "fail");
    assert_result(&out, "t-rw", "ok");
    assert_result(&out, "b-ro", "fail");
    assert_result(&out, "b-rw", "ok");
    assert_mount_options(
        &out,
        &[
            ("/t-ro", "ro"),
            ("/t-rw", "rw"),
            ("/b-ro", "ro"),
            ("/b-rw", "rw"),
        ],
    );
    assert!(
        rw_src.join("f").exists(),
        "the rw bind's write reached the host"
    );
    assert!(!ro_src.join("f").exists(), "the ro bind was written");
}

#[test]
fn nosuid_nodev_noexec_on_tmpfs_and_bind_mounts() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-nox");
    let host = HostDir::new("nox");
    let src = host.subdir("src");
    let exec_src = host.subdir("exec");
    add_tmpfs(&mut b, "/t-nox", &["nosuid", "nodev", "noexec"]);
    add_tmpfs(&mut b, "/t-exec", &["exec"]);
    add_bind(
        &mut b,
        &src,
        "/b-nox",
        &["bind", "nosuid", "nodev", "noexec"],
    );
    add_bind(&mut b, &exec_src, "/b-exec", &["bind", "exec"]);
    let mut parts = Vec::new();
    for dir in ["t-nox", "t-exec", "b-nox", "b-exec"] {
        parts.push(format!("busybox cp /bin/busybox /{dir}/busybox"));
        parts.push(format!("busybox chmod 755 /{dir}/busybox"));
        parts.push(try_cmd(
            &format!("exec-{dir}"),
            &format!("/{dir}/busybox true"),
        ));
    }
    script(&mut b, &parts);
    let out = run_ok(&ctx, &b, &id);

    for point in ["/t-nox", "/b-nox"] {
        let m = mount_at(&out, point);
        for opt in ["nosuid", "nodev", "noexec"] {
            assert!(m.has_option(opt), "{point} lacks {opt}: {}", m.line);
        }
    }
    for point in ["/t-exec", "/b-exec"] {
        let m = mount_at(&out, point);
        assert!(!m.has_option("noexec"), "{point} is noexec: {}", m.line);
    }
    assert_result(&out, "exec-t-nox", "fail");
    assert_result(&out, "exec-b-nox", "fail");
    assert_result(&out, "exec-t-exec", "ok");
    assert_result(&out, "exec-b-exec", "ok");
}

#[test]
fn atime_family() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-atime");
    let host = HostDir::new("atime");
    let src = host.subdir("src");
    add_tmpfs(&mut b, "/a-noatime", &["noatime"]);
    add_tmpfs(&mut b, "/a-relatime", &["relatime"]);
    add_tmpfs(&mut b, "/a-strict", &["strictatime"]);
    add_tmpfs(&mut b, "/a-nodiratime", &["nodiratime"]);
    add_bind(&mut b, &src, "/b-noatime", &["bind", "noatime"]);
    script(&mut b, &[]);
    let out = run_ok(&ctx, &b, &id);

    assert_mount_options(
        &out,
        &[
            ("/a-noatime", "noatime"),
            ("/a-relatime", "relatime"),
            ("/a-nodiratime", "nodiratime"),
            ("/b-noatime", "noatime"),
        ],
    );
    let strict = mount_at(&out, "/a-strict");
    assert!(
        !strict.has_option("relatime") && !strict.has_option("noatime"),
        "strictatime shows neither relatime nor noatime: {}",
        strict.line
    );
}

#[test]
fn tmpcopyup_copies_the_directory_and_keeps_writes_off_the_rootfs() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-copyup");
    let data = b.rootfs().join("data");
    write_file(&data, "a.txt", "from rootfs\n", 0o644);
    write_file(&data, "sub/b.txt", "nested\n", 0o600);
    add_tmpfs(&mut b, "/data", &["tmpcopyup", "mode=755"]);
    script(
        &mut b,
        &[
            "echo a=$(cat /data/a.txt)".to_string(),
            "echo b=$(cat /data/sub/b.txt)".to_string(),
            "echo bmode=$(stat -c %a /data/sub/b.txt)".to_string(),
            try_cmd("write-new", "echo new > /data/new"),
            try_cmd("write-a", "echo changed > /data/a.txt"),
            "echo a2=$(cat /data/a.txt)".to_string(),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "a", "from rootfs");
    assert_result(&out, "b", "nested");
    assert_result(&out, "bmode", "600");
    assert_result(&out, "write-new", "ok");
    assert_result(&out, "write-a", "ok");
    assert_result(&out, "a2", "changed");
    let m = mount_at(&out, "/data");
    assert_eq!(m.fs_type, "tmpfs", "{}", m.line);
    assert!(!data.join("new").exists(), "a write reached the rootfs dir");
    assert_eq!(
        fs::read_to_string(data.join("a.txt")).expect("read a.txt"),
        "from rootfs\n",
        "the rootfs file changed"
    );
}

#[test]
fn tmpfs_data_options_pass_through() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-data");
    add_tmpfs(&mut b, "/sized", &["nosuid", "size=1m", "mode=700"]);
    script(&mut b, &["echo mode=$(stat -c %a /sized)".to_string()]);
    let out = run_ok(&ctx, &b, &id);

    let m = mount_at(&out, "/sized");
    assert!(m.has_super_option("size=1024k"), "size=1m: {}", m.line);
    assert!(m.has_super_option("mode=700"), "mode=700: {}", m.line);
    assert!(m.has_option("nosuid"), "{}", m.line);
    assert_result(&out, "mode", "700");
}

#[test]
fn unknown_tmpfs_option_fails_create() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("mnt-frob");
    b.args(&["sleep", "1000"]);
    let i = add_tmpfs(&mut b, "/frob", &["nosuid", "frobnicate"]);
    let line = create_fails(&ctx, &b, &id);
    if capsa_only("the error names the mounts[i] entry") {
        assert!(line.contains(&format!("mounts[{i}]")), "{line}");
    }
}
