//! CVE-2025-31133 / CVE-2025-52565: `/dev/null` and `/dev/console` of the rootfs are
//! not what they should be.
//!
//! * maskedPaths hide a file by binding `/dev/null` over it. A runtime that binds
//!   whatever `/dev/null` leads to, when the rootfs's own `/dev` is used (no `/dev`
//!   tmpfs in the config) and `/dev/null` is a symlink to
//!   `/proc/sys/kernel/core_pattern`, binds the host-global core_pattern over
//!   `/proc/kcore` & co.: the mask shows (and, if writable, changes) host state.
//!   runc before 1.2.8 / 1.3.3 did so.
//! * With `process.terminal`, the pty is bound over `/dev/console`. A runtime that
//!   mounts on the path follows a `/dev/console` symlink, to a procfs file or to the
//!   host (resolved before the root is entered), and mounts there (CVE-2025-52565).
//!
//! capsa's defence: masking uses the container's `/dev/null` only after checking that
//! it is the null device (1:3), and `/dev/console` is opened inside the root with
//! openat2(RESOLVE_IN_ROOT) and mounted on through its fd.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use capsa_integration_test::fs_fixtures::{parse_mountinfo, HostDir};
use capsa_integration_test::security::{dir_entries, host_mounts_under, mknod_char, HostFileGuard};
use capsa_integration_test::{wait_for_file, Bundle, ConsoleSocket, Ctx, PtyReader};
use serde_json::json;

use super::{assert_clean_failure, drop_dev_mounts, is_runc, known_failure, push_mount, WAIT};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// Masked files the default config lists that exist on most kernels.
const MASKED_FILES: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/latency_stats",
    "/proc/sched_debug",
];

/// A bundle whose `/dev` is the rootfs's own, with `/dev/null` replaced by `make_null`,
/// and whose program reports, for every masked file, how many bytes it shows and
/// whether a write to it went through.
fn masked_bundle(ctx: &Ctx, prefix: &str, make_null: impl FnOnce(&Path)) -> (String, Bundle) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    drop_dev_mounts(&mut b);
    make_null(&b.rootfs().join("dev/null"));
    let marker = format!("core-capsa-it-{}", std::process::id());
    let mut script = String::new();
    for p in MASKED_FILES {
        script.push_str(&format!(
            "if [ -e {p} ]; then echo 'len{p}='$(head -c 64 {p} 2>/dev/null | wc -c); \
             if echo {marker} 2>/dev/null > {p}; then echo 'write{p}=ok'; fi; fi; "
        ));
    }
    script.push_str("echo core_pattern=$(cat /proc/sys/kernel/core_pattern)");
    b.sh(&script);
    (id, b)
}

/// Runs the masked-path bundle and judges it: create fails cleanly, or every masked
/// file reads empty and no write went through; and the host's core_pattern never
/// changes.
fn judge_masking(ctx: &Ctx, id: &str, b: &Bundle, what: &str) {
    let guard = HostFileGuard::new(Path::new(CORE_PATTERN));
    let out = ctx.cmd(&["run", "--bundle", b.path_str(), id]);
    eprintln!("{what}:\n{out}");
    let changed = guard.restore();
    let escaped = changed.is_some();
    if escaped {
        let msg = format!(
            "ESCAPE ({what}): the host's core_pattern was changed to {changed:?} (restored)"
        );
        if is_runc() {
            known_failure(&msg);
        } else {
            panic!("{msg}");
        }
    }
    if !out.success() {
        assert_clean_failure(&out);
        assert!(
            out.stderr.contains("/dev/null") || is_runc(),
            "the error should name /dev/null:\n{out}"
        );
        ctx.assert_nothing_left(id, b);
        return;
    }
    let mut bypassed = Vec::new();
    for p in MASKED_FILES {
        if let Some(len) = super::field(&out.stdout, &format!("len{p}")) {
            if len != "0" {
                bypassed.push(format!("{p} shows {len} bytes"));
            }
        }
        if super::field(&out.stdout, &format!("write{p}")) == Some("ok") {
            bypassed.push(format!("{p} was writable"));
        }
    }
    if !bypassed.is_empty() {
        let msg = format!("masking bypassed ({what}): {bypassed:?}");
        if is_runc() {
            known_failure(&msg);
        } else {
            panic!("{msg}\n{out}");
        }
    }
    ctx.assert_nothing_left(id, b);
}

/// `/dev/null -> /proc/sys/kernel/core_pattern`: a runtime without the check binds the
/// host-global core_pattern over every masked file.
#[test]
fn masking_with_dev_null_symlinked_to_core_pattern() {
    let ctx = Ctx::new();
    let (id, b) = masked_bundle(&ctx, "x31133-core", |null| {
        symlink(CORE_PATTERN, null).expect("symlink dev/null -> core_pattern");
    });
    judge_masking(&ctx, &id, &b, "/dev/null -> /proc/sys/kernel/core_pattern");
}

