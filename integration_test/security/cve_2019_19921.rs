//! CVE-2019-16884 / CVE-2019-19921: `/proc` (or `/sys`) of the rootfs is a symlink.
//!
//! A runtime that mounts `proc` wherever `rootfs/proc` leads puts the real procfs
//! somewhere else (a volume, a host directory): its later writes meant for procfs
//! (`/proc/self/attr/*` for AppArmor/SELinux labels, sysctls, `oom_score_adj`) then hit
//! ordinary files the container controls, and `maskedPaths`/`readonlyPaths` under
//! `/proc` no longer cover the procfs the container can reach. runc before 1.0.0-rc10
//! did so (CVE-2019-19921; rc9's fix for CVE-2019-16884 was bypassed this way).
//!
//! capsa's defence: `proc` and `sysfs` must land on a plain directory of the rootfs;
//! a destination that leads elsewhere through a symlink is refused.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use capsa_integration_test::fs_fixtures::HostDir;
use capsa_integration_test::security::{dir_entries, host_mounts_under, HostFileGuard};
use capsa_integration_test::{loud, Bundle, Ctx};

use super::{assert_clean_failure, is_runc, known_failure};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// Replaces `rootfs/<dir>` by a symlink to `target`.
fn replace_with_symlink(b: &Bundle, dir: &str, target: &str) {
    let p = b.rootfs().join(dir);
    fs::remove_dir_all(&p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    symlink(target, &p).unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", p.display()));
}

/// One variant: `rootfs/<dir> -> <target>`; the program tries to write the host's
/// core_pattern through wherever procfs ended up. `create` must fail cleanly and leave
/// the host directory `host` alone.
fn check_variant(ctx: &Ctx, dir: &str, target: &str, host: &Path, guard: &HostFileGuard) {
    let (id, mut b) = ctx.id_and_bundle("x19921");
    let marker = format!("core-capsa-it-{}", std::process::id());
    if target == "/fakeproc" {
        fs::create_dir_all(b.rootfs().join("fakeproc")).expect("fakeproc");
    }
    replace_with_symlink(&b, dir, target);
    b.sh(&format!(
        "for p in /fakeproc/sys/kernel/core_pattern {CORE_PATTERN}; do \
           echo {marker} > $p 2>/dev/null && echo wrote=$p; done; \
         echo kcore=$(head -c 16 /fakeproc/kcore 2>/dev/null | wc -c)"
    ));
    let what = format!("rootfs/{dir} -> {target}");
    let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
    eprintln!("{what}:\n{out}");
    let changed = guard.restore();
    assert!(
        changed.is_none(),
        "ESCAPE ({what}): the host's core_pattern was changed to {changed:?}"
    );
    assert!(
        dir_entries(host).is_empty() && host_mounts_under(host).is_empty(),
        "ESCAPE ({what}): the host directory {} was used: {:?} {:?}",
        host.display(),
        dir_entries(host),
        host_mounts_under(host)
    );
    if out.success() {
        let msg = format!(
            "{what}: the runtime mounted {dir} through the symlink instead of refusing \
             (output: {:?})",
            out.stdout.trim()
        );
        if is_runc() {
            known_failure(&msg);
        } else {
            panic!("{msg}");
        }
    } else {
        assert_clean_failure(&out);
    }
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn proc_replaced_by_symlinks_is_refused() {
    let ctx = Ctx::new();
    let guard = HostFileGuard::new(Path::new(CORE_PATTERN));
    let host = HostDir::new("19921-target");
    let t = host.path().display().to_string();
    let up = format!("../../../../../../../../..{t}");
    for target in ["/", t.as_str(), up.as_str(), "/fakeproc"] {
        check_variant(&ctx, "proc", target, host.path(), &guard);
    }
}

#[test]
fn sys_replaced_by_symlinks_is_refused() {
    let ctx = Ctx::new();
    let guard = HostFileGuard::new(Path::new(CORE_PATTERN));
    let host = HostDir::new("19921-systarget");
    let t = host.path().display().to_string();
    for target in [t.as_str(), "/"] {
        check_variant(&ctx, "sys", target, host.path(), &guard);
    }
}

/// The LSM side of CVE-2019-16884 (and CVE-2025-52881): label writes to
/// `/proc/self/attr/*` redirected to a fake file. capsa applies no AppArmor or SELinux
/// label on this host, so there is nothing to redirect.
#[test]
fn proc_self_attr_label_writes() {
    let lsm = fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    loud(&format!(
        "SKIPPED: /proc/self/attr label redirection (CVE-2019-16884, CVE-2025-52881): no \
         AppArmor/SELinux label is applied by the runtime on this host (LSMs: {:?})",
        lsm.trim()
    ));
}
