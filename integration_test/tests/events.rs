//! `events` and `update`'s single-value flags as runc's callers use them:
//! `events --stats` (one JSON line in go-runc's decoder shape), the
//! `events --interval` stream with its `oom` events, and `update --memory
//! 96m --pids-limit 20 --cpu-quota ...` read back from the host's cgroup
//! files.
//!
//! Every test passes against runc 1.1.5 (`CAPSA_RUNTIME=runc`) except
//! where `capsa_only` says so: runc's stream goes on after the container
//! stops (until `delete` removes the cgroup), and runc warns on stderr
//! about `--kernel-memory`. The file names are cgroup v1's on a v1 or
//! hybrid host and cgroup v2's on a v2 host (see [`v1`]).

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use capsa_integration_test::{capsa_only, cgroup_mounts, host_cgroup_read, loud, Bundle, Ctx};
use serde_json::{json, Value};

const MIB: u64 = 1024 * 1024;

/// Whether the memory controller is cgroup v1's (this host), so the
/// resource files have their v1 names.
fn v1() -> bool {
    cgroup_mounts()
        .iter()
        .any(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "memory"))
}

/// A running `sleep` container with `resources`.
fn sleeper(ctx: &Ctx, prefix: &str, resources: Value) -> (String, Bundle) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    b.set_resources(resources);
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    (id, b)
}

/// `events --stats <id>`: exit 0, nothing on stderr, exactly one line of
/// JSON `{"type":"stats","id":<id>,"data":{...}}`. Returns `data`.
fn stats(ctx: &Ctx, id: &str) -> Value {
    let out = ctx.cmd(&["events", "--stats", id]);
    out.assert_success();
    assert!(
        out.stderr.is_empty(),
        "events --stats wrote to stderr:\n{out}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "expected one JSON line:\n{out}");
    assert!(out.stdout.ends_with('\n'), "the line must end:\n{out}");
    let event: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("events --stats output is not JSON ({e}):\n{out}"));
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], id, "{event}");
    event["data"].clone()
}

