//! Mount destinations and rootfs paths: relative destinations, missing sources, files
//! in missing directories, symlinks out of the rootfs, `/proc` and `/sys` as symlinks.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use capsa_integration_test::fs_fixtures::{
    add_bind, add_tmpfs, create_fails, mount_at, run_ok, value_of, write_file, HostDir,
};
use capsa_integration_test::{capsa_only, loud, mountinfo, runtime, Bundle, Ctx};

use crate::{assert_result, script, try_cmd};

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

fn replace_with_symlink_into_rootfs(b: &Bundle, dir: &str) -> PathBuf {
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
