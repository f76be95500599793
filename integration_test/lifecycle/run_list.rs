//! `run` (foreground and `--detach`) and `list`.

use std::time::{Duration, Instant};

use capsa_integration_test::{pid_alive, read_pid_file, state_pid, Ctx};
use serde_json::Value;

use crate::{assert_state, WAIT};

/// `state` of a container that may not exist yet: `None` until it does.
fn try_status(ctx: &Ctx, id: &str) -> Option<String> {
    let out = ctx.cmd(&["state", id]);
    if !out.success() {
        return None;
    }
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    v["status"].as_str().map(str::to_string)
}

#[test]
fn run_exits_with_the_container_exit_code() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("runexit");
    b.sh("exit 7");
    let out = ctx.cmd(&["run", "--bundle", b.path_str(), &id]);
    assert_eq!(
        out.code(),
        Some(7),
        "run must exit with the container's code:\n{out}"
    );
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn run_killed_from_outside_exits_128_plus_signal() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("runkill");
    b.args(&["sleep", "1000"]);
    let out = std::thread::scope(|s| {
        let run = s.spawn(|| ctx.cmd(&["run", "--bundle", b.path_str(), &id]));
        let deadline = Instant::now() + WAIT;
        while try_status(&ctx, &id).as_deref() != Some("running") {
            assert!(
                Instant::now() < deadline && !run.is_finished(),
                "container never became running under `run`"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ctx.kill(&id, "KILL").assert_silent_success();
        run.join().expect("run thread")
    });
    assert_eq!(out.code(), Some(128 + 9), "run killed by SIGKILL:\n{out}");
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn run_detach_returns_while_the_container_runs() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("rundetach");
    b.args(&["sleep", "1000"]);
    let pid_file = ctx.base().join("init.pid");
    let pf = pid_file.to_str().expect("utf-8");
    ctx.cmd(&[
        "run",
        "--detach",
        "--bundle",
        b.path_str(),
        "--pid-file",
        pf,
        &id,
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    let st = ctx.state(&id);
    assert_state(&st, &id, &b, "running");
    assert_eq!(state_pid(&st), pid);
    assert!(pid_alive(pid));
    ctx.kill(&id, "KILL").assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn list_shows_the_container_as_table_and_json() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("list");
    b.args(&["sleep", "1000"]);
    ctx.create(&b, &id).assert_silent_success();
    let pid = state_pid(&ctx.state(&id));

    let out = ctx.cmd(&["list"]);
    out.assert_success();
    assert!(out.stderr.is_empty(), "list wrote to stderr:\n{out}");
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header.get(..4),
        Some(["ID", "PID", "STATUS", "BUNDLE"].as_slice()),
        "list header:\n{out}"
    );
    let row: Vec<&str> = lines
        .find(|l| l.split_whitespace().next() == Some(id.as_str()))
        .unwrap_or_else(|| panic!("no row for {id} in list:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(1..4),
        Some([pid.to_string().as_str(), "created", b.path_str()].as_slice())
    );

    for args in [
        &["list", "--format", "json"][..],
        &["list", "--format=json"][..],
    ] {
        let out = ctx.cmd(args);
        out.assert_success();
        assert!(out.stderr.is_empty(), "list wrote to stderr:\n{out}");
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("list json is not JSON ({e}):\n{out}"));
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array:\n{out}"));
        let entry = arr
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} missing from list json:\n{out}"));
        assert_state(entry, &id, &b, "created");
        assert_eq!(state_pid(entry), pid);
    }

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
