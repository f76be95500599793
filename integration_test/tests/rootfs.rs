//! The root filesystem: every family of mount options, mount destinations (relative,
//! missing sources, files in missing directories, symlinks out of the rootfs, `/proc`
//! and `/sys` replaced by symlinks), masked and readonly paths.
//!
//! Each test looks from inside the container (its output, usually
//! `/proc/self/mountinfo` and `key=ok|fail` lines) and ends with
//! `assert_nothing_left`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use capsa_integration_test::fs_fixtures::{
    add_bind, add_tmpfs, create_fails, has_mount_at, host_mount_at, is_mount_point, mount_at,
    run_ok, value_of, write_file, HostDir, HostMount,
};
use capsa_integration_test::{capsa_only, loud, mountinfo, runtime, Bundle, Ctx};
use nix::mount::MsFlags;
use serde_json::json;

/// A shell snippet printing `<key>=ok` when `cmd` succeeds, `<key>=fail` otherwise.
fn try_cmd(key: &str, cmd: &str) -> String {
    format!("if {cmd} 2>/dev/null; then echo {key}=ok; else echo {key}=fail; fi")
}

/// `sh -c` of the snippets joined, then the mountinfo.
fn script(b: &mut Bundle, parts: &[String]) {
    let mut all = parts.to_vec();
    all.push("cat /proc/self/mountinfo".to_string());
    b.sh(&all.join("; "));
}

fn assert_result(out: &str, key: &str, want: &str) {
    assert_eq!(
        value_of(out, key),
        want,
        "{key} inside the container:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Option families

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
    for (point, opt) in [
        ("/t-ro", "ro"),
        ("/t-rw", "rw"),
        ("/b-ro", "ro"),
        ("/b-rw", "rw"),
    ] {
        let m = mount_at(&out, point);
        assert!(m.has_option(opt), "{point} should be {opt}: {}", m.line);
    }
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

    for (point, opt) in [
        ("/a-noatime", "noatime"),
        ("/a-relatime", "relatime"),
        ("/a-nodiratime", "nodiratime"),
        ("/b-noatime", "noatime"),
    ] {
        let m = mount_at(&out, point);
        assert!(m.has_option(opt), "{point} lacks {opt}: {}", m.line);
    }
    let strict = mount_at(&out, "/a-strict");
    assert!(
        !strict.has_option("relatime") && !strict.has_option("noatime"),
        "strictatime shows neither relatime nor noatime: {}",
        strict.line
    );
}

/// A host dir with a tmpfs mounted at `<dir>/sub` holding `sub/marker`.
fn dir_with_submount(host: &HostDir) -> (std::path::PathBuf, HostMount) {
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
    for (point, opt) in [
        ("/rro", "ro"),
        ("/rro/sub", "ro"),
        ("/rnosuid", "nosuid"),
        ("/rnosuid/sub", "nosuid"),
        ("/rnoexec", "noexec"),
        ("/rnoexec/sub", "noexec"),
    ] {
        let m = mount_at(&out, point);
        assert!(m.has_option(opt), "{point} lacks {opt}: {}", m.line);
    }
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

// ---------------------------------------------------------------------------------------
// Destinations

#[test]
fn relative_destination_is_refused() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-rel");
    b.args(&["sleep", "1000"]);
    let i = add_tmpfs(&mut b, "data", &[]);
    if runtime().is_runc() {
        // runc 1.1.5 accepts a relative destination (with a deprecation warning on
        // stderr), mounting it relative to /.
        let out = ctx.create(&b, &id);
        loud(&format!(
            "SKIPPED for runc (runc 1.1.5 accepts a relative mounts[].destination): \
             create exited {:?}",
            out.code()
        ));
        if out.success() {
            ctx.delete_force(&id).assert_success();
        }
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains(&format!("mounts[{i}].destination")),
        "the error names mounts[{i}].destination: {line}"
    );
}

#[test]
fn missing_bind_source_fails_create() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-nosrc");
    b.args(&["sleep", "1000"]);
    let host = HostDir::new("nosrc");
    let missing = host.path().join("not-there");
    let i = add_bind(&mut b, &missing, "/missing", &["bind"]);
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains(&missing.display().to_string()) || line.contains("/missing"),
        "the error names the mount's source or destination: {line}"
    );
    if capsa_only("the error names the mounts[i] entry") {
        assert!(line.contains(&format!("mounts[{i}]")), "{line}");
    }
    assert!(
        !b.rootfs().join("missing").exists(),
        "a mount point was made"
    );
}