#[test]
fn events_stats_shows_the_limits_and_usage_in_go_runcs_shape() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(
        &ctx,
        "ev-stats",
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 40}}),
    );
    let data = stats(&ctx, &id);

    assert_eq!(data["memory"]["usage"]["limit"], 64 * MIB, "{data}");
    let usage = data["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0, "a running container uses memory: {data}");
    let current = data["pids"]["current"].as_u64().unwrap_or(0);
    assert!(current >= 1, "pids.current of a running container: {data}");
    assert_eq!(data["pids"]["limit"], 40, "{data}");
    let total = data["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    assert!(total > 0, "the container ran, so it used CPU time: {data}");

    // The objects go-runc's Stats decodes, with runc's field names.
    for (pointer, kind) in [
        ("/cpu/usage", "object"),
        ("/cpu/usage/kernel", "number"),
        ("/cpu/usage/user", "number"),
        ("/cpu/throttling", "object"),
        ("/memory/usage/failcnt", "number"),
        ("/memory/swap", "object"),
        ("/memory/kernel", "object"),
        ("/memory/kernelTCP", "object"),
        ("/memory/raw", "object"),
        ("/pids", "object"),
        ("/blkio", "object"),
        ("/hugetlb", "object"),
    ] {
        let v = data
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} missing from {data}"));
        let ok = match kind {
            "object" => v.is_object(),
            _ => v.is_u64(),
        };
        assert!(ok, "{pointer} should be a {kind}: {data}");
    }
    for list in ["ioServiceBytesRecursive", "ioServicedRecursive"] {
        if let Some(entries) = data["blkio"].get(list) {
            for e in entries.as_array().expect("blkio tables are arrays") {
                assert!(e.get("op").is_some(), "{list} entries have an op: {data}");
            }
        }
    }

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn events_refuse_a_stopped_container_and_a_bad_interval() {
    let ctx = Ctx::new();
    let (id, b) = ctx.id_and_bundle("ev-stopped");
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");
    ctx.cmd(&["events", "--stats", &id])
        .assert_error_mentions("not running");
    ctx.cmd(&["events", &id])
        .assert_error_mentions("not running");
    ctx.delete(&id).assert_silent_success();

    let (id, b) = sleeper(&ctx, "ev-interval", json!({}));
    ctx.cmd(&["events", "--interval", "0s", &id])
        .assert_error_mentions("greater than 0");
    let out = ctx.cmd(&["events", "--interval", "5", &id]);
    assert!(
        !out.success(),
        "a duration without a unit was accepted:\n{out}"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// A running `events` stream: its lines as they come.
struct Stream {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<Value>,
}

impl Stream {
    fn start(ctx: &Ctx, args: &[&str]) -> Stream {
        let mut child = Command::new(ctx.rt().path())
            .arg("--root")
            .arg(ctx.root())
            .arg("events")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the runtime's events");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Stream {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads events until one has type `kind`; panics after `timeout`.
    fn wait_for(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("event is not JSON ({e}): {line}"));
                    self.seen.push(v.clone());
                    if v["type"] == kind {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {kind:?} event within {timeout:?}; saw {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("events ended before a {kind:?} event; saw {:?}", self.seen)
                }
            }
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, or
    /// `None` if still running.
    fn exited(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for events") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every event line read so far, and the rest once the process ended.
    fn drain(&mut self) -> &[Value] {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("event is not JSON ({e}): {line}"));
            self.seen.push(v);
        }
        &self.seen
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_stream_stats_and_an_oom_kill_until_the_container_stops() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("ev-oom");
    // No swap to escape to (memory+swap = memory), so the OOM killer acts.
    b.set_resources(json!({"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}));
    // busybox tail keeps the whole of a line that never ends: /dev/zero has
    // no newline, so it grows until the kernel kills it. The shell (the
    // init) survives it, so the stream sees the kill while the container
    // still runs; it stops a moment later.
    b.sh("sleep 2; tail /dev/zero; sleep 1");
    ctx.create_and_start(&b, &id);
    let mut stream = Stream::start(&ctx, &["--interval", "500ms", &id]);

    let oom = stream.wait_for("oom", Duration::from_secs(30));
    assert_eq!(oom, json!({"type": "oom", "id": id}), "runc's oom event");
    ctx.wait_for_status(&id, "stopped");

    if capsa_only("events exits 0 by itself once the container has stopped") {
        let status = stream.exited(Duration::from_secs(5));
        assert!(
            status.is_some_and(|s| s.success()),
            "events should exit 0 when the container stops, got {status:?}"
        );
    } else {
        loud("runc's events stream ends only when delete removes the cgroup");
    }
    ctx.delete(&id).assert_silent_success();
    let status = stream.exited(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "events must exit 0 once the container is gone, got {status:?}"
    );
    let seen = stream.drain().to_vec();
    let stats: Vec<&Value> = seen.iter().filter(|e| e["type"] == "stats").collect();
    assert!(
        !stats.is_empty(),
        "stats every 500 ms over about 3 s: {seen:?}"
    );
    for e in &seen {
        assert_eq!(e["id"], id, "{e}");
        assert!(
            e["type"] == "stats" || e["type"] == "oom",
            "only stats and oom events: {e}"
        );
    }
    assert_eq!(
        seen.iter().filter(|e| e["type"] == "oom").count(),
        1,
        "one process was killed: {seen:?}"
    );
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn update_flags_are_read_back_from_the_host_cgroup() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(
        &ctx,
        "ev-update",
        json!({
            "memory": {"limit": 64 * MIB},
            "pids": {"limit": 10},
            "cpu": {"quota": 20000, "period": 100000}
        }),
    );
    let cg = b.cgroup_path().to_string();
    let v1 = v1();
    let memory_file = if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let quota = || {
        if v1 {
            host_cgroup_read("cpu", &cg, "cpu.cfs_quota_us")
        } else {
            host_cgroup_read("cpu", &cg, "cpu.max")
        }
    };

    ctx.cmd(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "30000",
        &id,
    ])
    .assert_silent_success();
    assert_eq!(
        host_cgroup_read("memory", &cg, memory_file),
        (96 * MIB).to_string()
    );
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "20");
    assert_eq!(quota(), if v1 { "30000" } else { "30000 100000" });
    // events --stats sees the new limits too.
    let data = stats(&ctx, &id);
    assert_eq!(data["memory"]["usage"]["limit"], 96 * MIB, "{data}");
    assert_eq!(data["pids"]["limit"], 20, "{data}");

    // Sizes in other forms, a reservation and shares; single-dash flags
    // as Go's flag package allows them.
    ctx.cmd(&[
        "update",
        "-memory=1g",
        "--memory-reservation",
        "32MiB",
        "--cpu-share",
        "512",
        "--cpu-period",
        "50000",
        &id,
    ])
    .assert_silent_success();
    assert_eq!(
        host_cgroup_read("memory", &cg, memory_file),
        (1024 * MIB).to_string()
    );
    if v1 {
        assert_eq!(
            host_cgroup_read("memory", &cg, "memory.soft_limit_in_bytes"),
            (32 * MIB).to_string()
        );
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.shares"), "512");
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.cfs_period_us"), "50000");
        assert_eq!(quota(), "30000", "the quota keeps its value");
    } else {
        assert_eq!(
            host_cgroup_read("memory", &cg, "memory.low"),
            (32 * MIB).to_string()
        );
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.weight"), "20");
        assert_eq!(quota(), "30000 50000");
    }
    assert_eq!(
        host_cgroup_read("pids", &cg, "pids.max"),
        "20",
        "left alone"
    );

    // -1 lifts the limits.
    ctx.cmd(&[
        "update",
        "--memory",
        "-1",
        "--pids-limit",
        "-1",
        "--cpu-quota",
        "-1",
        &id,
    ])
    .assert_silent_success();
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "max");
    if v1 {
        // The largest page-aligned value: the kernel's "no limit".
        let unlimited: u64 = host_cgroup_read("memory", &cg, memory_file)
            .parse()
            .unwrap();
        assert!(unlimited >= 1 << 62, "memory limit not lifted: {unlimited}");
        assert_eq!(quota(), "-1");
    } else {
        assert_eq!(host_cgroup_read("memory", &cg, memory_file), "max");
        assert_eq!(quota(), "max 50000");
    }

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn update_flags_are_ignored_when_resources_are_given() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(
        &ctx,
        "ev-resfile",
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 10}}),
    );
    let cg = b.cgroup_path().to_string();
    let file = ctx.base().join(format!("resources-{id}.json"));
    fs::write(&file, json!({"pids": {"limit": 33}}).to_string()).expect("write resources");
    ctx.cmd(&[
        "update",
        "--resources",
        file.to_str().expect("utf-8"),
        "--pids-limit",
        "44",
        "--memory",
        "80m",
        &id,
    ])
    .assert_success();
    assert_eq!(
        host_cgroup_read("pids", &cg, "pids.max"),
        "33",
        "the file's value"
    );
    let memory_file = if v1() {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(
        host_cgroup_read("memory", &cg, memory_file),
        (64 * MIB).to_string(),
        "--memory is ignored next to --resources (runc's rule)"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn update_flag_values_runc_accepts_and_refuses() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(&ctx, "ev-flags", json!({"memory": {"limit": 64 * MIB}}));
    let cg = b.cgroup_path().to_string();
    let memory_file = if v1() {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };

    // Obsolete kernel memory flags: accepted, nothing changes.
    let out = ctx.cmd(&["update", "--kernel-memory", "10m", &id]);
    out.assert_success();
    if capsa_only("--kernel-memory is ignored without a word on stderr") {
        out.assert_silent_success();
    }
    assert_eq!(
        host_cgroup_read("memory", &cg, memory_file),
        (64 * MIB).to_string()
    );

    // Not a size.
    ctx.cmd(&["update", "--memory", "64q", &id])
        .assert_error_mentions("invalid size");
    ctx.cmd(&["update", "--memory-swap", "-2", &id])
        .assert_error_mentions("invalid size");
    // No Intel RDT here (and none in capsa at all).
    ctx.cmd(&["update", "--l3-cache-schema", "L3:0=f", &id])
        .assert_error_mentions("RDT");
    ctx.cmd(&["update", "--mem-bw-schema", "MB:0=70", &id])
        .assert_error_mentions("RDT");
    assert_eq!(
        host_cgroup_read("memory", &cg, memory_file),
        (64 * MIB).to_string()
    );
    assert_eq!(ctx.status(&id), "running");

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
