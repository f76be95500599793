//! Hostile configs: a 10 MB config.json, 10,000 mounts, 10,000 env entries, huge
//! and negative numbers in every class of numeric field, paths with NUL or `..`.
//! Each `create` must finish within [`TIME_LIMIT`] and [`RSS_LIMIT_KB`] of peak
//! memory, and either refuse with one clear error line (naming `config.json` and the
//! JSON path where the spec layer refuses it) or run correctly; either way nothing
//! is left behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use capsa_integration_test::{capsa_only, wait_for_file, Ctx};
use serde_json::{json, Value};

use crate::exclusive;
use crate::measure::{self, Measured};

/// The longest one `create` of a hostile config may take.
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// The most memory one capsa process may use on it (KiB): 16 times the largest
/// config (its bytes, the decoded spec, and the copy that goes to state.json).
const RSS_LIMIT_KB: u64 = 160 * 1024;
/// How many cases run at once (they share nothing).
const WORKERS: usize = 3;

/// What a hostile config must lead to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused before anything is made, naming config.json and this JSON path.
    Refused(&'static str),
    /// Refused (one error line) or run; which one is capsa's choice.
    Either,
    /// Runs: create, start, the program writes `/out/ok`, delete.
    Runs,
}

type Edit = fn(&mut Value);

/// A config given as its text, made from the default config.
type Raw = fn(&Value) -> String;

/// Configs whose hostility is in the text rather than in a value.
fn raw_cases() -> Vec<(&'static str, Raw, Expect)> {
    vec![
        (
            "10 MB config.json (whitespace)",
            |c| {
                let text = serde_json::to_string(c).expect("config");
                format!("{}{text}", " \n".repeat(5 << 20))
            },
            Expect::Runs,
        ),
        (
            "1,000,000 nested arrays",
            |c| {
                let text = serde_json::to_string(c).expect("config");
                let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
                text.replacen('{', &format!("{{\"soak\":{deep},"), 1)
            },
            Expect::Either,
        ),
        (
            "100,000 duplicate keys",
            |c| {
                let text = serde_json::to_string(c).expect("config");
                let dups = "\"hostname\":\"x\",".repeat(100_000);
                text.replacen('{', &format!("{{{dups}"), 1)
            },
            Expect::Either,
        ),
    ]
}

/// How a case makes its config.
#[derive(Clone, Copy)]
enum Make {
    Edit(Edit),
    Raw(Raw),
}

