//! `kill -9` of capsa at every phase of create, start, exec and delete.
//!
//! The soak builds its own capsa with the cargo feature `fault-injection` into
//! `<target>/fault-injection` (see `crates/capsa-linux/src/lifecycle/fault.rs`):
//! with `CAPSA_FAULT=<point>` it stops itself (SIGSTOP) at that named point, and the
//! test SIGKILLs it exactly there. Then:
//!
//! * `state` and `list` tell the truth: the container does not exist (a create that
//!   died before writing its state), or it has the expected status, and a `created`
//!   or `running` container's pid is a live process;
//! * `delete --force` (of the ordinary capsa) succeeds and nothing is left: no state
//!   dir, cgroup, mount, nor any process capsa had forked (its descendants are
//!   recorded before the SIGKILL) or that runs in the container.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use capsa_integration_test::{capsa_only, pid_alive, proc_state, Bundle, CmdOutput, Ctx};
use serde_json::Value;

use crate::exclusive;
use crate::measure::{self, TIMEOUT};

/// The phase a point belongs to decides how the container is prepared and which
/// command is crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Create,
    Start,
    Exec,
    Delete,
}

/// Every fault point, the phase that reaches it, and the status `state` must report
/// after the crash (`None`: the container does not exist; `a|b`: either).
///
/// A `start` killed once it opened the fifo leaves a race that is the kernel's: an
/// init that wrote its `0` before the kill execs the program (`running`), one that
/// writes after it gets SIGPIPE and dies (`stopped`), as under runc.
const POINTS: &[(&str, Phase, Option<&str>)] = &[
    ("create:after-claim", Phase::Create, None),
    ("create:before-fifo", Phase::Create, None),
    ("create:after-clone", Phase::Create, None),
    ("create:after-cgroup-join", Phase::Create, None),
    ("create:before-state", Phase::Create, None),
    ("state:before-rename", Phase::Create, None),
    ("create:after-state", Phase::Create, Some("created")),
    ("start:before-fifo-open", Phase::Start, Some("created")),
    (
        "start:after-fifo-open",
        Phase::Start,
        Some("running|stopped"),
    ),
    ("exec:after-clone", Phase::Exec, Some("running")),
    ("exec:after-forked", Phase::Exec, Some("running")),
    ("delete:after-kill", Phase::Delete, Some("stopped")),
    (
        "delete:before-cgroup-removal",
        Phase::Delete,
        Some("stopped"),
    ),
    (
        "delete:before-state-removal",
        Phase::Delete,
        Some("stopped"),
    ),
];

/// Builds (once per test binary) capsa with the feature `fault-injection`.
fn fault_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) if !t.is_empty() => workspace.join(t),
            _ => workspace.join("target"),
        }
        .join("fault-injection");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let started = Instant::now();
        let out = Command::new(&cargo)
            .current_dir(&workspace)
            .args([
                "build",
                "-q",
                "-p",
                "capsa",
                "--features",
                "fault-injection",
            ])
            .arg("--target-dir")
            .arg(&target)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cargo:?} to build the fault binary: {e}"));
        assert!(
            out.status.success(),
            "building capsa with --features fault-injection into {} failed:\n{}",
            target.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "soak: capsa with fault points built in {:.1?}",
            started.elapsed()
        );
        target.join("debug/capsa")
    })
}

/// All descendants of `pid`, from `/proc/<pid>/task/*/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let text = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in text.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// Runs `args` with the fault binary stopped at `point`, SIGKILLs it there, and
/// returns the processes it had forked.
fn crash_at(ctx: &Ctx, point: &str, args: &[&str]) -> Vec<u32> {
    let p = measure::spawn(fault_binary(), ctx.root(), args, &[("CAPSA_FAULT", point)]);
    let pid = p.pid();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match proc_state(pid) {
            Some('T') => break,
            Some(s) if s != 'Z' && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            _ => {
                let (out, _) = p.wait(TIMEOUT);
                panic!("capsa never stopped at the fault point {point}:\n{out}");
            }
        }
    }
    let forked = descendants(pid);
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let (out, _) = p.wait(TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "capsa was not killed at {point}:\n{out}"
    );
    forked
}

