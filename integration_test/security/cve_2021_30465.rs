//! CVE-2021-30465: mount destinations through symlinks, static and swapped by a race.
//!
//! A runtime that builds `<rootfs>/<destination>` as a host path and lets the kernel
//! resolve it follows a symlink in the rootfs (or in a volume the container shares)
//! out to the host: `rootfs/a -> /` makes a mount at `/a/x` land on the host's `/x`
//! (in the container's mount namespace, where it becomes a way out, and a missing
//! mount point is created on the host itself). runc 1.0.0-rc94 checked the path and
//! then mounted by path; a container racing `rename` in a shared volume swapped a
//! checked directory for a symlink in between.
//!
//! capsa's defence: every destination is opened with openat2(RESOLVE_IN_ROOT), which
//! resolves symlinks and `..` as if the rootfs were `/`, missing directories are made
//! one component at a time the same way, and the mount targets the opened fd through
//! `/proc/self/fd/N`, so a swap after the check changes nothing.
//!
//! The host targets here are private temp dirs: the tests assert that they stay empty
//! and unmounted, and that each mount shows inside the container where an in-root
//! resolution puts it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use capsa_integration_test::fs_fixtures::{mount_at, parse_mountinfo, HostDir};
use capsa_integration_test::security::{dir_entries, host_mounts_under};
use capsa_integration_test::{loud, mountinfo, state_pid, wait_for_file, Ctx};
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use serde_json::json;

use super::{assert_clean_failure, is_runc, known_failure, push_mount, WAIT};

/// `path` without its leading `/`.
fn rel(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

/// What escaped into the host directory `dir`: entries created in it, mounts at or
/// below it in the host's mount namespace.
fn host_dir_escapes(dir: &Path, what: &str) -> Option<String> {
    let entries = dir_entries(dir);
    let mounts = host_mounts_under(dir);
    if entries.is_empty() && mounts.is_empty() {
        None
    } else {
        Some(format!(
            "ESCAPE ({what}): the host directory {} was written: entries {entries:?}, \
             mounts {mounts:#?}",
            dir.display()
        ))
    }
}

/// Panics unless the host directory `dir` is still empty and nothing is mounted at or
/// below it in the host's mount namespace.
fn assert_host_dir_untouched(dir: &Path, what: &str) {
    if let Some(msg) = host_dir_escapes(dir, what) {
        panic!("{msg}");
    }
}

/// Host mount lines outside the temp dir (where parallel tests legitimately mount).
fn host_mounts_outside_tmp() -> Vec<String> {
    let tmp = std::env::temp_dir();
    let mut v: Vec<String> = mountinfo()
        .into_iter()
        .filter(|m| !m.mount_point.starts_with(&tmp))
        .map(|m| m.line)
        .collect();
    v.sort();
    v
}

/// Static escapes: an absolute symlink to `/`, a `../..` chain, and an absolute symlink
/// naming a host directory, each under tmpfs, directory-bind and file-bind
/// destinations. A runtime resolving on the host puts every one of these mounts (and
/// the mount points it creates) into the host directory `T`.
#[test]
fn mount_destinations_through_escaping_symlinks_stay_inside() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("x30465-static");
    let target = HostDir::new("30465-target");
    let t = target.path().to_path_buf();
    let t_rel = rel(&t);
    let src = HostDir::new("30465-src");
    fs::write(src.path().join("marker"), "bind-source\n").expect("marker");
    fs::write(src.path().join("file"), "file-source\n").expect("file");
    let rootfs = b.rootfs();
    symlink("/", rootfs.join("abs")).expect("abs -> /");
    symlink("../../../../../../../../../..", rootfs.join("up")).expect("up -> ../..");
    symlink(&t, rootfs.join("hostabs")).expect("hostabs -> T");
    let abs = format!("/abs/{}", t_rel.display());
    let up = format!("/up/{}", t_rel.display());
    let cases = [
        (format!("{abs}/m-abs"), None),
        (format!("{up}/m-up"), None),
        ("/hostabs/m-hostabs".to_string(), None),
        (format!("{up}/b-up"), Some(src.path().to_path_buf())),
        (
            "/hostabs/f-hostabs".to_string(),
            Some(src.path().join("file")),
        ),
    ];
    for (dest, source) in &cases {
        let entry = match source {
            None => json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" }),
            Some(s) => json!({ "destination": dest, "type": "bind", "source": s,
                               "options": ["bind"] }),
        };
        push_mount(&mut b, entry);
    }
    b.sh("cat /proc/self/mountinfo");
    let before = host_mounts_outside_tmp();

    let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
    eprintln!("{out}");
    assert_host_dir_untouched(&t, "static symlinks");
    assert_eq!(
        host_mounts_outside_tmp(),
        before,
        "host mounts outside the temp dir changed"
    );
    if !out.success() {
        assert_clean_failure(&out);
        loud(&format!(
            "NOTE: static symlink destinations were refused rather than resolved inside \
             the rootfs: {}",
            out.stderr.trim()
        ));
        ctx.assert_nothing_left(&id, &b);
        return;
    }
    // Resolved inside the root, each lands under the rootfs's own copy of T's path.
    for (name, fs_type) in [
        ("m-abs", "tmpfs"),
        ("m-up", "tmpfs"),
        ("m-hostabs", "tmpfs"),
        ("b-up", ""),
        ("f-hostabs", ""),
    ] {
        let inside = t.join(name).display().to_string();
        let m = mount_at(&out.stdout, &inside);
        if !fs_type.is_empty() {
            assert_eq!(m.fs_type, fs_type, "{}", m.line);
        }
        assert!(
            fs::symlink_metadata(rootfs.join(&t_rel).join(name)).is_ok(),
            "the mount point of {name} should have been made inside the rootfs"
        );
    }
    ctx.assert_nothing_left(&id, &b);
}