/// Every hostile config: a name, an edit of the default busybox config, and what
/// must happen.
fn cases() -> Vec<(&'static str, Edit, Expect)> {
    vec![
        (
            "10 MB config.json (one annotation)",
            |c| {
                c["annotations"] = json!({ "soak.big": "x".repeat(10 << 20) });
            },
            Expect::Refused("annotations"),
        ),
        (
            "10 MB config.json (100,000 annotations)",
            |c| {
                let m: serde_json::Map<String, Value> = (0..100_000)
                    .map(|i| (format!("soak.{i:06}"), json!("v".repeat(90))))
                    .collect();
                c["annotations"] = Value::Object(m);
            },
            Expect::Refused("annotations"),
        ),
        (
            "10,000 tmpfs mounts",
            |c| {
                let mounts = c["mounts"].as_array_mut().expect("mounts");
                for i in 0..10_000 {
                    mounts.push(json!({"destination": format!("/tmp/m{i}"), "type": "tmpfs",
                                   "source": "tmpfs", "options": ["size=4k"]}));
                }
            },
            Expect::Either,
        ),
        (
            "10,000 env entries",
            |c| {
                let env = c["process"]["env"].as_array_mut().expect("env");
                for i in 0..10_000 {
                    env.push(json!(format!("SOAK_{i}=value-{i}")));
                }
            },
            Expect::Runs,
        ),
        (
            "uid -1",
            |c| c["process"]["user"]["uid"] = json!(-1),
            Expect::Refused("process.user.uid"),
        ),
        (
            "uid 2^32",
            |c| c["process"]["user"]["uid"] = json!(1u64 << 32),
            Expect::Refused("process.user.uid"),
        ),
        (
            "uid 4294967295",
            |c| c["process"]["user"]["uid"] = json!(u32::MAX),
            Expect::Refused("process.user.uid"),
        ),
        (
            "gid 2^64-1",
            |c| c["process"]["user"]["gid"] = json!(u64::MAX),
            Expect::Refused("process.user.gid"),
        ),
        (
            "additionalGids huge",
            |c| c["process"]["user"]["additionalGids"] = json!([u32::MAX, 1u64 << 40]),
            Expect::Refused("process.user.additionalGids"),
        ),
        (
            "umask huge",
            |c| c["process"]["user"]["umask"] = json!(u32::MAX),
            Expect::Refused("process.user.umask"),
        ),
        (
            "rlimit hard 2^64",
            |c| c["process"]["rlimits"][0]["hard"] = json!(1.8446744073709552e19),
            Expect::Refused("process.rlimits[0].hard"),
        ),
        (
            "rlimit soft -1",
            |c| c["process"]["rlimits"][0]["soft"] = json!(-1),
            Expect::Refused("process.rlimits[0].soft"),
        ),
        (
            "rlimit soft above hard",
            |c| {
                c["process"]["rlimits"][0]["soft"] = json!(u64::MAX);
                c["process"]["rlimits"][0]["hard"] = json!(1024);
            },
            Expect::Either,
        ),
        (
            "oomScoreAdj 2^31-1",
            |c| c["process"]["oomScoreAdj"] = json!(i32::MAX),
            Expect::Refused("process.oomScoreAdj"),
        ),
        (
            "oomScoreAdj -2^31",
            |c| c["process"]["oomScoreAdj"] = json!(i32::MIN),
            Expect::Refused("process.oomScoreAdj"),
        ),
        (
            "oomScoreAdj 2^40",
            |c| c["process"]["oomScoreAdj"] = json!(1u64 << 40),
            Expect::Refused("process.oomScoreAdj"),
        ),
        (
            "memory limit i64::MIN",
            |c| c["linux"]["resources"]["memory"] = json!({"limit": i64::MIN}),
            Expect::Either,
        ),
        (
            "memory limit -2",
            |c| c["linux"]["resources"]["memory"] = json!({"limit": -2}),
            Expect::Either,
        ),
        (
            "memory limit i64::MAX",
            |c| c["linux"]["resources"]["memory"] = json!({"limit": i64::MAX}),
            Expect::Either,
        ),
        (
            "memory limit 2^64",
            |c| c["linux"]["resources"]["memory"] = json!({"limit": 1.8446744073709552e19}),
            Expect::Refused("linux.resources.memory.limit"),
        ),
        (
            "memory swappiness huge",
            |c| c["linux"]["resources"]["memory"] = json!({"swappiness": u64::MAX}),
            Expect::Either,
        ),
        (
            "cpu shares 2^64-1",
            |c| c["linux"]["resources"]["cpu"] = json!({"shares": u64::MAX}),
            Expect::Either,
        ),
        (
            "cpu quota i64::MIN",
            |c| c["linux"]["resources"]["cpu"] = json!({"quota": i64::MIN, "period": 100000}),
            Expect::Either,
        ),
        (
            "cpu period 0",
            |c| c["linux"]["resources"]["cpu"] = json!({"quota": 1000, "period": 0}),
            Expect::Either,
        ),
        (
            "pids limit i64::MIN",
            |c| c["linux"]["resources"]["pids"] = json!({"limit": i64::MIN}),
            Expect::Either,
        ),
        (
            "blkio weight 2^16",
            |c| c["linux"]["resources"]["blockIO"] = json!({"weight": 65536}),
            Expect::Refused("linux.resources.blockIO.weight"),
        ),
        (
            "hugepage limit 2^64-1",
            |c| {
                c["linux"]["resources"]["hugepageLimits"] =
                    json!([{"pageSize": "2MB", "limit": u64::MAX}])
            },
            Expect::Either,
        ),
        (
            "device major -1",
            |c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/soak", "type": "c", "major": -1, "minor": 1}])
            },
            Expect::Refused("linux.devices[0].major"),
        ),
        (
            "device major 2^40",
            |c| {
                c["linux"]["devices"] =
                    json!([{"path": "/dev/soak", "type": "c", "major": 1u64 << 40, "minor": 1}])
            },
            Expect::Refused("linux.devices[0].major"),
        ),
        (
            "timeOffsets huge",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("ns")
                    .push(json!({"type": "time"}));
                c["linux"]["timeOffsets"] =
                    json!({"monotonic": {"secs": i64::MAX, "nanosecs": u32::MAX}});
            },
            Expect::Refused("linux.timeOffsets.monotonic.secs"),
        ),
        (
            "timeOffsets negative",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("ns")
                    .push(json!({"type": "time"}));
                c["linux"]["timeOffsets"] = json!({"boottime": {"secs": i64::MIN, "nanosecs": 0}});
            },
            Expect::Refused("linux.timeOffsets.boottime.secs"),
        ),
        (
            "consoleSize huge",
            |c| c["process"]["consoleSize"] = json!({"height": u64::MAX, "width": 1u64 << 40}),
            Expect::Either,
        ),
        (
            "uidMappings size 2^32",
            |c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("ns")
                    .push(json!({"type": "user"}));
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 0, "size": 1u64 << 32}]);
                c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
            },
            Expect::Refused("linux.uidMappings[0].size"),
        ),
        (
            "hook timeout -1",
            |c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/true", "timeout": -1}]}),
            Expect::Refused("hooks.createRuntime[0].timeout"),
        ),
        (
            "scheduler priority huge",
            |c| {
                c["process"]["scheduler"] =
                    json!({"policy": "SCHED_OTHER", "nice": i32::MAX, "priority": i32::MIN})
            },
            Expect::Either,
        ),
        (
            "NUL in cwd",
            |c| c["process"]["cwd"] = json!("/\u{0}x"),
            Expect::Refused("process.cwd"),
        ),
        (
            "NUL in an argument",
            |c| c["process"]["args"] = json!(["true", "a\u{0}b"]),
            Expect::Refused("process.args[1]"),
        ),
        (
            "NUL in an env entry",
            |c| {
                c["process"]["env"]
                    .as_array_mut()
                    .expect("env")
                    .push(json!("A=\u{0}B"))
            },
            Expect::Refused("process.env[2]"),
        ),
        (
            "NUL in root.path",
            |c| c["root"]["path"] = json!("rootfs\u{0}x"),
            Expect::Refused("root.path"),
        ),
        (
            "NUL in a mount destination",
            |c| {
                c["mounts"].as_array_mut().expect("m").push(
                    json!({"destination": "/tmp/a\u{0}b", "type": "tmpfs", "source": "tmpfs"}),
                )
            },
            Expect::Refused("mounts[8].destination"),
        ),
        (
            "NUL in hostname",
            |c| c["hostname"] = json!("a\u{0}b"),
            Expect::Refused("hostname"),
        ),
        (
            "NUL in a masked path",
            |c| c["linux"]["maskedPaths"] = json!(["/proc/a\u{0}b"]),
            Expect::Refused("linux.maskedPaths[0]"),
        ),
        (
            "NUL in cgroupsPath",
            |c| c["linux"]["cgroupsPath"] = json!("/capsa-test/a\u{0}b"),
            Expect::Refused("linux.cgroupsPath"),
        ),
        (
            ".. in a mount destination",
            |c| {
                c["mounts"].as_array_mut().expect("m").push(json!({"destination": "/../../../tmp/soak-escape", "type": "tmpfs", "source": "tmpfs"}))
            },
            Expect::Either,
        ),
        (
            ".. in cwd",
            |c| c["process"]["cwd"] = json!("/../../.."),
            Expect::Either,
        ),
        (
            ".. in root.path",
            |c| c["root"]["path"] = json!("rootfs/../rootfs/./"),
            Expect::Runs,
        ),
        (
            ".. in a masked path",
            |c| c["linux"]["maskedPaths"] = json!(["/../../../etc/hostname"]),
            Expect::Either,
        ),
        (
            ".. in cgroupsPath",
            |c| c["linux"]["cgroupsPath"] = json!("/capsa-test/../../soak-escape"),
            Expect::Either,
        ),
    ]
}

