//! The cgroup v2 forms of `linux.resources` read back from the host's
//! cgroup2 files, the placement of init, `cgroup.freeze` for pause/resume,
//! and `ps` / `kill --all` over nested cgroups.
//!
//! The v2 tests need a pure cgroup v2 host: on this project's v1 hybrid
//! machines they print a loud SKIPPED line and return; they run in the VM of
//! `integration_test/vm/run-tests.sh`. `ps`, `kill --all` and the placement
//! of the init and an exec'd process in every hierarchy run on both.
//! They pass against runc 1.1.5 except where `capsa_only` says so.

use std::fs;
use std::path::Path;
use std::time::Duration;

use capsa_integration_test::{
    capsa_only, cgroup_mounts, host_cgroup_dir, host_cgroup_read, loud, pid_alive, proc_cgroups,
    read_pid_file, state_pid, wait_until, Bundle, Ctx,
};
use serde_json::{json, Value};

const MIB: u64 = 1024 * 1024;
const WAIT: Duration = Duration::from_secs(10);

/// True on a pure cgroup v2 host (cgroup2 at /sys/fs/cgroup, no v1
/// hierarchy). Elsewhere prints a loud SKIPPED line naming `test`.
fn pure_v2(test: &str) -> bool {
    let mounts = cgroup_mounts();
    let v2_root = mounts
        .iter()
        .any(|m| m.fs_type == "cgroup2" && m.mount_point == Path::new("/sys/fs/cgroup"));
    let v1 = mounts.iter().any(|m| m.fs_type == "cgroup");
    if v2_root && !v1 {
        return true;
    }
    loud(&format!(
        "SKIPPED {test}: not a pure cgroup v2 host (this is cgroup v1 or hybrid); \
         it runs in the VM of integration_test/vm/run-tests.sh"
    ));
    false
}

/// A file of the container's cgroup2 directory, trimmed (on a pure v2 host
/// every controller resolves to the cgroup2 mount).
fn v2_read(b: &Bundle, file: &str) -> String {
    host_cgroup_read("memory", b.cgroup_path(), file)
}

/// A created (not started) `sleep` container with `resources`.
fn created(ctx: &Ctx, prefix: &str, resources: Value) -> (String, Bundle) {
    let (id, mut b) = ctx.sleeper(prefix);
    b.set_resources(resources);
    ctx.create(&b, &id).assert_silent_success();
    (id, b)
}

#[test]
fn v2_init_is_in_its_cgroup_with_the_controllers_enabled_above() {
    if !pure_v2("v2_init_is_in_its_cgroup_with_the_controllers_enabled_above") {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = created(&ctx, "cg-place", json!({"pids": {"limit": 50}}));
    let pid = state_pid(&ctx.state(&id));
    let lines = proc_cgroups(pid);
    assert_eq!(lines.len(), 1, "only the 0:: line on v2: {lines:?}");
    assert_eq!(
        (lines[0].hierarchy, lines[0].path.as_str()),
        (0, b.cgroup_path())
    );
    let procs = v2_read(&b, "cgroup.procs");
    assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
    // The controller a limit needs is enabled from the root down to the parent.
    for dir in ["/sys/fs/cgroup", "/sys/fs/cgroup/capsa-test"] {
        let file = Path::new(dir).join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&file).expect("read subtree_control");
        assert!(
            enabled.split_whitespace().any(|e| e == "pids"),
            "pids not in {}: {enabled}",
            file.display()
        );
    }
    assert_eq!(v2_read(&b, "pids.max"), "50");
    ctx.finish(&id, &b);
}