/// Bind sources are host paths (runtime spec), so a source that is a symlink is
/// followed on the host: the mount must still land at its destination in the
/// container, and nothing may be mounted or created on the host. A source naming a
/// symlink *inside the rootfs* (`rootfs/evil -> /`) is followed on the host too, by
/// runc as by capsa: that exposes the host's `/` to the container, which the config's
/// author asked for by naming it; the test reports what happened.
#[test]
fn bind_sources_that_are_symlinks() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("x30465-src");
    let data = HostDir::new("30465-data");
    fs::write(data.path().join("marker"), "host-data\n").expect("marker");
    let links = HostDir::new("30465-links");
    symlink(data.path(), links.path().join("link")).expect("link -> data");
    let rootfs = b.rootfs();
    symlink("/", rootfs.join("evil")).expect("evil -> /");
    for (src, dest) in [
        (links.path().join("link"), "/from-link"),
        (rootfs.join("evil"), "/from-evil"),
    ] {
        fs::create_dir_all(rootfs.join(dest.trim_start_matches('/'))).expect("mount point");
        push_mount(
            &mut b,
            json!({ "destination": dest, "type": "bind", "source": src, "options": ["rbind", "ro"] }),
        );
    }
    let probe = data.path().join("marker");
    b.sh(&format!(
        "echo link=$(cat /from-link/marker); \
         if [ -e /from-evil{} ]; then echo evil=host-root; else echo evil=not-host-root; fi; \
         grep -c . /proc/self/mountinfo",
        probe.display()
    ));
    let before = host_mounts_outside_tmp();
    let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
    eprintln!("{out}");
    assert_eq!(host_mounts_outside_tmp(), before, "host mounts changed");
    assert!(host_mounts_under(data.path()).is_empty());
    assert!(host_mounts_under(links.path()).is_empty());
    assert_eq!(dir_entries(data.path()), vec!["marker".to_string()]);
    if out.success() {
        assert_eq!(
            super::field(&out.stdout, "link"),
            Some("host-data"),
            "the symlinked source is followed on the host: {out}"
        );
        if super::field(&out.stdout, "evil") == Some("host-root") {
            loud(&format!(
                "NOTE ({}): a bind source naming the symlink rootfs/evil -> / is followed \
                 on the host and binds the host's / into the container (as runc does: \
                 sources are host paths)",
                capsa_integration_test::runtime().name()
            ));
        }
    } else {
        assert_clean_failure(&out);
    }
    ctx.assert_nothing_left(&id, &b);
}