/// Runs one hostile config and returns how it ended, for the summary.
fn hostile_case(ctx: &Ctx, name: &str, make: Make, expect: Expect) -> String {
    let (id, mut b) = ctx.id_and_bundle("soak-hostile");
    let out_dir = b.with_out_dir();
    b.sh("echo ok > /out/ok; exec sleep 1000");
    match make {
        Make::Edit(edit) => {
            b.edit(edit);
        }
        Make::Raw(raw) => {
            b.write_raw_config(&raw(b.config()));
        }
    }
    let m: Measured = measure::run(
        ctx.rt().path(),
        ctx.root(),
        &["create", "--bundle", b.path_str(), &id],
    );
    let what = format!(
        "{name}: create took {:.1?}, peak RSS {} KiB",
        m.elapsed, m.max_rss_kb
    );
    assert!(
        m.elapsed < TIME_LIMIT,
        "{what}: over {TIME_LIMIT:?}\n{}",
        m.out
    );
    assert!(
        m.max_rss_kb < RSS_LIMIT_KB,
        "{what}: over {RSS_LIMIT_KB} KiB\n{}",
        m.out
    );
    let outcome = if m.out.success() {
        if let Expect::Refused(path) = expect {
            if capsa_only(&format!("{name} is refused at config.json: {path}")) {
                panic!("{what}: must be refused at config.json: {path}, but create succeeded");
            }
        }
        ctx.start(&id).assert_silent_success();
        wait_for_file(&out_dir.join("ok"), Duration::from_secs(10));
        format!("ran ({:.1?}, {} KiB)", m.elapsed, m.max_rss_kb)
    } else {
        let line = m.out.assert_error_line();
        match expect {
            Expect::Runs => panic!("{what}: must run, but create failed:\n{}", m.out),
            Expect::Refused(path)
                if capsa_only(&format!("the error names config.json: {path}")) =>
            {
                assert!(
                    line.contains(&format!("config.json: {path}")),
                    "{what}: the error must name config.json: {path}:\n{}",
                    m.out
                );
            }
            _ => {}
        }
        format!("refused ({:.1?}, {} KiB): {line}", m.elapsed, m.max_rss_kb)
    };
    let del = ctx.delete_force(&id);
    assert!(del.success(), "{what}: delete --force failed:\n{del}");
    ctx.assert_nothing_left(&id, &b);
    assert!(
        !std::path::Path::new("/tmp/soak-escape").exists(),
        "{what}: something was made at /tmp/soak-escape on the host"
    );
    outcome
}

