//! Two capsa processes racing on one id, many rounds of each pair:
//!
//! * create / create: exactly one succeeds, the other says the id exists;
//! * start / delete (of a created container): exactly one wins: start then delete
//!   (refused, the container runs) or delete then start (refused, it is gone);
//! * kill / delete --force (of a running container): delete always succeeds; kill
//!   either came first (success) or finds nothing (a clear error).
//!
//! Every refusal is exactly one error line. Meanwhile a reader thread reads every
//! `state.json` and `cgroup.json` under the state root in a tight loop: each read
//! that finds a file must parse (capsa writes them to a temporary file, fsyncs and
//! renames, under the id's lock).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Instant;

use capsa_integration_test::{CmdOutput, Ctx};

use crate::measure::{self, Measured};
use crate::{exclusive, Scale};

/// Runs two capsa commands released together by a barrier.
fn race(ctx: &Ctx, a: &[&str], b: &[&str]) -> (CmdOutput, CmdOutput) {
    let barrier = Barrier::new(2);
    let run = |args: &[&str]| -> Measured {
        barrier.wait();
        measure::run(ctx.rt().path(), ctx.root(), args)
    };
    std::thread::scope(|s| {
        let ha = s.spawn(|| run(a));
        let hb = s.spawn(|| run(b));
        let ja = ha.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let jb = hb.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (ja.out, jb.out)
    })
}

/// Reads every state file under `root` until `stop`; panics on one that does not
/// parse. Returns how many reads found a file.
fn read_state_files(root: &Path, stop: &AtomicBool) -> usize {
    let mut parsed = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(dirs) = std::fs::read_dir(root) else {
            continue;
        };
        for d in dirs.flatten() {
            for name in ["state.json", "cgroup.json"] {
                let path = d.path().join(name);
                if let Ok(bytes) = std::fs::read(&path) {
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                        panic!(
                            "{} is not whole JSON ({e}): {} bytes: {:?}",
                            path.display(),
                            bytes.len(),
                            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                        );
                    }
                    parsed += 1;
                }
            }
        }
    }
    parsed
}

#[test]
fn two_capsas_racing_on_one_id_one_wins_and_state_files_stay_whole() {
    let _turn = exclusive();
    let scale = Scale::from_env();
    let ctx = Ctx::new();
    let stop = AtomicBool::new(false);
    let outcomes = [
        AtomicUsize::new(0), // start won
        AtomicUsize::new(0), // delete won
        AtomicUsize::new(0), // kill came first
        AtomicUsize::new(0), // kill found nothing
    ];
    let started = Instant::now();
    let parsed = std::thread::scope(|s| {
        let reader = s.spawn(|| read_state_files(ctx.root(), &stop));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for _ in 0..scale.race_rounds {
                create_create(&ctx);
                start_delete(&ctx, &outcomes);
                kill_delete(&ctx, &outcomes);
            }
        }));
        stop.store(true, Ordering::Relaxed);
        let parsed = reader
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        parsed
    });
    let n = |i: usize| outcomes[i].load(Ordering::Relaxed);
    eprintln!(
        "soak: {} rounds of create/create, start/delete, kill/delete in {:.1?}: start won {}, \
         delete won {}; kill first {}, kill found nothing {}; {parsed} state file reads parsed",
        scale.race_rounds,
        started.elapsed(),
        n(0),
        n(1),
        n(2),
        n(3)
    );
    assert!(parsed > 0, "the reader never found a state file to check");
}

fn create_create(ctx: &Ctx) {
    let (id, b) = ctx.sleeper("soak-race");
    let create = ["create", "--bundle", b.path_str(), id.as_str()];
    let (x, y) = race(ctx, &create, &create);
    let (won, lost) = match (x.success(), y.success()) {
        (true, false) => (x, y),
        (false, true) => (y, x),
        _ => panic!("create/create on {id}: exactly one must win:\n{x}\n{y}"),
    };
    won.assert_silent_success();
    lost.assert_error_mentions("already exists");
    assert_eq!(ctx.status(&id), "created");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

fn start_delete(ctx: &Ctx, outcomes: &[AtomicUsize; 4]) {
    let (id, b) = ctx.sleeper("soak-race");
    ctx.create(&b, &id).assert_silent_success();
    let (start, delete) = race(ctx, &["start", &id], &["delete", &id]);
    match (start.success(), delete.success()) {
        (true, false) => {
            delete.assert_error_mentions("running");
            assert_eq!(ctx.status(&id), "running");
            outcomes[0].fetch_add(1, Ordering::Relaxed);
        }
        (false, true) => {
            start.assert_error_mentions("does not exist");
            outcomes[1].fetch_add(1, Ordering::Relaxed);
        }
        _ => panic!("start/delete on {id}: exactly one must win:\n{start}\n{delete}"),
    }
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

fn kill_delete(ctx: &Ctx, outcomes: &[AtomicUsize; 4]) {
    let (id, b) = ctx.sleeper("soak-race");
    ctx.create_and_start(&b, &id);
    let (kill, delete) = race(ctx, &["kill", &id, "KILL"], &["delete", "--force", &id]);
    delete.assert_silent_success();
    if kill.success() {
        kill.assert_silent_success();
        outcomes[2].fetch_add(1, Ordering::Relaxed);
    } else {
        kill.assert_error_mentions("does not exist");
        outcomes[3].fetch_add(1, Ordering::Relaxed);
    }
    ctx.assert_nothing_left(&id, &b);
}