/// The victim side of the race tests: `iterations` containers, each mounting `count`
/// tmpfs at `/vol/a/<T>/race-<i>` through the shared volume `/vol`, while something
/// swaps `/vol/a` between a directory and a symlink to `/`. After each `create`, every
/// mount must be in the container's mount table (a mount resolved through the swapped
/// symlink on the host is made outside the rootfs and vanishes with the old root),
/// and `T` on the host must stay empty.
///
/// Returns the first escape seen (after cleaning up), `None` when there was none. runc
/// 1.1.5 creates the missing mount point on the host when it loses this race
/// (CVE-2024-45310, fixed in runc 1.1.14).
fn race_victims(ctx: &Ctx, vol: &Path, t: &Path, iterations: usize, what: &str) -> Option<String> {
    let count = 6;
    let t_rel = rel(t);
    let (mut created, mut refused, mut escape) = (0, Vec::new(), None);
    for _ in 0..iterations {
        let (id, mut b) = ctx.id_and_bundle("x30465-victim");
        b.args(&["sleep", "100000"]);
        b.bind_mount(vol, "/vol");
        for i in 0..count {
            push_mount(
                &mut b,
                json!({ "destination": format!("/vol/a/{}/race-{i}", t_rel.display()),
                        "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"] }),
            );
        }
        let out = ctx.create(&b, &id);
        if out.success() {
            created += 1;
            let pid = state_pid(&ctx.state(&id));
            let text = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
            let mounts = parse_mountinfo(&text);
            let missing: Vec<usize> = (0..count)
                .filter(|i| {
                    let suffix = format!("/race-{i}");
                    !mounts
                        .iter()
                        .any(|m| m.fs_type == "tmpfs" && m.mount_point.ends_with(&suffix))
                })
                .collect();
            ctx.delete_force(&id).assert_success();
            if !missing.is_empty() {
                escape = escape.or(Some(format!(
                    "ESCAPE ({what}): the tmpfs mounts {missing:?} are not in the container's \
                     mount table, so they were mounted outside the rootfs:\n{text}"
                )));
            }
        } else {
            assert_clean_failure(&out);
            refused.push(out.stderr.trim().to_string());
        }
        ctx.assert_nothing_left(&id, &b);
        if let Some(msg) = host_dir_escapes(t, what) {
            escape = escape.or(Some(msg));
        }
        if escape.is_some() {
            break;
        }
    }
    refused.sort();
    refused.dedup();
    eprintln!("{what}: {created} created, refusals: {refused:#?}");
    escape
}

/// Reports an escape found by [`race_victims`]: a known failure for runc 1.1.5,
/// a test failure for capsa.
fn judge_race(escape: Option<String>) {
    if let Some(msg) = escape {
        if is_runc() {
            known_failure(&format!("{msg} (runc 1.1.5: CVE-2024-45310)"));
        } else {
            panic!("{msg}");
        }
    }
}

