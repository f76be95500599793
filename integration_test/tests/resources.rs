//! `linux.resources` as callers use them: limits seen from inside the
//! container, `update` of a running container (`--resources FILE` as podman
//! sends it, `--resources -` on stdin as containerd and CRI-O do), `pause` /
//! `resume`, killing and deleting a paused container, and values the host
//! cannot apply (one error line naming the field, nothing left behind).
//!
//! Every test passes against runc 1.1.5 except for capsa's own wording and
//! behaviour, guarded by `capsa_only`. The expected file names are cgroup
//! v1's, the layout of this host; on a cgroup v2 host the tests read the v2
//! files instead (see [`Layout`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use capsa_integration_test::{
    capsa_only, cgroup_mounts, host_cgroup_dir, host_cgroup_read, pid_alive, state_pid,
    wait_for_file, wait_until, Bundle, Ctx,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Whether the host's memory, cpu and pids controllers are cgroup v1's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    V1,
    V2,
}

fn layout() -> Layout {
    let v1_memory = cgroup_mounts()
        .iter()
        .any(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "memory"));
    if v1_memory {
        Layout::V1
    } else {
        Layout::V2
    }
}

/// Runs `<runtime> --root <root> update --resources - <id>` with `json` on
/// stdin (the harness's own calls have no stdin). Returns (success, stderr).
fn update_stdin(ctx: &Ctx, id: &str, json: &Value) -> (bool, String) {
    let mut child = Command::new(ctx.rt().path())
        .arg("--root")
        .arg(ctx.root())
        .args(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the runtime");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.to_string().as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for update");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `update --resources FILE <id>` (podman's form).
fn update_file(ctx: &Ctx, id: &str, json: &Value) -> capsa_integration_test::CmdOutput {
    let file = ctx.base().join(format!("resources-{id}.json"));
    fs::write(&file, json.to_string()).expect("write resources file");
    ctx.cmd(&["update", "--resources", file.to_str().expect("utf-8"), id])
}

/// `name=value` lines into a map.
fn values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn limits_are_visible_inside_the_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-inside");
    let out = b.with_out_dir();
    b.set_resources(json!({
        "memory": {"limit": 67108864, "swap": 134217728},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20}
    }));
    let files = match layout() {
        Layout::V1 => [
            "memory/memory.limit_in_bytes",
            "memory/memory.memsw.limit_in_bytes",
            "cpu/cpu.shares",
            "cpu/cpu.cfs_quota_us",
            "cpu/cpu.cfs_period_us",
            "pids/pids.max",
            "cpuset/cpuset.cpus",
        ],
        Layout::V2 => [
            "memory.max",
            "memory.swap.max",
            "cpu.weight",
            "cpu.max",
            "cpu.max",
            "pids.max",
            "cpuset.cpus",
        ],
    };
    let script = format!(
        "cd /sys/fs/cgroup && for f in {}; do echo \"$f=$(cat $f)\"; done > /out/values.tmp \
         && mv /out/values.tmp /out/values",
        files.join(" ")
    );
    b.sh(&script);
    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("values"), WAIT);
    let got = values(&fs::read_to_string(out.join("values")).expect("read values"));
    let want: &[(&str, &str)] = match layout() {
        Layout::V1 => &[
            ("memory/memory.limit_in_bytes", "67108864"),
            ("memory/memory.memsw.limit_in_bytes", "134217728"),
            ("cpu/cpu.shares", "512"),
            ("cpu/cpu.cfs_quota_us", "20000"),
            ("cpu/cpu.cfs_period_us", "100000"),
            ("pids/pids.max", "20"),
            ("cpuset/cpuset.cpus", "0"),
        ],
        Layout::V2 => &[
            ("memory.max", "67108864"),
            ("memory.swap.max", "67108864"),
            ("cpu.weight", "20"),
            ("cpu.max", "20000 100000"),
            ("pids.max", "20"),
            ("cpuset.cpus", "0"),
        ],
    };
    for (file, value) in want {
        assert_eq!(
            got.get(*file).map(String::as_str),
            Some(*value),
            "{file} inside the container; all values: {got:?}"
        );
    }
    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn update_changes_the_limits_of_a_running_container() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-update");
    b.set_resources(
        json!({"pids": {"limit": 10}, "memory": {"limit": 67108864}, "cpu": {"quota": 20000, "period": 100000}}),
    );
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    let cg = b.cgroup_path().to_string();
    let v1 = layout() == Layout::V1;
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "10");

    // podman's form: a file.
    update_file(&ctx, &id, &json!({"pids": {"limit": 25}})).assert_silent_success();
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "25");

    // containerd's and CRI-O's form: stdin.
    let (ok, err) = update_stdin(
        &ctx,
        &id,
        &json!({"pids": {"limit": -1}, "memory": {"limit": 134217728}, "cpu": {"quota": 50000}}),
    );
    assert!(ok, "update --resources - failed: {err}");
    assert!(err.is_empty(), "update wrote to stderr: {err}");
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "max");
    if v1 {
        assert_eq!(
            host_cgroup_read("memory", &cg, "memory.limit_in_bytes"),
            "134217728"
        );
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.cfs_quota_us"), "50000");
        // The period was left out: it keeps its value.
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.cfs_period_us"), "100000");
    } else {
        assert_eq!(host_cgroup_read("memory", &cg, "memory.max"), "134217728");
        assert_eq!(host_cgroup_read("cpu", &cg, "cpu.max"), "50000 100000");
    }

    // containerd resends the config's device rules with every update.
    let same_devices =
        json!({"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 30}});
    update_file(&ctx, &id, &same_devices).assert_silent_success();
    assert_eq!(host_cgroup_read("pids", &cg, "pids.max"), "30");
    if capsa_only("changed device rules are refused by update") {
        let other = json!({"devices": [{"allow": true, "access": "rwm"}]});
        update_file(&ctx, &id, &other).assert_error_mentions("linux.resources.devices");
    }

    // A CPU the host lacks: refused, the old value stays.
    let out = update_file(&ctx, &id, &json!({"cpu": {"cpus": "0-4095"}}));
    assert!(!out.success(), "an impossible cpuset was accepted:\n{out}");
    if capsa_only("the update error names linux.resources.cpu.cpus") {
        out.assert_error_mentions("linux.resources.cpu.cpus");
    }
    assert_ne!(host_cgroup_read("cpuset", &cg, "cpuset.cpus"), "0-4095");
    assert_eq!(ctx.status(&id), "running");

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
    // A container that is gone cannot be updated.
    assert!(!update_file(&ctx, &id, &json!({"pids": {"limit": 5}})).success());
}

/// A container writing an increasing counter to /out/tick every 20 ms.
fn ticking(ctx: &Ctx, prefix: &str) -> (String, Bundle, PathBuf) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    let out = b.with_out_dir();
    b.sh("i=0; while :; do i=$((i+1)); echo $i > /out/tick.tmp; mv /out/tick.tmp /out/tick; sleep 0.02; done");
    (id, b, out)
}