/// On v2, capsa clones the init and an exec'd process straight into the
/// container's cgroup (clone3 with CLONE_INTO_CGROUP, Linux 5.7): its debug
/// log says so, and both processes are in the cgroup.
#[test]
fn v2_processes_are_born_in_the_cgroup() {
    if !pure_v2("v2_processes_are_born_in_the_cgroup")
        || !capsa_only("clone3 into the cgroup (runc 1.1.5 writes cgroup.procs)")
    {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = ctx.sleeper("cg-born");
    let log = ctx.base().join("debug.log");
    let log_arg = log.to_str().expect("UTF-8 path");
    ctx.cmd(&[
        "--debug",
        "--log",
        log_arg,
        "create",
        "--bundle",
        b.path_str(),
        &id,
    ])
    .assert_success();
    ctx.start(&id).assert_success();
    ctx.cmd(&[
        "--debug", "--log", log_arg, "exec", "--detach", &id, "sleep", "1000",
    ])
    .assert_success();
    let text = fs::read_to_string(&log).expect("read the debug log");
    for what in ["clone the container init", "fork the exec process"] {
        assert!(
            text.lines()
                .any(|l| l.contains(what) && l.contains("CLONE_INTO_CGROUP")),
            "no CLONE_INTO_CGROUP for {what:?} in the debug log:\n{text}"
        );
    }
    let procs = v2_read(&b, "cgroup.procs");
    assert_eq!(
        procs.lines().count(),
        2,
        "the init and the exec'd sleep: {procs}"
    );
    ctx.finish(&id, &b);
}

#[test]
fn v2_memory_limit_reservation_swap_and_unified_high() {
    if !pure_v2("v2_memory_limit_reservation_swap_and_unified_high") {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = created(
        &ctx,
        "cg-mem",
        json!({
            "memory": {"limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB},
            "unified": {"memory.high": (48 * MIB).to_string(), "memory.oom.group": "1"}
        }),
    );
    assert_eq!(v2_read(&b, "memory.max"), (64 * MIB).to_string());
    assert_eq!(v2_read(&b, "memory.low"), (32 * MIB).to_string());
    // v1's memory+swap becomes v2's swap alone.
    assert_eq!(v2_read(&b, "memory.swap.max"), (32 * MIB).to_string());
    assert_eq!(v2_read(&b, "memory.high"), (48 * MIB).to_string());
    assert_eq!(v2_read(&b, "memory.oom.group"), "1");

    // update: -1 lifts the limit and the swap with it.
    let file = ctx.base().join("res.json");
    fs::write(
        &file,
        json!({"memory": {"limit": -1, "swap": -1}}).to_string(),
    )
    .expect("write resources");
    ctx.cmd(&["update", "--resources", file.to_str().expect("utf-8"), &id])
        .assert_silent_success();
    assert_eq!(v2_read(&b, "memory.max"), "max");
    assert_eq!(v2_read(&b, "memory.swap.max"), "max");
    ctx.finish(&id, &b);
}

#[test]
fn v2_cpu_weight_max_burst_and_cpuset() {
    if !pure_v2("v2_cpu_weight_max_burst_and_cpuset") {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = created(
        &ctx,
        "cg-cpu",
        json!({"cpu": {"shares": 2048, "quota": 30000, "period": 60000, "burst": 10000,
                       "cpus": "0", "mems": "0"}}),
    );
    // runc's conversion: 1 + (shares - 2) * 9999 / 262142.
    assert_eq!(v2_read(&b, "cpu.weight"), "79");
    assert_eq!(v2_read(&b, "cpu.max"), "30000 60000");
    assert_eq!(v2_read(&b, "cpu.max.burst"), "10000");
    assert_eq!(v2_read(&b, "cpuset.cpus"), "0");
    assert_eq!(v2_read(&b, "cpuset.mems"), "0");
    ctx.cmd(&["update", "--cpu-share", "2", "--cpu-quota", "-1", &id])
        .assert_silent_success();
    assert_eq!(v2_read(&b, "cpu.weight"), "1");
    assert_eq!(v2_read(&b, "cpu.max"), "max 60000");
    ctx.finish(&id, &b);
}

#[test]
fn v2_io_weight_and_hugetlb_with_its_reservation() {
    if !pure_v2("v2_io_weight_and_hugetlb_with_its_reservation") {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = created(
        &ctx,
        "cg-io",
        json!({"blockIO": {"weight": 500},
               "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]}),
    );
    // blkio's 10..1000 mapped onto io.weight's 1..10000 (BFQ keeps 500).
    let (file, want) = if host_cgroup_dir("io", b.cgroup_path())
        .join("io.bfq.weight")
        .exists()
    {
        ("io.bfq.weight", "default 500")
    } else {
        ("io.weight", "default 4950")
    };
    assert_eq!(v2_read(&b, file), want, "{file}");
    assert_eq!(v2_read(&b, "hugetlb.2MB.max"), (4 * MIB).to_string());
    assert_eq!(v2_read(&b, "hugetlb.2MB.rsvd.max"), (4 * MIB).to_string());
    ctx.finish(&id, &b);
}

#[test]
fn v2_values_the_host_refuses_are_named() {
    if !pure_v2("v2_values_the_host_refuses_are_named") {
        return;
    }
    for (resources, field, file) in [
        // No RDMA device in the VM: the kernel refuses the line.
        (
            json!({"rdma": {"capsa_no_such_hca": {"hcaHandles": 3}}}),
            "linux.resources.rdma.capsa_no_such_hca",
            "rdma.max",
        ),
        (
            json!({"unified": {"memory.no_such_file": "1"}}),
            "linux.resources.unified.memory.no_such_file",
            "memory.no_such_file",
        ),
    ] {
        let ctx = Ctx::new();
        let (id, mut b) = ctx.id_and_bundle("cg-refused");
        b.set_resources(resources.clone());
        let out = ctx.create(&b, &id);
        assert!(!out.success(), "{resources} was accepted:\n{out}");
        if capsa_only(&format!("{field} is refused with one line naming it")) {
            let line = out.assert_error_line();
            assert!(line.contains(field) && line.contains(file), "{line}");
        }
        ctx.assert_nothing_left(&id, &b);
    }
}

#[test]
fn v2_pause_and_resume_go_through_cgroup_freeze() {
    if !pure_v2("v2_pause_and_resume_go_through_cgroup_freeze") {
        return;
    }
    let ctx = Ctx::new();
    let (id, b) = created(&ctx, "cg-freeze", json!({}));
    ctx.start(&id).assert_silent_success();
    ctx.cmd(&["pause", &id]).assert_silent_success();
    assert_eq!(v2_read(&b, "cgroup.freeze"), "1");
    assert!(v2_read(&b, "cgroup.events").contains("frozen 1"));
    assert_eq!(ctx.status(&id), "paused");
    ctx.cmd(&["resume", &id]).assert_silent_success();
    assert_eq!(v2_read(&b, "cgroup.freeze"), "0");
    assert!(v2_read(&b, "cgroup.events").contains("frozen 0"));
    assert_eq!(ctx.status(&id), "running");
    ctx.finish(&id, &b);
}

/// A container with three processes, one of them moved by the host into a
/// sub-cgroup `sub` (in the pids hierarchy on v1, in cgroup2 on v2), as a
/// workload that makes its own cgroups would. Returns the pids.
fn nested(ctx: &Ctx, prefix: &str) -> (String, Bundle, Vec<u32>) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    b.sh("sleep 1000 & sleep 1000 & wait");
    ctx.create_and_start(&b, &id);
    let dir = host_cgroup_dir("pids", b.cgroup_path());
    let procs = || -> Vec<u32> {
        let text = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.parse().ok()).collect()
    };
    wait_until("three processes in the container", WAIT, || {
        procs().len() == 3
    });
    let init = state_pid(&ctx.state(&id));
    let child = *procs().iter().find(|p| **p != init).expect("a child");
    let sub = dir.join("sub");
    fs::create_dir(&sub).expect("mkdir the sub-cgroup");
    fs::write(sub.join("cgroup.procs"), child.to_string()).expect("move a child into sub");
    let mut all = procs();
    all.push(child);
    all.sort_unstable();
    (id, b, all)
}

#[test]
fn ps_lists_the_processes_of_nested_cgroups() {
    let ctx = Ctx::new();
    let (id, b, pids) = nested(&ctx, "cg-ps");
    let out = ctx.cmd(&["ps", "--format", "json", &id]);
    out.assert_success();
    let mut listed: Vec<u32> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("ps --format json is not a JSON list of pids ({e}):\n{out}"));
    listed.sort_unstable();
    assert_eq!(listed, pids, "ps --format json:\n{out}");
    ctx.finish(&id, &b);
}

#[test]
fn kill_all_reaches_processes_in_nested_cgroups() {
    let ctx = Ctx::new();
    let (id, b, pids) = nested(&ctx, "cg-killall");
    ctx.cmd(&["kill", "--all", &id, "KILL"])
        .assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    wait_until("every process to die", WAIT, || {
        pids.iter().all(|p| !pid_alive(*p))
    });
    // delete removes the sub-cgroup with the container's.
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// On any host: the created init and an exec'd process are in the container's
/// cgroup in every hierarchy the host has (each v1 controller, a named one such
/// as `name=systemd`, and cgroup2, the unified hierarchy of a hybrid host
/// included), whichever way they got there (capsa: born in cgroup2, joining v1
/// itself, `cgroups/entry.rs`; runc: `cgroup.procs` writes).
#[test]
fn init_and_exec_are_in_the_container_cgroup_in_every_hierarchy() {
    let ctx = Ctx::new();
    let (id, b) = created(&ctx, "cg-every", json!({}));
    let init = state_pid(&ctx.state(&id));
    let want = b.cgroup_path();
    let hierarchies = proc_cgroups(std::process::id()).len();
    let check = |pid: u32, who: &str| {
        let lines = proc_cgroups(pid);
        assert_eq!(
            lines.len(),
            hierarchies,
            "{who} {pid}: not every hierarchy of the host in its /proc/<pid>/cgroup"
        );
        for l in &lines {
            assert_eq!(
                l.path, want,
                "{who} {pid} is not in the container's cgroup in hierarchy {}:{} ({})",
                l.hierarchy, l.controllers, l.path
            );
        }
    };
    check(init, "the created init");
    let pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().expect("UTF-8 path"),
        &id,
        "sleep",
        "1000",
    ])
    .assert_success();
    let pid = read_pid_file(&pid_file);
    check(pid, "the exec'd process");
    ctx.finish(&id, &b);
}