#[test]
fn hostile_configs_end_in_bounded_time_and_memory_with_a_clear_outcome() {
    let _turn = exclusive();
    let ctx = Ctx::new();
    let only = std::env::var("CAPSA_SOAK_HOSTILE").ok();
    let mut failures = Vec::new();
    let all: Vec<(&str, Make, Expect)> = cases()
        .into_iter()
        .map(|(n, e, x)| (n, Make::Edit(e), x))
        .chain(
            raw_cases()
                .into_iter()
                .map(|(n, r, x)| (n, Make::Raw(r), x)),
        )
        .filter(|(n, _, _)| only.as_deref().is_none_or(|o| n.contains(o)))
        .collect();
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(&mut failures);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while let Some(&(name, make, expect)) =
                    all.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    // Every case runs; the failures are listed together at the end.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        hostile_case(&ctx, name, make, expect)
                    }));
                    match r {
                        Ok(outcome) => eprintln!("soak: hostile {name}: {outcome}"),
                        Err(e) => failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!(
                                "{name}: {}",
                                e.downcast_ref::<String>().cloned().unwrap_or_default()
                            )),
                    }
                }
            });
        }
    });
    assert!(
        failures.is_empty(),
        "hostile configs failed:\n{}",
        failures.join("\n\n")
    );
}
