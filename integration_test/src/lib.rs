//! Integration test harness: drives the real runtime binary as root against real
//! bundles.
//!
//! * [`runtime()`] — the binary selected by `CAPSA_RUNTIME` (a path or a command name;
//!   default: the workspace's `target/debug/capsa`, `target/release/capsa` with
//!   `CAPSA_PROFILE=release`). runc is the oracle: the suite passes against it, except
//!   for assertions guarded by [`capsa_only`] or [`runc_deviates`].
//! * [`Ctx`] — one test's private `--root`, unique container ids, runtime calls, and a
//!   `delete --force` of every id it handed out when the test ends (pass or fail).
//! * [`Bundle`] — a busybox rootfs plus an editable `config.json`.
//! * [`assert_nothing_left`] — no state dir, cgroup, mount or process remains.
//! * [`ConsoleSocket`], [`PtyReader`] — receive a pty master over `--console-socket`
//!   and talk to it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod bundle;
pub mod fs_fixtures;
mod leftovers;
mod runtime;
pub mod seccomp_agent;
pub mod security;
mod terminal;

pub use bundle::{Bundle, Hook, BUSYBOX, CONTAINER_PATH, HOOK_KINDS, MARKER_VAR};
pub use leftovers::{
    all_pids, assert_nothing_left, cgroup_dirs, cgroup_mounts, host_cgroup_dir, host_cgroup_read,
    mountinfo, mountinfo_of, pid_alive, proc_cgroups, proc_state, stragglers, CgroupLine,
    MountInfo, Straggler,
};
pub use runtime::{loud, run_captured, runtime, CmdOutput, Runtime, RuntimeKind, DEFAULT_TIMEOUT};
pub use terminal::{ConsoleSocket, PtyReader, ReceivedMaster};

/// Panics with "integration tests must run as root" unless the effective uid is 0.
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    if euid != "0" {
        panic!(
            "integration tests must run as root (effective uid is {euid}); run e.g. \
             `sudo -E cargo test -p capsa-integration-test`"
        );
    }
}

/// Guards an assertion where runc 1.1.5 is known to differ from the runtime spec.
///
/// Returns `true` (and prints a loud notice naming `what`) when the runtime under
/// test is runc, so the caller skips exactly that one assertion:
/// `if !runc_deviates("...") { assert!(...) }`.
pub fn runc_deviates(what: &str) -> bool {
    let rt = runtime();
    if rt.is_runc() {
        loud(&format!(
            "SKIPPED for runc (runc 1.1.5 deviates from the runtime spec here): {what}"
        ));
        true
    } else {
        false
    }
}

/// Guards an assertion about capsa's own behaviour (e.g. its error wording).
///
/// Returns `true` when the runtime under test is capsa; otherwise prints a loud
/// notice naming `what` and returns `false`.
pub fn capsa_only(what: &str) -> bool {
    let rt = runtime();
    if *rt.kind() == RuntimeKind::Capsa {
        true
    } else {
        loud(&format!(
            "SKIPPED for {} (capsa-specific assertion): {what}",
            rt.name()
        ));
        false
    }
}

/// Polls `cond` every 20 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a file to appear (e.g. one the container writes into a bind mount).
pub fn wait_for_file(path: &Path, timeout: Duration) {
    wait_until(&format!("{} to exist", path.display()), timeout, || {
        path.exists()
    });
}