/// How many victims a race test creates: `CAPSA_IT_RACE_ITERATIONS` (default 30; the
/// long run by hand uses a few thousand).
fn race_iterations() -> usize {
    std::env::var("CAPSA_IT_RACE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

/// The racer is a process exec'd into a second container that shares the volume: a
/// busybox loop that renames `/vol/a` away, puts a symlink to `/` in its place, and
/// puts the directory back. (Not atomic, so `a` is also briefly missing.)
#[test]
fn mount_destination_swapped_by_a_racing_container() {
    let ctx = Ctx::new();
    let vol = HostDir::new("30465-vol");
    let target = HostDir::new("30465-racetarget");
    fs::create_dir(vol.path().join("a")).expect("vol/a");
    let (racer, mut rb) = ctx.id_and_bundle("x30465-racer");
    rb.args(&["sleep", "100000"]);
    rb.bind_mount(vol.path(), "/vol");
    ctx.create_and_start(&rb, &racer);
    ctx.cmd(&[
        "exec",
        "--detach",
        &racer,
        "sh",
        "-c",
        "cd /vol; touch running; \
         while [ ! -e stop ]; do mv a a.d; ln -s / a; rm a; mv a.d a; done 2>/dev/null",
    ])
    .assert_success();
    wait_for_file(&vol.path().join("running"), WAIT);

    let escape = race_victims(
        &ctx,
        vol.path(),
        target.path(),
        race_iterations(),
        "container racer",
    );

    fs::write(vol.path().join("stop"), "").expect("stop the racer");
    std::thread::sleep(Duration::from_millis(200));
    ctx.delete_force(&racer).assert_success();
    ctx.assert_nothing_left(&racer, &rb);
    judge_race(escape);
}

/// The strongest racer: a host thread exchanging `/vol/a` (a directory) and `/vol/l` (a
/// symlink to `/`) atomically with renameat2(RENAME_EXCHANGE), as the original exploit
/// did from inside a container, so `a` is never missing.
#[test]
fn mount_destination_swapped_by_rename_exchange() {
    let ctx = Ctx::new();
    let vol = HostDir::new("30465-xvol");
    let target = HostDir::new("30465-xtarget");
    let a = vol.path().join("a");
    let l = vol.path().join("l");
    fs::create_dir(&a).expect("vol/a");
    symlink("/", &l).expect("vol/l -> /");
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let racer = {
        let (stop, swaps, a, l) = (stop.clone(), swaps.clone(), a.clone(), l.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if renameat2(AT_FDCWD, &a, AT_FDCWD, &l, RenameFlags::RENAME_EXCHANGE).is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // Keep the racer stopped whatever happens below.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let guard = StopOnDrop(stop.clone());

    let escape = race_victims(
        &ctx,
        vol.path(),
        target.path(),
        race_iterations(),
        "RENAME_EXCHANGE racer",
    );

    drop(guard);
    racer.join().expect("racer thread");
    eprintln!("{} swaps", swaps.load(Ordering::Relaxed));
    assert!(swaps.load(Ordering::Relaxed) > 0, "the racer never swapped");
    judge_race(escape);
}

/// Not an attack but the price of the defence: openat2(RESOLVE_IN_ROOT) fails with
/// EAGAIN when any rename happens anywhere on the system while it resolves a `..`
/// (the kernel's global rename seqlock; openat2(2) says the caller may retry). A
/// rootfs whose destinations go through `..` symlinks then fails `create` at random on
/// a busy host. A host thread renames a file in an unrelated directory in a loop while
/// containers with such destinations are created: every `create` should succeed.
#[test]
fn dotdot_destinations_survive_unrelated_renames() {
    let ctx = Ctx::new();
    let busy = HostDir::new("30465-busy");
    let (x, y) = (busy.path().join("x"), busy.path().join("y"));
    fs::write(&x, "").expect("x");
    let stop = Arc::new(AtomicBool::new(false));
    let renamer = {
        let (stop, x, y) = (stop.clone(), x.clone(), y.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = fs::rename(&x, &y);
                let _ = fs::rename(&y, &x);
            }
        })
    };
    let mut eagain = Vec::new();
    let runs = 20;
    for _ in 0..runs {
        let (id, mut b) = ctx.id_and_bundle("x30465-dotdot");
        symlink("../../../../../../../../../..", b.rootfs().join("up")).expect("up -> ../..");
        push_mount(
            &mut b,
            json!({ "destination": "/up/tmp/dotdot", "type": "tmpfs", "source": "tmpfs" }),
        );
        let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
        if !out.success() {
            assert_clean_failure(&out);
            eagain.push(out.stderr.trim().to_string());
        }
        ctx.assert_nothing_left(&id, &b);
    }
    stop.store(true, Ordering::Relaxed);
    renamer.join().expect("renamer thread");
    if !eagain.is_empty() {
        let msg = format!(
            "{} of {runs} creates failed while an unrelated rename loop ran (openat2 \
             RESOLVE_IN_ROOT returns EAGAIN then; the runtime must retry). First error: {}",
            eagain.len(),
            eagain[0]
        );
        panic!("{msg}");
    }
}