/// `/dev/null` a symlink to a host path (absolute, resolved on the host by a runtime
/// that works before entering the root, or as `/dev/null` after pivot by one that
/// binds by path).
#[test]
fn masking_with_dev_null_symlinked_out_of_the_rootfs() {
    let ctx = Ctx::new();
    let host = HostDir::new("31133-host");
    let secret = host.path().join("secret");
    fs::write(&secret, "host secret\n").expect("secret");
    let link = format!("../../../../../../../../../..{}", secret.display());
    let (id, b) = masked_bundle(&ctx, "x31133-host", |null| {
        symlink(&link, null).expect("symlink dev/null");
    });
    judge_masking(&ctx, &id, &b, &format!("/dev/null -> {link}"));
    assert_eq!(
        fs::read_to_string(&secret).expect("secret"),
        "host secret\n"
    );
}

/// `/dev/null` a device node other than 1:3: `/dev/mem` (1:1). Bound over the masked
/// files, it would put the host's physical memory where `/proc/kcore` was, and only
/// the device cgroup would stand in the way.
#[test]
fn masking_with_dev_null_that_is_dev_mem() {
    let ctx = Ctx::new();
    let (id, b) = masked_bundle(&ctx, "x31133-mem", |null| mknod_char(null, 1, 1));
    judge_masking(&ctx, &id, &b, "/dev/null is c 1:1 (/dev/mem)");
}

/// `/dev/console` replaced by a symlink, with `process.terminal`: the pty must be bound
/// inside the container only. Variants: a symlink to the container's core_pattern
/// (procfs), to an absolute host path, and a `../..` chain to it; a runtime resolving
/// on the host creates (and mounts on) the host file.
#[test]
fn dev_console_symlink_with_a_terminal() {
    let ctx = Ctx::new();
    let host = HostDir::new("52565-host");
    let guard = HostFileGuard::new(Path::new(CORE_PATTERN));
    let abs = host.path().join("console-abs");
    let rel_target = host.path().join("console-rel");
    let rel = format!("../../../../../../../../../..{}", rel_target.display());
    let variants = [
        (CORE_PATTERN.to_string(), CORE_PATTERN.to_string()),
        (abs.display().to_string(), abs.display().to_string()),
        (rel, rel_target.display().to_string()),
    ];
    for (i, (link, resolved_inside)) in variants.iter().enumerate() {
        let (id, mut b) = ctx.id_and_bundle("x52565");
        let out = b.with_out_dir();
        drop_dev_mounts(&mut b);
        let dev = b.rootfs().join("dev");
        mknod_char(&dev.join("null"), 1, 3);
        fs::create_dir_all(dev.join("pts")).expect("dev/pts");
        symlink("pts/ptmx", dev.join("ptmx")).expect("dev/ptmx");
        symlink(link, dev.join("console")).expect("dev/console symlink");
        push_mount(
            &mut b,
            json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                "mode=0620"] }),
        );
        b.edit(|c| c["process"]["terminal"] = json!(true));
        // (Not `cat` of core_pattern: in the first variant the pty is bound there and
        // the read would wait for terminal input.)
        b.sh("cat /proc/self/mountinfo > /out/mountinfo; touch /out/done");
        let sock = ConsoleSocket::bind(ctx.base().join(format!("console-{i}.sock")));
        let what = format!("/dev/console -> {link}");
        let created = ctx.cmd(&[
            "create",
            "--bundle",
            b.path_str(),
            "--console-socket",
            sock.path_str(),
            &id,
        ]);
        eprintln!("{what}: create:\n{created}");
        if created.success() {
            let term = PtyReader::new(sock.recv_master(WAIT).master);
            ctx.start(&id).assert_success();
            wait_for_file(&out.join("done"), WAIT);
            let _ = term.wait_closed(Duration::from_secs(10));
            let text = fs::read_to_string(out.join("mountinfo")).unwrap_or_default();
            let pty_binds: Vec<_> = parse_mountinfo(&text)
                .into_iter()
                .filter(|m| m.fs_type == "devpts" && m.root != "/")
                .collect();
            eprintln!("{what}: pty binds inside: {pty_binds:#?}");
            assert!(
                pty_binds
                    .iter()
                    .any(|m| m.mount_point == "/dev/console" || m.mount_point == *resolved_inside),
                "{what}: the pty bind is not inside the container (at /dev/console or \
                 {resolved_inside}):\n{text}"
            );
            ctx.delete_force(&id).assert_success();
        } else {
            assert_clean_failure(&created);
        }
        ctx.assert_nothing_left(&id, &b);
        assert!(
            dir_entries(host.path()).is_empty() && host_mounts_under(host.path()).is_empty(),
            "ESCAPE ({what}): the host directory was used: {:?} {:?}",
            dir_entries(host.path()),
            host_mounts_under(host.path())
        );
        let changed = guard.restore();
        assert!(
            changed.is_none(),
            "ESCAPE ({what}): host core_pattern changed to {changed:?}"
        );
    }
}
