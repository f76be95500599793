//! CVE-2024-21626 ("Leaky Vessels"): a host fd leaks into the container.
//!
//! runc up to 1.1.11 kept an fd of the host's `/sys/fs/cgroup` open while the init ran
//! the user's setup; with `process.cwd` set to `/proc/self/fd/7` the init `chdir`ed
//! through that magic link and the container process started with a working directory
//! on the host (`../../../../` then reaches the host's `/`). The same with `exec
//! --cwd`. A runtime without the defence either leaks such an fd into the container's
//! program (it shows in `/proc/self/fd`) or lets `chdir` follow it.
//!
//! capsa's defence: every fd past stdio is close-on-exec, the working directory is set
//! after the root is entered, and `exec` enters the root with fchdir + chroot. The
//! tests list the fds of the container's programs (inside and from the host), and try
//! `process.cwd` / `exec --cwd` of `/proc/self/fd/N` for N = 3..=12 (and the
//! `N/../../..` variant): each must fail cleanly or land inside the rootfs, judged by
//! `readlink /proc/<pid>/cwd` on the host.

use std::fs;
use std::path::{Path, PathBuf};

use capsa_integration_test::security::fds_of;
use capsa_integration_test::{read_pid_file, runtime, state_pid, Bundle, CmdOutput, Ctx};
use serde_json::json;

use super::{assert_clean_failure, WAIT};

/// What a leaked fd must never point to: the state root, the bundle (other than the
/// rootfs, which is the container's own), the runtime binary.
fn forbidden_targets(ctx: &Ctx, b: &Bundle) -> Vec<PathBuf> {
    vec![
        ctx.base().to_path_buf(),
        b.config_path(),
        runtime().path().to_path_buf(),
    ]
}

fn is_host_leak(target: &str, ctx: &Ctx, b: &Bundle) -> bool {
    let t = Path::new(target.trim_end_matches(" (deleted)"));
    forbidden_targets(ctx, b).iter().any(|f| t.starts_with(f))
        || target == b.path().display().to_string()
        || target.contains("memfd:capsa")
        || target.starts_with("/sys/fs/cgroup")
}

/// Panics unless the process `pid` has only fds 0..=2 and none of them points to a
/// host path of the runtime's; `fds` is its fd table as the host sees it.
fn assert_no_leaked_fds(what: &str, fds: &[(u32, String)], ctx: &Ctx, b: &Bundle) {
    let extra: Vec<_> = fds.iter().filter(|(n, _)| *n > 2).collect();
    assert!(
        extra.is_empty(),
        "{what}: fds past stdio reached the container's program: {extra:?} (all: {fds:?})"
    );
    let leaks: Vec<_> = fds
        .iter()
        .filter(|(_, t)| is_host_leak(t, ctx, b))
        .collect();
    assert!(
        leaks.is_empty(),
        "{what}: fds point to the runtime's host files: {leaks:?}"
    );
}

/// Parses the `N -> target` lines of `ls -l /proc/<pid>/fd` printed by [`LIST_FDS`].
fn parse_fd_lines(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            let n = left.split_whitespace().last()?.parse().ok()?;
            Some((n, target.trim().to_string()))
        })
        .collect()
}

/// Lists the shell's fds with `ls -l /proc/$$/fd` (run by a child, so that the shell's
/// own command-substitution pipes are not there yet), then its working directory.
const LIST_FDS: &str = r#"ls -l /proc/$$/fd; echo cwd=$(pwd)"#;

/// The container's program and an exec'd process: no fd besides stdio, nothing that
/// points into the state dir, the bundle or the runtime binary; seen from inside the
/// container and from the host (where paths are host paths). Also records, as a note,
/// what the created init holds before it execs (it is the runtime's own process then).
#[test]
fn no_host_fd_reaches_the_container_or_an_exec() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("x21626-fds");
    // No redirection in the shell (ash would park the old fd 1 on fd 10): the output
    // goes to the init's stdout, a file the host reads back through /proc.
    b.sh(&format!("{LIST_FDS}; exec sleep 100000"));
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let init = read_pid_file(&pid_file);
    eprintln!(
        "the created init (runtime code, before exec) holds: {:?}",
        fds_of(init)
    );
    ctx.start(&id).assert_silent_success();
    capsa_integration_test::wait_until("the init to exec sleep", WAIT, || {
        capsa_integration_test::security::cmdline_of(init).first() == Some(&"sleep".to_string())
    });

    // Inside: the shell's fds, as it printed them.
    let inside = fs::read_to_string(format!("/proc/{init}/fd/1")).expect("the init's stdout");
    let inside_fds = parse_fd_lines(&inside);
    eprintln!("inside the container:\n{inside}");
    let inside_extra: Vec<_> = inside_fds.iter().filter(|(n, _)| *n > 2).collect();
    assert!(
        inside_extra.is_empty(),
        "the container's shell sees fds past stdio: {inside_extra:?}"
    );
    assert_eq!(
        super::field(&inside, "cwd"),
        Some("/"),
        "the container's working directory"
    );
    // From the host: the running `sleep`.
    let host_view = fds_of(init);
    eprintln!("the init from the host: {host_view:?}");
    assert_no_leaked_fds("the container's program", &host_view, &ctx, &b);
    assert_cwd_inside(init, &b);

    // An exec'd process, in the foreground (its output) and detached (host view).
    let fg = ctx.cmd(&["exec", &id, "sh", "-c", LIST_FDS]);
    fg.assert_success();
    eprintln!("exec in the foreground:\n{}", fg.stdout);
    let fg_fds = parse_fd_lines(&fg.stdout);
    assert!(
        fg_fds.iter().all(|(n, _)| *n <= 2),
        "an exec'd process sees fds past stdio: {fg_fds:?}"
    );
    assert_eq!(super::field(&fg.stdout, "cwd"), Some("/"));
    let exec_pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        exec_pid_file.to_str().expect("utf-8"),
        &id,
        "sleep",
        "100000",
    ])
    .assert_success();
    let exec_pid = read_pid_file(&exec_pid_file);
    capsa_integration_test::wait_until("the exec'd process to exec sleep", WAIT, || {
        capsa_integration_test::security::cmdline_of(exec_pid).first() == Some(&"sleep".to_string())
    });
    let exec_view = fds_of(exec_pid);
    eprintln!("the exec'd process from the host: {exec_view:?}");
    assert_no_leaked_fds("an exec'd process", &exec_view, &ctx, &b);
    assert_cwd_inside(exec_pid, &b);

    ctx.delete_force(&id).assert_success();
    ctx.assert_nothing_left(&id, &b);
}

