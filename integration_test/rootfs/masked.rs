//! Masked and readonly paths.

use std::fs;
use std::os::unix::fs::symlink;

use capsa_integration_test::fs_fixtures::{
    create_fails, has_mount_at, is_mount_point, mount_at, run_ok, write_file, HostDir, HostMount,
};
use capsa_integration_test::{capsa_only, Ctx};
use serde_json::json;

use crate::{assert_result, script, try_cmd};

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