/// The target of `/proc/<pid>/ns/<ns>` (e.g. `pid:[4026531836]`).
pub fn ns_of(pid: &str, ns: &str) -> String {
    let p = format!("/proc/{pid}/ns/{ns}");
    fs::read_link(&p)
        .unwrap_or_else(|e| panic!("readlink {p}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// One test's private state root, runtime and container ids.
///
/// Dropping it runs `delete --force` for every id from [`Ctx::new_id`], so a failing
/// test does not leave containers running for the others.
pub struct Ctx {
    rt: &'static Runtime,
    dir: tempfile::TempDir,
    root: PathBuf,
    ids: Mutex<Vec<String>>,
}

impl Default for Ctx {
    fn default() -> Self {
        Self::new()
    }
}

impl Ctx {
    /// Requires root and the runtime; makes `<tmp>/root` (the `--root`) inside a
    /// fresh temp dir, so `<root>/..` is a directory of this test alone.
    pub fn new() -> Ctx {
        let rt = runtime();
        let dir = tempfile::Builder::new()
            .prefix("capsa-it-state-")
            .tempdir()
            .expect("create state temp dir");
        let base = fs::canonicalize(dir.path()).expect("canonicalize state dir");
        let root = base.join("root");
        fs::create_dir(&root).expect("create state root");
        Ctx {
            rt,
            dir,
            root,
            ids: Mutex::new(Vec::new()),
        }
    }

    pub fn rt(&self) -> &'static Runtime {
        self.rt
    }

    /// The `--root` passed to every call.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The parent of [`Ctx::root`], private to this test.
    pub fn base(&self) -> &Path {
        self.root.parent().unwrap_or(self.dir.path())
    }

    /// A container id unique across threads and test binaries: `<prefix>-<pid>-<n>`.
    pub fn new_id(&self, prefix: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.ids.lock().expect("ids lock").push(id.clone());
        id
    }

    /// A fresh id and a bundle for it whose process is `sleep 1000`.
    pub fn sleeper(&self, prefix: &str) -> (String, Bundle) {
        let (id, mut b) = self.id_and_bundle(prefix);
        b.args(&["sleep", "1000"]);
        (id, b)
    }

    /// A fresh id and a bundle for it.
    pub fn id_and_bundle(&self, prefix: &str) -> (String, Bundle) {
        let id = self.new_id(prefix);
        let b = Bundle::new(&id);
        (id, b)
    }

    /// `<runtime> --root <root> <args...>`.
    pub fn cmd(&self, args: &[&str]) -> CmdOutput {
        self.rt.cmd(&self.root, args)
    }

    pub fn create(&self, bundle: &Bundle, id: &str) -> CmdOutput {
        self.cmd(&["create", "--bundle", bundle.path_str(), id])
    }

    pub fn create_with_pid_file(&self, bundle: &Bundle, id: &str, pid_file: &Path) -> CmdOutput {
        let pf = pid_file.to_str().expect("pid file path is UTF-8");
        self.cmd(&[
            "create",
            "--bundle",
            bundle.path_str(),
            "--pid-file",
            pf,
            id,
        ])
    }

    pub fn start(&self, id: &str) -> CmdOutput {
        self.cmd(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: &str) -> CmdOutput {
        self.cmd(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> CmdOutput {
        self.cmd(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> CmdOutput {
        self.cmd(&["delete", "--force", id])
    }

    /// `create` then `start`, both asserted silent successes.
    pub fn create_and_start(&self, bundle: &Bundle, id: &str) {
        self.create(bundle, id).assert_silent_success();
        self.start(id).assert_silent_success();
    }

    /// `state <id>`: asserts exit 0, nothing on stderr, and a JSON object on stdout.
    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        out.assert_success();
        assert!(out.stderr.is_empty(), "state wrote to stderr:\n{out}");
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{out}"));
        assert!(v.is_object(), "state output is not a JSON object:\n{out}");
        v
    }

    /// The `status` field of `state <id>`.
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_else(|| panic!("state of {id} has no string status"))
            .to_string()
    }

    /// Polls `state` until the status is `want` (10 s at most).
    pub fn wait_for_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let last = loop {
            let now = self.status(id);
            if now == want || Instant::now() >= deadline {
                break now;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(last, want, "container {id} never reached status {want:?}");
    }

    /// [`assert_nothing_left`] for a container of this context, with the bundle's
    /// cgroup path.
    pub fn assert_nothing_left(&self, id: &str, bundle: &Bundle) {
        assert_nothing_left(&self.root, id, bundle.cgroup_path(), bundle);
    }

    /// The end of a test: `delete --force` prints nothing and succeeds, then
    /// nothing of the container may remain ([`Ctx::assert_nothing_left`]).
    pub fn finish(&self, id: &str, bundle: &Bundle) {
        self.delete_force(id).assert_silent_success();
        self.assert_nothing_left(id, bundle);
    }
}

impl Drop for Ctx {
    /// Best-effort cleanup so one failing test does not disturb the others: runs
    /// `delete --force` for each id, then kills whatever is still in the id's default
    /// cgroup `/capsa-test/<id>` and removes it. Assertions happened before this.
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            if self.root.join(&id).exists() {
                let _ = self.rt.try_cmd(
                    &self.root,
                    &["delete", "--force", &id],
                    Duration::from_secs(20),
                );
            }
            reap_cgroup(&format!("/capsa-test/{id}"));
        }
    }
}

/// Kills every process in cgroup `path` (all hierarchies) and removes its directories.
fn reap_cgroup(path: &str) {
    let dirs: Vec<PathBuf> = cgroup_dirs(path)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    if dirs.is_empty() {
        return;
    }
    loud(&format!(
        "cleanup: cgroup {path} survived the test; killing its processes and removing it"
    ));
    let mut all = Vec::new();
    for d in &dirs {
        collect_dirs_depth_first(d, &mut all);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids: BTreeSet<String> = all
            .iter()
            .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(std::process::Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(50));
    }
    for d in &all {
        let _ = fs::remove_dir(d);
    }
}

fn collect_dirs_depth_first(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs_depth_first(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// Reads a pid file and checks its format: the decimal pid, no newline, nothing else.
pub fn read_pid_file(path: &Path) -> u32 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read pid file {}: {e}", path.display()));
    let text = String::from_utf8(bytes.clone())
        .unwrap_or_else(|_| panic!("pid file is not UTF-8: {bytes:?}"));
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "pid file must hold only the decimal pid (no newline), got {text:?}"
    );
    text.parse()
        .unwrap_or_else(|e| panic!("pid file {text:?}: {e}"))
}

/// A path as `&str`, for a command line (panics if it is not UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("path is UTF-8")
}

/// The `pid` field of a state object as u32 (panics if absent or not a number).
pub fn state_pid(state: &Value) -> u32 {
    let pid = state["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("state has no numeric pid: {state}"));
    u32::try_from(pid).unwrap_or_else(|_| panic!("pid out of range: {state}"))
}