/// `readlink /proc/<pid>/cwd` from the host must lie inside the rootfs. A process in
/// another mount namespace shows its cwd relative to its own root when the host cannot
/// reach it; a cwd on the host shows as a host path outside the rootfs.
fn assert_cwd_inside(pid: u32, b: &Bundle) {
    let cwd = fs::read_link(format!("/proc/{pid}/cwd"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/cwd: {e}"));
    let root = fs::read_link(format!("/proc/{pid}/root"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/root: {e}"));
    let rootfs = b.rootfs();
    // The root reads as `/` from the host (a pivoted mount namespace) or as the rootfs
    // path (a chroot in the host's namespace); the cwd must be under it.
    let inside = if root == Path::new("/") {
        // Then the cwd must not be a host path: the container's paths are relative
        // to its own root, which the host cannot name. A cwd the host can resolve
        // to a directory other than the rootfs's is on the host.
        !cwd_is_host_dir(pid, &cwd, &rootfs)
    } else {
        cwd.starts_with(&root) && root.starts_with(&rootfs)
    };
    assert!(
        inside,
        "ESCAPE: process {pid} has its working directory on the host: cwd -> {}, root -> {}",
        cwd.display(),
        root.display()
    );
}

/// True when `/proc/<pid>/cwd` is the same directory as the host path its readlink
/// names, and that path is not inside the rootfs: the process sits in a host directory.
fn cwd_is_host_dir(pid: u32, cwd: &Path, rootfs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if cwd.starts_with(rootfs) {
        return false;
    }
    let via_proc = fs::metadata(format!("/proc/{pid}/cwd")).ok();
    let via_path = fs::metadata(cwd).ok();
    match (via_proc, via_path) {
        (Some(a), Some(p)) => a.dev() == p.dev() && a.ino() == p.ino(),
        _ => false,
    }
}

/// What became of one cwd attempt.
fn judge_cwd(what: &str, out: &CmdOutput) -> bool {
    if out.success() {
        true
    } else {
        assert_clean_failure(out);
        eprintln!("{what}: refused: {}", out.stderr.trim());
        false
    }
}

fn cwd_candidates() -> Vec<String> {
    let mut v: Vec<String> = (3..=12).map(|n| format!("/proc/self/fd/{n}")).collect();
    v.extend((3..=9).map(|n| format!("/proc/self/fd/{n}/../../..")));
    v
}

/// `process.cwd = /proc/self/fd/N`: `create`/`start` fail cleanly, or the process runs
/// with its cwd inside the rootfs. Against runc 1.1.11, N = 7 put the process in the
/// host's /sys/fs/cgroup.
#[test]
fn config_cwd_through_proc_self_fd_never_lands_on_the_host() {
    let ctx = Ctx::new();
    let mut ran = Vec::new();
    for cwd in cwd_candidates() {
        let (id, mut b) = ctx.id_and_bundle("x21626-cwd");
        b.args(&["sleep", "100000"]);
        b.edit(|c| c["process"]["cwd"] = json!(cwd));
        let what = format!("process.cwd {cwd}");
        let created = ctx.create(&b, &id);
        if !judge_cwd(&what, &created) {
            ctx.assert_nothing_left(&id, &b);
            continue;
        }
        let init = state_pid(&ctx.state(&id));
        let started = ctx.start(&id);
        if judge_cwd(&format!("{what} (start)"), &started) {
            assert_cwd_inside(init, &b);
            ran.push(cwd.clone());
        }
        ctx.delete_force(&id).assert_success();
        ctx.assert_nothing_left(&id, &b);
    }
    eprintln!("cwd values that ran (inside the rootfs): {ran:?}");
}

/// `exec --cwd /proc/self/fd/N` into a running container: the same.
#[test]
fn exec_cwd_through_proc_self_fd_never_lands_on_the_host() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("x21626-execcwd");
    b.args(&["sleep", "100000"]);
    ctx.create_and_start(&b, &id);
    let mut ran = Vec::new();
    for (i, cwd) in cwd_candidates().into_iter().enumerate() {
        let pid_file = ctx.base().join(format!("exec-{i}.pid"));
        let out = ctx.cmd(&[
            "exec",
            "--detach",
            "--cwd",
            &cwd,
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
            "sleep",
            "100000",
        ]);
        if judge_cwd(&format!("exec --cwd {cwd}"), &out) {
            let pid = read_pid_file(&pid_file);
            assert_cwd_inside(pid, &b);
            ran.push(cwd);
        }
    }
    eprintln!("exec --cwd values that ran (inside the rootfs): {ran:?}");
    ctx.delete_force(&id).assert_success();
    ctx.assert_nothing_left(&id, &b);
}