fn tick(out: &Path) -> u64 {
    fs::read_to_string(out.join("tick"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_stops_progress_and_resume_continues() {
    let ctx = Ctx::new();
    let (id, b, out) = ticking(&ctx, "res-pause");
    ctx.create_and_start(&b, &id);
    wait_until("the container to tick", WAIT, || tick(&out) > 2);

    ctx.cmd(&["pause", &id]).assert_silent_success();
    assert_eq!(ctx.status(&id), "paused");
    let pid = state_pid(&ctx.state(&id));
    assert!(pid_alive(pid), "a paused container's init must stay alive");
    let paused_at = tick(&out);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tick(&out),
        paused_at,
        "the container made progress while paused"
    );

    // Pausing twice and resuming a running container are errors.
    assert!(
        !ctx.cmd(&["pause", &id]).success(),
        "pause of a paused container"
    );
    ctx.cmd(&["resume", &id]).assert_silent_success();
    assert_eq!(ctx.status(&id), "running");
    wait_until("the container to tick again", WAIT, || {
        tick(&out) > paused_at
    });
    let out_resume = ctx.cmd(&["resume", &id]);
    assert!(!out_resume.success(), "resume of a running container");
    if capsa_only("resume of a running container says runc's words") {
        out_resume.assert_error_mentions("container not paused");
    }

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn a_paused_created_container_cannot_start_until_resumed() {
    let ctx = Ctx::new();
    let (id, b, out) = ticking(&ctx, "res-pcreated");
    ctx.create(&b, &id).assert_silent_success();
    ctx.cmd(&["pause", &id]).assert_silent_success();
    assert_eq!(ctx.status(&id), "paused");
    let start = ctx.start(&id);
    assert!(
        !start.success(),
        "start of a paused container succeeded:\n{start}"
    );
    ctx.cmd(&["resume", &id]).assert_silent_success();
    assert_eq!(ctx.status(&id), "created");
    ctx.start(&id).assert_silent_success();
    wait_until("the container to tick", WAIT, || tick(&out) > 0);
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn sigkill_reaches_a_paused_container() {
    let ctx = Ctx::new();
    let (id, b, _out) = ticking(&ctx, "res-pkill");
    ctx.create_and_start(&b, &id);
    ctx.cmd(&["pause", &id]).assert_silent_success();
    ctx.kill(&id, "KILL").assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn delete_force_removes_a_paused_container() {
    let ctx = Ctx::new();
    let (id, b, _out) = ticking(&ctx, "res-pdel");
    ctx.create_and_start(&b, &id);
    ctx.cmd(&["pause", &id]).assert_silent_success();
    let plain = ctx.delete(&id);
    assert!(
        !plain.success(),
        "delete without --force of a paused container:\n{plain}"
    );
    if capsa_only("the refusal names the paused status") {
        plain.assert_error_mentions("not stopped: paused");
    }
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn an_impossible_cpuset_fails_create_and_leaves_nothing() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-badcpu");
    b.set_resources(json!({"cpu": {"cpus": "0-4095"}}));
    let out = ctx.create(&b, &id);
    assert!(!out.success(), "an impossible cpuset was accepted:\n{out}");
    // runc adds a warning line about the OOM counter of the cgroup it removed.
    if capsa_only("one error line naming the field and the file") {
        let line = out.assert_error_line();
        assert!(
            line.contains("linux.resources.cpu.cpus") && line.contains("cpuset.cpus"),
            "{line}"
        );
    }
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn values_this_host_cannot_apply_are_named() {
    let v1 = layout() == Layout::V1;
    // CFQ's leaf weights are gone since Linux 5.0 (BFQ has none).
    let leaf_weight = Path::new("/sys/fs/cgroup/blkio/blkio.leaf_weight").exists();
    let net_cls = cgroup_mounts()
        .iter()
        .any(|m| m.super_options.split(',').any(|o| o == "net_cls"));
    let mut cases: Vec<(Value, &str)> = vec![(
        // The spec's rule (memory + swap >= memory): refused before the host.
        json!({"memory": {"limit": 67108864, "swap": 1048576}}),
        "linux.resources.memory.swap",
    )];
    if v1 && !leaf_weight {
        cases.push((
            json!({"blockIO": {"leafWeight": 500}}),
            "linux.resources.blockIO.leafWeight: /sys/fs/cgroup/blkio/",
        ));
    }
    if !net_cls {
        cases.push((
            json!({"network": {"classID": 1048577}}),
            "linux.resources.network.classID",
        ));
    }
    if v1 {
        cases.push((
            json!({"unified": {"memory.high": "1000000"}}),
            "linux.resources.unified.memory.high",
        ));
    }
    for (resources, field) in cases {
        let ctx = Ctx::new();
        let (id, mut b) = ctx.id_and_bundle("res-refused");
        b.set_resources(resources.clone());
        let out = ctx.create(&b, &id);
        if capsa_only(&format!("{field} is refused with one line naming it")) {
            let line = out.assert_error_line();
            assert!(line.contains(field), "{resources}: {line}");
        } else if out.success() {
            // runc skips controllers that are not mounted.
            ctx.delete_force(&id);
        }
        ctx.assert_nothing_left(&id, &b);
    }
}

#[test]
fn block_io_weight_and_throttles() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-blkio");
    let Some((major, minor)) = test_block_device() else {
        capsa_integration_test::loud(
            "SKIPPED block_io_weight_and_throttles: / is not on a block device and \
             /sys/block lists none",
        );
        return;
    };
    b.set_resources(json!({"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
    }}));
    b.args(&["sleep", "1000"]);
    ctx.create(&b, &id).assert_silent_success();
    let cg = b.cgroup_path().to_string();
    let dev = format!("{major}:{minor}");
    if layout() == Layout::V1 {
        // CFQ's blkio.weight where the kernel still has it, else BFQ's.
        let dir = host_cgroup_dir("blkio", &cg);
        let weight = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .find(|f| dir.join(f).exists())
            .expect("a blkio weight file");
        let text = host_cgroup_read("blkio", &cg, weight);
        assert!(
            text.lines()
                .any(|l| l.trim() == "500" || l.trim() == "default 500"),
            "{weight}: {text}"
        );
        let read_bps = host_cgroup_read("blkio", &cg, "blkio.throttle.read_bps_device");
        assert_eq!(read_bps, format!("{dev} 1048576"));
        let write_iops = host_cgroup_read("blkio", &cg, "blkio.throttle.write_iops_device");
        assert_eq!(write_iops, format!("{dev} 100"));
    } else {
        let max = host_cgroup_read("io", &cg, "io.max");
        assert!(
            max.contains(&format!("{dev} rbps=1048576")),
            "io.max: {max}"
        );
        assert!(max.contains("wiops=100"), "io.max: {max}");
    }
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// The block device holding `/` (throttling needs a whole disk, so a
/// partition's number is turned into its disk's through sysfs); when `/` is
/// not on one (an overlay, the VM's tmpfs), the first disk in /sys/block
/// (the VM's RAM disk); `None` without any.
fn test_block_device() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata("/").expect("stat /").dev();
    let (major, minor) = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        let mut disks: Vec<PathBuf> = fs::read_dir("/sys/block")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path()))
            .collect();
        disks.sort();
        let text = fs::read_to_string(disks.first()?.join("dev")).ok()?;
        let (a, b) = text.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    if sys.join("partition").exists() {
        let parent = fs::read_to_string(sys.join("../dev")).ok()?;
        let (a, b) = parent.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    Some((major, minor))
}

#[test]
fn kernel_memory_limits_are_ignored() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-kmem");
    b.set_resources(
        json!({"memory": {"limit": 67108864, "kernel": 33554432, "kernelTCP": 33554432}}),
    );
    let out = ctx.create(&b, &id);
    out.assert_success();
    if capsa_only("kernel memory is ignored silently") {
        out.assert_silent_success();
    }
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn hugetlb_goes_to_cgroup2_on_a_hybrid_host() {
    let mounts = cgroup_mounts();
    let v1_hugetlb = mounts
        .iter()
        .any(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "hugetlb"));
    let v1_any = mounts.iter().any(|m| m.fs_type == "cgroup");
    let v2 = mounts.iter().find(|m| m.fs_type == "cgroup2");
    let listed = v2
        .and_then(|v2| fs::read_to_string(v2.mount_point.join("cgroup.controllers")).ok())
        .unwrap_or_default();
    let Some(v2) =
        v2.filter(|_| v1_any && !v1_hugetlb && listed.split_whitespace().any(|c| c == "hugetlb"))
    else {
        capsa_integration_test::loud(
            "SKIPPED hugetlb_goes_to_cgroup2_on_a_hybrid_host: not a hybrid host with hugetlb \
             on cgroup2 only (pure v2 is cgroups.rs's v2_io_weight_and_hugetlb_with_its_reservation)",
        );
        return;
    };
    if !capsa_only("hugetlb limits through the cgroup2 side of a hybrid host (runc skips them)") {
        return;
    }
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("res-huge");
    b.set_resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}));
    b.args(&["sleep", "1000"]);
    ctx.create(&b, &id).assert_silent_success();
    let file = v2
        .mount_point
        .join(b.cgroup_path().trim_start_matches('/'))
        .join("hugetlb.2MB.max");
    assert_eq!(
        fs::read_to_string(&file)
            .expect("read hugetlb.2MB.max")
            .trim(),
        "4194304"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
