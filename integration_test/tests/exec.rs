//! `exec`: a process in a running container, as runc users, containerd (`--process FILE
//! --detach --pid-file`), conmon and CRI-O (foreground, exit status = the process's)
//! drive it. Every test passes against runc 1.1.5 (the oracle) except for assertions
//! guarded by `runc_deviates` or `capsa_only`.
//!
//! The tests live in `integration_test/exec/`, one file per concern; this file is the
//! cargo entry point and holds what they share.

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use capsa_integration_test::{cgroup_dirs, state_pid, Bundle, CmdOutput, Ctx};

const WAIT: Duration = Duration::from_secs(10);

/// CAP_NET_ADMIN's bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

#[path = "../exec/failures.rs"]
mod failures;
#[path = "../exec/fds.rs"]
mod fds;
#[path = "../exec/placement.rs"]
mod placement;
#[path = "../exec/process.rs"]
mod process;

/// A running `sleep 1000` container: its id, bundle and init pid.
fn running(ctx: &Ctx, prefix: &str) -> (String, Bundle, u32) {
    let (id, b) = ctx.sleeper(prefix);
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));
    (id, b, pid)
}

/// `exec <id> <args...>` in the foreground.
fn exec(ctx: &Ctx, id: &str, args: &[&str]) -> CmdOutput {
    exec_with(ctx, &[], id, args)
}

/// `exec <flags...> <id> <args...>` in the foreground.
fn exec_with(ctx: &Ctx, flags: &[&str], id: &str, args: &[&str]) -> CmdOutput {
    let mut full = vec!["exec"];
    full.extend_from_slice(flags);
    full.push(id);
    full.extend_from_slice(args);
    ctx.cmd(&full)
}

/// `exec <flags...> <id> sh -c <script>` in the foreground.
fn exec_sh(ctx: &Ctx, id: &str, flags: &[&str], script: &str) -> CmdOutput {
    exec_with(ctx, flags, id, &["sh", "-c", script])
}

/// A foreground exec that must succeed with nothing on stderr; returns its stdout.
fn exec_ok(ctx: &Ctx, id: &str, flags: &[&str], script: &str) -> String {
    let out = exec_sh(ctx, id, flags, script);
    out.assert_success();
    assert!(out.stderr.is_empty(), "exec wrote to stderr:\n{out}");
    out.stdout
}

/// The value of `key=` on a line of `text` (`None` when absent).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
}

/// The pids in the container's cgroup, over every hierarchy.
fn cgroup_procs(b: &Bundle) -> BTreeSet<u32> {
    cgroup_dirs(b.cgroup_path())
        .into_iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Waits until the container's cgroup holds only its init (a finished or failed exec
/// leaves nothing running).
fn assert_only_init_runs(b: &Bundle, init: u32) {
    let want = BTreeSet::from([init]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = cgroup_procs(b);
    while now != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        now = cgroup_procs(b);
    }
    assert_eq!(
        now, want,
        "the container's cgroup should hold only the init {init}"
    );
}

/// One capability bit of a `Cap*:` line of /proc/<pid>/status text.
fn cap_bit(status: &str, set: &str, bit: u32) -> bool {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{set}:")))
        .unwrap_or_else(|| panic!("no {set} line in:\n{status}"))
        .trim();
    let mask = u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{set} {hex:?}: {e}"));
    mask & (1 << bit) != 0
}

/// The end of a test whose container must still run its init alone: nothing exec'd is
/// left, the status is `running`; then [`Ctx::finish`].
fn finish_running(ctx: &Ctx, id: &str, b: &Bundle, init: u32) {
    assert_only_init_runs(b, init);
    assert_eq!(ctx.status(id), "running");
    ctx.finish(id, b);
}