#[test]
fn file_bind_into_missing_directories() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-file");
    let host = HostDir::new("file");
    let file = write_file(host.path(), "config.txt", "file content\n", 0o644);
    add_bind(&mut b, &file, "/deep/er/path/config.txt", &["bind", "ro"]);
    script(
        &mut b,
        &[
            "echo content=$(cat /deep/er/path/config.txt)".to_string(),
            try_cmd("write", "echo x >> /deep/er/path/config.txt"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "content", "file content");
    assert_result(&out, "write", "fail");
    let m = mount_at(&out, "/deep/er/path/config.txt");
    assert!(m.has_option("ro"), "{}", m.line);
    let parent = b.rootfs().join("deep/er/path");
    assert!(
        parent.is_dir(),
        "the parents were created inside the rootfs"
    );
    let point = fs::symlink_metadata(parent.join("config.txt")).expect("mount point");
    assert!(point.is_file(), "a file gets a file as its mount point");
    assert_eq!(
        fs::read_to_string(&file).expect("read source"),
        "file content\n"
    );
}

/// A name under the host's /etc that no one else uses, checked absent first.
fn unused_host_etc_name(prefix: &str) -> String {
    let name = format!("{prefix}-{}", std::process::id());
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "/etc/{name} exists before the test"
    );
    name
}

fn assert_host_etc_untouched(name: &str) {
    let host = Path::new("/etc").join(name);
    assert!(
        fs::symlink_metadata(&host).is_err(),
        "{} was created on the host",
        host.display()
    );
    assert!(
        !mountinfo().iter().any(|m| m.mount_point.starts_with(&host)),
        "something is mounted at {} on the host",
        host.display()
    );
}

#[test]
fn rootfs_etc_symlinked_to_the_host_etc_does_not_touch_the_host() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-etcloop");
    let name = unused_host_etc_name("capsa-x-loop");
    let etc = b.rootfs().join("etc");
    fs::remove_dir_all(&etc).expect("remove rootfs/etc");
    symlink("/etc", &etc).expect("symlink rootfs/etc -> /etc");
    add_tmpfs(&mut b, &format!("/etc/{name}"), &[]);
    b.sh(&format!("test -d /etc/{name} && echo inside=yes"));
    let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
    eprintln!("rootfs/etc -> /etc with a mount at /etc/{name}:\n{out}");
    if out.success() {
        assert_eq!(value_of(&out.stdout, "inside"), "yes", "{out}");
    } else {
        // `/etc -> /etc` inside the root is a loop: failing is fine, cleanly.
        out.assert_error_line();
    }
    ctx.assert_nothing_left(&id, &b);
    assert_host_etc_untouched(&name);
}

#[test]
fn absolute_and_dotdot_symlinks_stay_inside_the_rootfs() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-etcesc");
    let abs = unused_host_etc_name("capsa-x-abs");
    let up = unused_host_etc_name("capsa-x-up");
    symlink("/etc", b.rootfs().join("hostetc")).expect("symlink hostetc -> /etc");
    symlink("../../../../../../../../etc", b.rootfs().join("upetc"))
        .expect("symlink upetc -> ../../etc");
    add_tmpfs(&mut b, &format!("/hostetc/{abs}"), &[]);
    add_tmpfs(&mut b, &format!("/upetc/{up}"), &[]);
    script(&mut b, &[]);
    let out = run_ok(&ctx, &b, &id);

    // Both resolve to the rootfs's own /etc.
    for name in [&abs, &up] {
        let m = mount_at(&out, &format!("/etc/{name}"));
        assert_eq!(m.fs_type, "tmpfs", "{}", m.line);
        assert!(
            b.rootfs().join("etc").join(name).is_dir(),
            "the mount point {name} was made in the rootfs's etc"
        );
        assert_host_etc_untouched(name);
    }
}

fn replace_with_symlink_into_rootfs(b: &Bundle, dir: &str) -> std::path::PathBuf {
    let rootfs = b.rootfs();
    let decoy = rootfs.join(format!("fake{dir}"));
    fs::create_dir_all(&decoy).expect("create decoy dir");
    fs::remove_dir(rootfs.join(dir)).expect("remove rootfs dir");
    symlink(format!("/fake{dir}"), rootfs.join(dir)).expect("symlink into the rootfs");
    decoy
}

#[test]
fn proc_as_a_symlink_is_refused() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-proc");
    b.args(&["sleep", "1000"]);
    let decoy = replace_with_symlink_into_rootfs(&b, "proc");
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("/proc") || line.to_lowercase().contains("symlink"),
        "the error mentions /proc or the symlink: {line}"
    );
    if capsa_only("the error names the mounts[i] entry") {
        assert!(line.contains("mounts[0]"), "{line}");
    }
    assert_eq!(fs::read_dir(&decoy).expect("decoy").count(), 0);
}

#[test]
fn sys_as_a_symlink_is_refused() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("dst-sys");
    b.args(&["sleep", "1000"]);
    let decoy = replace_with_symlink_into_rootfs(&b, "sys");
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("/sys") || line.to_lowercase().contains("symlink"),
        "the error mentions /sys or the symlink: {line}"
    );
    assert_eq!(fs::read_dir(&decoy).expect("decoy").count(), 0);
}

