//! The rest of process setup, observed from inside the container: `process.scheduler`
//! (sched_setattr), `process.ioPriority` (ioprio_set) and `linux.personality`, for the
//! container process and for an `exec` process (runc 1.1.5, the oracle, predates these
//! fields and ignores them, so those assertions are `capsa_only`); the capability sets
//! read back from /proc/self/status; `linux.sysctl` keys refused outside the
//! container's namespaces.

use capsa_integration_test::fs_fixtures::{create_fails, run, run_ok, value_of};
use capsa_integration_test::{capsa_only, loud, state_pid, Bundle, Ctx};
use serde_json::json;

/// Prints the nice value (field 19 of /proc/self/stat, of the `cut` reading it, which
/// inherits it), the scheduling policy (field 41), the I/O priority as busybox's
/// `ionice` reports it, and `uname -m`.
const REPORT: &str = "echo nice=$(cut -d' ' -f19 /proc/self/stat); \
    echo policy=$(cut -d' ' -f41 /proc/self/stat); \
    echo ionice=\"$(busybox ionice)\"; \
    echo machine=$(uname -m)";

fn with_all_three(b: &mut Bundle) {
    b.edit(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
}

fn check_report(out: &str) {
    assert_eq!(value_of(out, "nice"), "5", "nice inside:\n{out}");
    assert_eq!(value_of(out, "policy"), "0", "SCHED_OTHER inside:\n{out}");
    assert_eq!(
        value_of(out, "ionice"),
        "best-effort: prio 6",
        "I/O priority inside:\n{out}"
    );
    if cfg!(target_arch = "x86_64") {
        assert_eq!(value_of(out, "machine"), "i686", "LINUX32 inside:\n{out}");
    } else {
        loud("SKIPPED: LINUX32 makes `uname -m` say i686 only on x86_64 hosts");
    }
}

#[test]
fn scheduler_io_priority_and_personality_reach_the_container_process() {
    if !capsa_only("process.scheduler, process.ioPriority, linux.personality") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("psetup");
    with_all_three(&mut b);
    b.sh(REPORT);
    check_report(&run_ok(&ctx, &b, &id));
}

#[test]
fn exec_processes_get_the_same_setup() {
    if !capsa_only("process.scheduler, process.ioPriority, linux.personality in exec") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("psetup-exec");
    with_all_three(&mut b);
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    assert!(state_pid(&ctx.state(&id)) > 0);
    let out = ctx.cmd(&["exec", &id, "sh", "-c", REPORT]);
    assert!(out.success(), "exec should succeed:\n{out}");
    check_report(&out.stdout);
    ctx.delete_force(&id);
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn an_unknown_policy_is_one_error_naming_the_field() {
    if !capsa_only("the error for an unknown scheduling policy") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("psetup-bad");
    b.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_NOPE"}));
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("process.scheduler.policy") && line.contains("SCHED_NOPE"),
        "the error should name process.scheduler.policy and the value: {line}"
    );

    let (id, mut b) = ctx.id_and_bundle("psetup-bad-io");
    b.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}));
    let line = create_fails(&ctx, &b, &id);
    assert!(
        line.contains("process.ioPriority.priority"),
        "the error should name process.ioPriority.priority: {line}"
    );
}

/// SCHED_FIFO needs CAP_SYS_NICE and, under cgroup v2 or RT throttling, a realtime
/// budget the host may not give: either it works (policy 1 inside), or `run` fails
/// with one error line naming `process.scheduler`.
#[test]
fn a_realtime_policy_works_or_is_one_clear_error() {
    if !capsa_only("realtime scheduling policy") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("psetup-rt");
    b.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10}));
    b.sh("echo policy=$(cut -d' ' -f41 /proc/self/stat); echo prio=$(cut -d' ' -f40 /proc/self/stat)");
    let out = run(&ctx, &b, &id);
    if out.success() {
        assert_eq!(value_of(&out.stdout, "policy"), "1", "SCHED_FIFO:\n{out}");
        assert_eq!(value_of(&out.stdout, "prio"), "10", "rt_priority:\n{out}");
    } else {
        let line = out.assert_error_line();
        assert!(
            line.contains("process.scheduler: sched_setattr SCHED_FIFO priority 10"),
            "the kernel's refusal should name the field: {line}"
        );
        loud(&format!("NOTE: this host refuses SCHED_FIFO: {line}"));
    }
    ctx.assert_nothing_left(&id, &b);
}

/// Every capability set, read back from /proc/self/status inside. As uid 1000 (no
/// file capabilities), execve keeps only the ambient set in the permitted and
/// effective sets; the bounding and inheritable sets stay as configured.
#[test]
fn capability_sets_read_back_from_proc_self_status() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("psetup-caps");
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"],
        });
    });
    b.sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status | tr -d '\\t' | tr ':' '='");
    let out = run_ok(&ctx, &b, &id);
    let kill = format!("{:016x}", 1u64 << 5);
    let bounding = format!("{:016x}", (1u64 << 0) | (1u64 << 5) | (1u64 << 10));
    for (set, want) in [
        ("CapInh", &kill),
        ("CapPrm", &kill),
        ("CapEff", &kill),
        ("CapAmb", &kill),
        ("CapBnd", &bounding),
    ] {
        assert_eq!(value_of(&out, set), want.as_str(), "{set}:\n{out}");
    }
    assert_eq!(value_of(&out, "NoNewPrivs"), "1", "{out}");
}

/// `linux.sysctl` keys belong to a namespace: a key of a namespace the container
/// shares with the host is refused (runc does too), one of its own is written.
#[test]
fn a_sysctl_outside_the_containers_namespaces_is_refused() {
    let ctx = Ctx::new();
    for (key, value, missing) in [
        ("net.ipv4.ip_forward", "1", "network"),
        ("kernel.shmmax", "65536", "ipc"),
    ] {
        let (id, mut b) = ctx.id_and_bundle("psetup-sysctl");
        let kept: Vec<&str> = ["pid", "mount", "uts", "ipc", "network"]
            .into_iter()
            .filter(|ns| *ns != missing)
            .collect();
        b.namespaces(&kept);
        b.edit(|c| c["linux"]["sysctl"] = json!({ key: value }));
        let out = ctx.create(&b, &id);
        assert!(
            !out.success(),
            "{key} without a {missing} namespace:\n{out}"
        );
        assert!(
            out.stderr.contains(key),
            "the error should name {key}:\n{out}"
        );
        if capsa_only("one error line for a refused sysctl") {
            out.assert_error_line();
        }
        ctx.assert_nothing_left(&id, &b);
    }

    let (id, mut b) = ctx.id_and_bundle("psetup-sysctl-ok");
    b.namespaces(&["pid", "mount", "uts", "ipc", "network"]);
    b.edit(|c| c["linux"]["sysctl"] = json!({"kernel.shmmax": "65536"}));
    b.sh("echo shmmax=$(cat /proc/sys/kernel/shmmax)");
    assert_eq!(value_of(&run_ok(&ctx, &b, &id), "shmmax"), "65536");
}
