//! Racing creates of one id, and the default state root.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use capsa_integration_test::{
    loud, path_str, pid_alive, read_pid_file, runc_deviates, runtime, CmdOutput, Ctx,
};
use serde_json::Value;

use crate::raw;

/// What is wrong with the outcome of racing creates (empty when all is well): exactly
/// one silent winner whose container is intact in state `created`; every loser fails with
/// one error line mentioning "exists" and writes no pid file.
fn race_problems(ctx: &Ctx, id: &str, results: &[(CmdOutput, PathBuf)]) -> Vec<String> {
    let mut problems = Vec::new();
    let winners: Vec<&(CmdOutput, PathBuf)> = results.iter().filter(|(o, _)| o.success()).collect();
    if winners.len() != 1 {
        problems.push(format!("{} creates succeeded, not 1", winners.len()));
    }
    for (out, pid_file) in results {
        if out.success() {
            if !out.stdout.is_empty() || !out.stderr.is_empty() {
                problems.push(format!("the winner was not silent: {out}"));
            }
            continue;
        }
        // runc: "runc create failed: container with given ID already exists";
        // capsa: "container <id> already exists".
        let err = out.stderr.trim();
        if out.code().is_none()
            || !out.stdout.is_empty()
            || err.lines().count() != 1
            || !err.contains("exists")
        {
            problems.push(format!(
                "a loser did not fail with one line mentioning \"exists\": {out}"
            ));
        }
        if pid_file.exists() {
            problems.push(format!("a loser wrote its pid file: {out}"));
        }
    }
    if let [(_, pid_file)] = winners[..] {
        let pid = read_pid_file(pid_file);
        if !pid_alive(pid) {
            problems.push(format!("the winner's init {pid} is gone"));
        }
        let out = ctx.cmd(&["state", id]);
        match serde_json::from_str::<Value>(&out.stdout) {
            Ok(st) if out.success() && out.stderr.is_empty() => {
                if st["status"] != "created" || st["pid"] != u64::from(pid) {
                    problems.push(format!(
                        "the winner's state is not `created` with pid {pid}: {st}"
                    ));
                }
            }
            _ => problems.push(format!("state of the winner failed: {out}")),
        }
    }
    problems
}

#[test]
fn racing_creates_of_one_id() {
    const RACERS: usize = 8;
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("race");
    let root = path_str(ctx.root()).to_string();
    let barrier = Arc::new(Barrier::new(RACERS));
    let threads: Vec<_> = (0..RACERS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let root = root.clone();
            let id = id.clone();
            let bundle = b.path_str().to_string();
            let pid_file = ctx.base().join(format!("init-{i}.pid"));
            std::thread::spawn(move || {
                barrier.wait();
                let out = raw(
                    &[
                        "--root",
                        &root,
                        "create",
                        "--bundle",
                        &bundle,
                        "--pid-file",
                        path_str(&pid_file),
                        &id,
                    ],
                    None,
                );
                (out, pid_file)
            })
        })
        .collect();
    let results: Vec<(CmdOutput, PathBuf)> = threads
        .into_iter()
        .map(|t| t.join().expect("racer thread"))
        .collect();

    let problems = race_problems(&ctx, &id, &results);
    if !problems.is_empty() {
        let report: Vec<String> = results.iter().map(|(o, _)| o.to_string()).collect();
        let detail = format!(
            "racing creates of one id:\n  - {}\nall outputs:\n{}",
            problems.join("\n  - "),
            report.join("\n")
        );
        if runc_deviates(
            "racing creates of one id: runc 1.1.5 checks for an existing id without a lock, \
             so a loser can pass the check, collide on exec.fifo, print several lines and \
             tear down the winner's cgroup or state",
        ) {
            loud(&format!("runc's race outcome this time: {detail}"));
            let _ = ctx.delete_force(&id);
            return; // Ctx's drop reaps the cgroup
        }
        panic!("{detail}");
    }
    let pid = results
        .iter()
        .find(|(o, _)| o.success())
        .map(|(_, pf)| read_pid_file(pf))
        .expect("one winner");
    ctx.start(&id).assert_silent_success();
    ctx.wait_for_status(&id, "running");

    ctx.delete_force(&id).assert_silent_success();
    assert!(!pid_alive(pid), "init {pid} survived delete --force");
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn default_root_state_of_an_unknown_id() {
    let rt = runtime();
    // capsa: /run/capsa; runc: /run/runc (both as real root).
    let default_root = PathBuf::from(format!("/run/{}", rt.name()));
    let ctx = Ctx::new();
    let id = ctx.new_id("defroot");
    let existed = default_root.exists();
    let out = raw(&["state", &id], None);
    out.assert_error_mentions("does not exist");
    assert!(
        !default_root.join(&id).exists(),
        "state of an unknown id created {}",
        default_root.join(&id).display()
    );
    if default_root.exists() {
        let meta = fs::symlink_metadata(&default_root).expect("stat default root");
        assert!(
            meta.is_dir(),
            "{} is not a directory",
            default_root.display()
        );
        if !existed {
            assert_eq!(
                fs::read_dir(&default_root)
                    .expect("read default root")
                    .count(),
                0,
                "state created entries in the new default root {}",
                default_root.display()
            );
        }
    }
    // Nothing under this test's own root either.
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
    // And --root still defaults there for delete --force of an unknown id (exit 0).
    let out = raw(&["delete", "--force", &id], None);
    out.assert_silent_success();
    assert!(!default_root.join(&id).exists());
}