// ---------------------------------------------------------------------------------------
// Masked and readonly paths

#[test]
fn masked_and_readonly_paths() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("masked");
    let etc = b.rootfs().join("etc");
    write_file(&etc, "secret", "top secret\n", 0o644);
    write_file(&etc, "secretdir/key", "key\n", 0o644);
    write_file(&etc, "rodir/conf", "conf\n", 0o644);
    write_file(&etc, "rofile", "ro\n", 0o644);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        for (key, paths) in [
            (
                "maskedPaths",
                ["/etc/secret", "/etc/secretdir", "/no/such/path"],
            ),
            (
                "readonlyPaths",
                ["/etc/rodir", "/etc/rofile", "/no/such/ro"],
            ),
        ] {
            let list = c["linux"][key].as_array_mut().expect("path list");
            list.extend(paths.iter().map(|p| json!(p)));
        }
    });
    script(
        &mut b,
        &[
            "echo secret=\"$(cat /etc/secret)\"".to_string(),
            "echo x > /etc/secret 2>/dev/null".to_string(),
            "echo secret2=\"$(cat /etc/secret)\"".to_string(),
            "echo secretdir=\"$(ls -A /etc/secretdir)\"".to_string(),
            try_cmd("secretdir-write", "touch /etc/secretdir/new"),
            "echo conf=$(cat /etc/rodir/conf)".to_string(),
            try_cmd("rodir-write", "touch /etc/rodir/new"),
            "echo rofile=$(cat /etc/rofile)".to_string(),
            try_cmd("rofile-write", "echo x >> /etc/rofile"),
            try_cmd("other-write", "touch /etc/other"),
            try_cmd("no-such-path", "test ! -e /no/such/path"),
        ],
    );
    let out = run_ok(&ctx, &b, &id);

    assert_result(&out, "secret", "");
    assert_result(&out, "secret2", "");
    assert_result(&out, "secretdir", "");
    assert_result(&out, "secretdir-write", "fail");
    assert_result(&out, "conf", "conf");
    assert_result(&out, "rodir-write", "fail");
    assert_result(&out, "rofile", "ro");
    assert_result(&out, "rofile-write", "fail");
    assert_result(&out, "other-write", "ok");
    assert_result(&out, "no-such-path", "ok");
    let dir = mount_at(&out, "/etc/secretdir");
    assert!(
        dir.fs_type == "tmpfs" && dir.has_option("ro"),
        "a masked dir is a read-only tmpfs: {}",
        dir.line
    );
    assert!(
        has_mount_at(&out, "/etc/secret"),
        "the masked file is bound over"
    );
    for p in ["/etc/rodir", "/etc/rofile"] {
        let m = mount_at(&out, p);
        assert!(m.has_option("ro"), "{p}: {}", m.line);
    }
    assert_eq!(
        fs::read_to_string(etc.join("secret")).expect("secret"),
        "top secret\n",
        "a write through the mask reached the file"
    );
    assert!(!etc.join("secretdir/new").exists());
    assert!(
        etc.join("other").exists(),
        "the rootfs is writable elsewhere"
    );
    assert!(
        !b.rootfs().join("no").exists(),
        "a missing masked path was created"
    );
}

#[test]
fn masking_refuses_a_dev_null_that_is_not_the_null_device() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("masked-null");
    b.args(&["sleep", "1000"]);
    let rootfs = b.rootfs();
    write_file(&rootfs, "etc/leak", "", 0o666);
    write_file(&rootfs, "etc/secret", "top secret\n", 0o644);
    symlink("/etc/leak", rootfs.join("dev/null")).expect("symlink dev/null");
    b.edit(|c| {
        // No /dev tmpfs: the rootfs's own /dev is used, with its fake null.
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
        c["linux"]["maskedPaths"] = json!(["/etc/secret"]);
    });
    if !capsa_only("masking with a /dev/null that is a symlink to a regular file is refused") {
        // runc 1.1.5 binds whatever /dev/null leads to; only clean up.
        let out = ctx.create(&b, &id);
        if out.success() {
            ctx.delete_force(&id).assert_success();
        }
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("/dev/null"),
        "the error names /dev/null: {line}"
    );
}

#[test]
fn host_mounts_made_by_tests_are_gone() {
    // The guards of the tests above unmount; this checks the fixture itself once.
    let host = HostDir::new("guard");
    let dir = host.subdir("m");
    {
        let _m = HostMount::tmpfs(&dir, "size=1m");
        assert!(is_mount_point(&dir));
    }
    assert!(!is_mount_point(&dir), "the guard unmounts on drop");
}
