//! Many full lifecycles (create, state, start, state, kill, delete of a busybox
//! `sleep`), one after the other and side by side. After each: no state dir, cgroup
//! (v1 controllers and the cgroup2 mount), mount or process is left; at the end the
//! test process holds as many fds as before. capsa's peak RSS per lifecycle (the
//! largest `ru_maxrss` of its commands) stays flat: the median of the last tenth is
//! within 10 % + 1 MiB of the first tenth's.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use capsa_integration_test::{mountinfo, Bundle, CmdOutput, Ctx};
use serde_json::Value;

use crate::measure::{self, fd_count, median};
use crate::{exclusive, Scale};

/// Runs one lifecycle of `id` and returns capsa's peak RSS over its commands (KiB).
fn lifecycle(ctx: &Ctx, id: &str, b: &Bundle) -> u64 {
    let mut peak = 0;
    let mut call = |args: &[&str]| -> CmdOutput {
        let m = measure::run(ctx.rt().path(), ctx.root(), args);
        peak = peak.max(m.max_rss_kb);
        m.out
    };
    let status = |out: CmdOutput| -> String {
        out.assert_success();
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{out}"));
        v["status"].as_str().unwrap_or("?").to_string()
    };
    call(&["create", "--bundle", b.path_str(), id]).assert_silent_success();
    assert_eq!(status(call(&["state", id])), "created", "{id} after create");
    call(&["start", id]).assert_silent_success();
    assert_eq!(status(call(&["state", id])), "running", "{id} after start");
    call(&["kill", id, "KILL"]).assert_silent_success();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status(call(&["state", id]));
        if now == "stopped" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{id} still {now} 10 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    call(&["delete", id]).assert_silent_success();
    ctx.assert_nothing_left(id, b);
    peak
}

fn sleeper(id: &str) -> Bundle {
    let mut b = Bundle::new(id);
    b.args(&["sleep", "1000"]);
    b
}

/// Nothing of the whole soak is left: an empty state root, no mount naming it, and
/// the test process's fd count back to where it was.
fn assert_clean_end(ctx: &Ctx, fds_before: usize) {
    let left: Vec<_> = std::fs::read_dir(ctx.root())
        .expect("read state root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state root not empty: {left:?}");
    let root = ctx.root().to_string_lossy().into_owned();
    let mounts: Vec<String> = mountinfo()
        .into_iter()
        .filter(|m| m.line.contains(&root))
        .map(|m| m.line)
        .collect();
    assert!(mounts.is_empty(), "mounts name the state root: {mounts:#?}");
    assert_eq!(
        fd_count(),
        fds_before,
        "the test process's fd count changed"
    );
}

#[test]
fn sequential_lifecycles_leak_nothing_and_memory_stays_flat() {
    let _turn = exclusive();
    let scale = Scale::from_env();
    let ctx = Ctx::new();
    let fds_before = fd_count();
    let mut b = sleeper("soak-seq");
    let started = Instant::now();
    let mut peaks = Vec::with_capacity(scale.sequential);
    for _ in 0..scale.sequential {
        let id = ctx.new_id("soak-seq");
        b.cgroups_path(&format!("/capsa-test/{id}"));
        peaks.push(lifecycle(&ctx, &id, &b));
    }
    let elapsed = started.elapsed();
    assert_clean_end(&ctx, fds_before);
    let tenth = (peaks.len() / 10).max(1);
    let first = median(&peaks[..tenth]);
    let last = median(&peaks[peaks.len() - tenth..]);
    eprintln!(
        "soak: {} sequential lifecycles in {elapsed:.1?} ({:.1?} each), leaks 0, capsa peak RSS \
         median first tenth {first} KiB, last tenth {last} KiB, max {} KiB",
        peaks.len(),
        elapsed / u32::try_from(peaks.len()).unwrap_or(1),
        peaks.iter().max().copied().unwrap_or(0)
    );
    assert!(
        last <= first + first / 10 + 1024,
        "capsa's peak RSS grew from {first} KiB (first tenth) to {last} KiB (last tenth)"
    );
}

#[test]
fn parallel_lifecycles_leak_nothing() {
    let _turn = exclusive();
    let scale = Scale::from_env();
    let ctx = Ctx::new();
    let fds_before = fd_count();
    let work: Vec<(String, Bundle)> = (0..scale.parallel)
        .map(|_| {
            let id = ctx.new_id("soak-par");
            let b = sleeper(&id);
            (id, b)
        })
        .collect();
    let fds_with_bundles = fd_count();
    let barrier = Barrier::new(work.len());
    let started = Instant::now();
    let peaks: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|(id, b)| {
                let (ctx, barrier) = (&ctx, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    lifecycle(ctx, id, b)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let elapsed = started.elapsed();
    assert_eq!(
        fd_count(),
        fds_with_bundles,
        "the test process's fd count changed"
    );
    drop(work);
    assert_clean_end(&ctx, fds_before);
    eprintln!(
        "soak: {} parallel lifecycles in {elapsed:.1?}, leaks 0, capsa peak RSS median {} KiB, \
         max {} KiB",
        peaks.len(),
        median(&peaks),
        peaks.iter().max().copied().unwrap_or(0)
    );
}