/// `state` must name the expected status (or say the container does not exist),
/// a created or running container's pid must be alive, and `list` must agree.
fn assert_truthful(ctx: &Ctx, id: &str, point: &str, want: Option<&str>) {
    let out = ctx.cmd(&["state", id]);
    let got = if out.success() {
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("after {point}: state is not JSON ({e}):\n{out}"));
        check_entry(&v, point);
        Some(v["status"].as_str().unwrap_or("?").to_string())
    } else {
        out.assert_error_mentions("does not exist");
        None
    };
    let allowed = |s: &str| want.is_some_and(|w| w.split('|').any(|a| a == s));
    assert!(
        got.as_deref().map_or(want.is_none(), allowed),
        "after a crash at {point}: state of {id} should be {want:?}:\n{out}"
    );
    let list = ctx.cmd(&["list", "--format", "json"]);
    list.assert_success();
    let entries: Value = serde_json::from_str(list.stdout.trim()).unwrap_or(Value::Null);
    let mine: Vec<&Value> = entries
        .as_array()
        .map(|a| a.iter().filter(|e| e["id"] == id).collect())
        .unwrap_or_default();
    match want {
        None => assert!(mine.is_empty(), "after {point}: list shows {id}:\n{list}"),
        Some(w) => {
            assert_eq!(mine.len(), 1, "after {point}: list lacks {id}:\n{list}");
            assert_eq!(
                mine[0]["status"].as_str(),
                got.as_deref(),
                "after {point}: list disagrees with state ({w}):\n{list}"
            );
            check_entry(mine[0], point);
        }
    }
}

/// A `created`, `running` or `paused` entry must name a live pid.
fn check_entry(v: &Value, point: &str) {
    let status = v["status"].as_str().unwrap_or("?");
    if status != "stopped" {
        let pid = v["pid"].as_u64().unwrap_or(0);
        let alive = u32::try_from(pid).is_ok_and(|p| p > 0 && pid_alive(p));
        assert!(
            alive,
            "after {point}: {status} but pid {pid} is not alive: {v}"
        );
    }
}

fn ok(out: CmdOutput) {
    out.assert_success();
}

/// One crash: prepare the container for the phase, crash capsa at `point`, check
/// the truth, clean up with `delete --force`, and check that nothing is left.
fn crash_case(ctx: &Ctx, point: &str, phase: Phase, want: Option<&str>) {
    let id = ctx.new_id("soak-fault");
    let mut b = Bundle::new(&id);
    b.args(&["sleep", "1000"]);
    let create = ["create", "--bundle", b.path_str(), id.as_str()];
    let forked = match phase {
        Phase::Create => crash_at(ctx, point, &create),
        Phase::Start => {
            ok(ctx.cmd(&create));
            crash_at(ctx, point, &["start", &id])
        }
        Phase::Exec => {
            ok(ctx.cmd(&create));
            ok(ctx.start(&id));
            crash_at(ctx, point, &["exec", "--detach", &id, "sleep", "999"])
        }
        Phase::Delete => {
            ok(ctx.cmd(&create));
            ok(ctx.start(&id));
            crash_at(ctx, point, &["delete", "--force", &id])
        }
    };
    // Let what the crash set off (an init dying of SIGPIPE) finish first.
    std::thread::sleep(Duration::from_millis(100));
    assert_truthful(ctx, &id, point, want);
    if point == "start:before-fifo-open" {
        // Nothing happened yet: the container can still be started.
        ctx.start(&id).assert_silent_success();
        assert_truthful(ctx, &id, point, Some("running"));
    }
    let del = ctx.delete_force(&id);
    assert!(
        del.success(),
        "after a crash at {point}: delete --force failed:\n{del}"
    );
    ctx.assert_nothing_left(&id, &b);
    let deadline = Instant::now() + Duration::from_secs(2);
    let alive = loop {
        let alive: Vec<u32> = forked.iter().copied().filter(|p| pid_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            break alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        alive.is_empty(),
        "after a crash at {point} and delete --force, processes capsa forked are alive: {alive:?}"
    );
}

#[test]
fn kill_9_at_every_phase_then_delete_force_removes_everything() {
    if !capsa_only("kill -9 at fault points needs capsa built with --features fault-injection") {
        return;
    }
    let _turn = exclusive();
    let ctx = Ctx::new();
    let only = std::env::var("CAPSA_SOAK_FAULT").ok();
    for &(point, phase, want) in POINTS {
        if only.as_deref().is_some_and(|o| o != point) {
            continue;
        }
        crash_case(&ctx, point, phase, want);
        eprintln!("soak: kill -9 at {point}: state truthful, delete --force left nothing");
    }
}
