//! capsa's systemd cgroup driver (`--systemd-cgroup`) against a D-Bus test
//! double: a real `dbus-daemon` on a private socket and a mock systemd
//! manager (`systemd/mock_systemd1.py`, python3-dbus) that records every call
//! with its exact D-Bus types, makes and removes the unit's cgroup
//! directories as systemd does, and emits `JobRemoved`. This host has no
//! systemd running; docs/testing.md says why it is a double.
//!
//! capsa is pointed at the private bus with `DBUS_SYSTEM_BUS_ADDRESS` at
//! `create` only: later commands run without the flag and without the
//! variable, from what the state recorded. capsa only (runc refuses its
//! systemd driver on a host that was not booted with systemd).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use capsa_integration_test::{
    capsa_only, cgroup_mounts, pid_alive, run_captured, state_pid, CmdOutput, Ctx,
};
use serde_json::{json, Value};

const PYTHON: &str = "/usr/bin/python3";

/// A private bus with the mock systemd on it; both are stopped on drop.
struct SystemdDouble {
    daemon: Child,
    mock: Child,
    dir: tempfile::TempDir,
    address: String,
}

impl SystemdDouble {
    fn start() -> SystemdDouble {
        let daemon_bin = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "MISSING dbus-daemon: install the Debian package `dbus` (scripts/test.sh does)"
                )
            });
        let probe = Command::new(PYTHON)
            .args(["-c", "import dbus, dbus.service, gi"])
            .status();
        assert!(
            probe.is_ok_and(|s| s.success()),
            "MISSING python3-dbus / python3-gi for {PYTHON}: install the Debian packages \
             python3-dbus and python3-gi (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("sd-bus-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let config = dir.path().join("bus.conf");
        fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .expect("write bus config");
        let daemon = Command::new(daemon_bin)
            .args(["--nofork", "--nopidfile", "--config-file"])
            .arg(&config)
            .stdout(Stdio::null())
            // It says it cannot raise its fd limit (no CAP_SYS_RESOURCE here).
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon made no socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mock_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/mock_systemd1.py");
        let mut mock = Command::new(PYTHON)
            .arg(&mock_script)
            .arg(&address)
            .arg(dir.path().join("calls.jsonl"))
            .args(systemd_hierarchies())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mock systemd");
        let mut line = String::new();
        BufReader::new(mock.stdout.take().expect("mock stdout"))
            .read_line(&mut line)
            .expect("read the mock's READY");
        assert_eq!(line.trim(), "READY", "the mock systemd did not start");
        SystemdDouble {
            daemon,
            mock,
            dir,
            address,
        }
    }

    /// Every call the mock got, in order: `{"method": M, "args": [[sig, v]...]}`.
    fn calls(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.dir.path().join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn calls_of(&self, method: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["method"] == method)
            .collect()
    }

    /// `capsa --systemd-cgroup <args>` with the bus pointed at the double.
    fn capsa(&self, ctx: &Ctx, args: &[&str]) -> CmdOutput {
        capsa_with_bus(ctx, &self.address, args)
    }
}

impl Drop for SystemdDouble {
    fn drop(&mut self) {
        // SIGTERM lets the mock remove the directories of units left over.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.mock.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.mock.wait();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn capsa_with_bus(ctx: &Ctx, address: &str, args: &[&str]) -> CmdOutput {
    let mut full = vec![
        "--root",
        ctx.root().to_str().expect("utf-8 root"),
        "--systemd-cgroup",
    ];
    full.extend_from_slice(args);
    let describe = format!("`{} {}`", ctx.rt().path().display(), full.join(" "));
    let mut cmd = Command::new(ctx.rt().path());
    cmd.args(&full).env("DBUS_SYSTEM_BUS_ADDRESS", address);
    run_captured(&mut cmd, &describe)
}

/// The hierarchies systemd itself would make a unit's cgroup in here: the
/// cgroup2 mount, the named `systemd` one, and memory and pids (accounting
/// is on). capsa must make the others.
fn systemd_hierarchies() -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .filter(|m| {
            m.fs_type == "cgroup2"
                || m.super_options
                    .split(',')
                    .any(|o| ["name=systemd", "memory", "pids"].contains(&o))
        })
        .map(|m| m.mount_point)
        .collect()
}

/// Whether memory and pids are cgroup v1 controllers here (v1 property
/// names, v1 file names).
fn v1_host() -> bool {
    cgroup_mounts()
        .iter()
        .any(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "memory"))
}

/// The unit's directory in every hierarchy.
fn unit_dirs(cgroup: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.mount_point.join(cgroup.trim_start_matches('/')))
        .collect()
}

fn controller_file(controller: &str, cgroup: &str, v1: &str, v2: &str) -> String {
    let mounts = cgroup_mounts();
    let (mount, file) = match mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller))
    {
        Some(m) => (m, v1),
        None => (
            mounts
                .iter()
                .find(|m| m.fs_type == "cgroup2")
                .expect("cgroup2"),
            v2,
        ),
    };
    let path = mount
        .mount_point
        .join(cgroup.trim_start_matches('/'))
        .join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A slice of this test alone (no dash: it is not nested under another).
fn slice_for(id: &str) -> String {
    let plain: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("sd{plain}.slice")
}

fn prop<'a>(props: &'a Value, name: &str) -> Option<&'a Value> {
    props[1].as_array()?.iter().find_map(|p| {
        let fields = p[1].as_array()?;
        (fields[0][1] == name).then_some(&fields[1])
    })
}

fn prop_names(props: &Value) -> Vec<String> {
    props[1]
        .as_array()
        .expect("a(sv)")
        .iter()
        .map(|p| p[1][0][1].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn scope_lifecycle_with_limits_and_later_commands_without_the_flag() {
    if !capsa_only("the systemd cgroup driver against a D-Bus test double") {
        return;
    }
    let sd = SystemdDouble::start();
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("sd-life");
    let slice = slice_for(&id);
    b.cgroups_path(&format!("{slice}:sd:{id}"));
    b.edit(|c| {
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({"limit": 67108864});
        r["cpu"] = json!({"shares": 512, "quota": 20000, "period": 100000});
        r["pids"] = json!({"limit": 32});
    });
    b.write();
    let unit = format!("sd-{id}.scope");
    let cgroup = format!("/{slice}/{unit}");

    sd.capsa(&ctx, &["create", "--bundle", b.path_str(), &id])
        .assert_silent_success();
    let pid = state_pid(&ctx.state(&id));

    // The exact call: name, mode, every property with its D-Bus type.
    let starts = sd.calls_of("StartTransientUnit");
    assert_eq!(starts.len(), 1, "{starts:?}");
    let args = starts[0]["args"].as_array().unwrap();
    assert_eq!(args[0], json!(["s", unit]));
    assert_eq!(args[1], json!(["s", "replace"]));
    assert_eq!(args[3], json!(["a(sa(sv))", []]));
    let props = &args[2];
    assert_eq!(props[0], "a(sv)");
    let v1 = v1_host();
    let mut want = vec![
        "Description",
        "Slice",
        "Delegate",
        "PIDs",
        "MemoryAccounting",
        "CPUAccounting",
        if v1 {
            "BlockIOAccounting"
        } else {
            "IOAccounting"
        },
        "TasksAccounting",
        "DefaultDependencies",
        if v1 { "MemoryLimit" } else { "MemoryMax" },
        if v1 { "CPUShares" } else { "CPUWeight" },
        "CPUQuotaPeriodUSec",
        "CPUQuotaPerSecUSec",
        "TasksMax",
    ];
    assert_eq!(prop_names(props), want, "{props}");
    assert_eq!(
        prop(props, "Description").unwrap(),
        &json!(["s", format!("capsa container {unit}")])
    );
    assert_eq!(prop(props, "Slice").unwrap(), &json!(["s", slice]));
    assert_eq!(prop(props, "Delegate").unwrap(), &json!(["b", true]));
    assert_eq!(prop(props, "PIDs").unwrap(), &json!(["au", [["u", pid]]]));
    assert_eq!(
        prop(props, "DefaultDependencies").unwrap(),
        &json!(["b", false])
    );
    assert_eq!(prop(props, want[9]).unwrap(), &json!(["t", 67108864]));
    assert_eq!(
        prop(props, want[10]).unwrap(),
        &json!(["t", if v1 { 512 } else { 20 }])
    );
    assert_eq!(
        prop(props, "CPUQuotaPeriodUSec").unwrap(),
        &json!(["t", 100000])
    );
    assert_eq!(
        prop(props, "CPUQuotaPerSecUSec").unwrap(),
        &json!(["t", 200000])
    );
    assert_eq!(prop(props, "TasksMax").unwrap(), &json!(["t", 32]));
    want.clear();
    // Subscribed before starting, so that no JobRemoved was missed.
    let methods: Vec<String> = sd
        .calls()
        .iter()
        .map(|c| c["method"].as_str().unwrap().to_string())
        .collect();
    let first_start = methods
        .iter()
        .position(|m| m == "StartTransientUnit")
        .unwrap();
    assert!(
        methods[..first_start].contains(&"Subscribe".to_string()),
        "{methods:?}"
    );

    // The init is in the unit's cgroup in every hierarchy, and the files
    // hold the limits (written by capsa's cgroupfs code after systemd).
    for dir in unit_dirs(&cgroup) {
        let procs = fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(
            procs.split_whitespace().any(|p| p == pid.to_string()),
            "{} lacks {pid}",
            dir.display()
        );
    }
    assert_eq!(
        controller_file("memory", &cgroup, "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(
        controller_file("pids", &cgroup, "pids.max", "pids.max"),
        "32"
    );

    // Later commands: no flag, no bus variable; the state knows.
    assert_eq!(ctx.state(&id)["status"], "created");
    ctx.start(&id).assert_silent_success();
    assert_eq!(ctx.state(&id)["status"], "running");
    ctx.cmd(&["update", "--memory", "104857600", &id])
        .assert_silent_success();
    let sets = sd.calls_of("SetUnitProperties");
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["args"][0], json!(["s", unit]));
    assert_eq!(
        sets[0]["args"][1],
        json!(["b", true]),
        "runtime only, as runc"
    );
    let limit_name = if v1 { "MemoryLimit" } else { "MemoryMax" };
    assert_eq!(
        prop(&sets[0]["args"][2], limit_name).unwrap(),
        &json!(["t", 104857600])
    );
    assert_eq!(
        controller_file("memory", &cgroup, "memory.limit_in_bytes", "memory.max"),
        "104857600"
    );
    ctx.cmd(&["pause", &id]).assert_silent_success();
    assert_eq!(ctx.state(&id)["status"], "paused");
    ctx.cmd(&["resume", &id]).assert_silent_success();
    let ps = ctx.cmd(&["ps", "--format", "json", &id]);
    assert!(ps.stdout.contains(&pid.to_string()), "{ps}");

    ctx.cmd(&["delete", "--force", &id]).assert_silent_success();
    let stops = sd.calls_of("StopUnit");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["args"], json!([["s", unit], ["s", "replace"]]));
    assert!(!pid_alive(pid), "init {pid} survived delete");
    for dir in unit_dirs(&cgroup) {
        assert!(!dir.exists(), "{} left behind", dir.display());
        assert!(
            !dir.parent().unwrap().exists(),
            "slice {} left behind",
            dir.parent().unwrap().display()
        );
    }
    assert!(!ctx.root().join(&id).exists(), "state left behind");
}

#[test]
fn default_path_is_a_capsa_scope_in_system_slice() {
    if !capsa_only("the systemd cgroup driver's default unit") {
        return;
    }
    let sd = SystemdDouble::start();
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("sd-default");
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    b.write();
    sd.capsa(&ctx, &["create", "--bundle", b.path_str(), &id])
        .assert_silent_success();
    let starts = sd.calls_of("StartTransientUnit");
    let unit = format!("capsa-{id}.scope");
    assert_eq!(starts[0]["args"][0], json!(["s", unit]));
    assert_eq!(
        prop(&starts[0]["args"][2], "Slice").unwrap(),
        &json!(["s", "system.slice"])
    );
    let cgroup = format!("/system.slice/{unit}");
    assert!(unit_dirs(&cgroup).iter().all(|d| d.is_dir()), "no {cgroup}");
    ctx.cmd(&["delete", "--force", &id]).assert_silent_success();
    assert_eq!(sd.calls_of("StopUnit")[0]["args"][0], json!(["s", unit]));
    for dir in unit_dirs(&cgroup) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn an_existing_scope_is_refused_after_one_reset_and_nothing_is_left() {
    if !capsa_only("the systemd cgroup driver with a unit that exists") {
        return;
    }
    let sd = SystemdDouble::start();
    let ctx = Ctx::new();
    let (first, mut b1) = ctx.sleeper("sd-exists");
    let path = format!("{}:sd:shared", slice_for(&first));
    b1.cgroups_path(&path);
    b1.write();
    sd.capsa(&ctx, &["create", "--bundle", b1.path_str(), &first])
        .assert_silent_success();
    let (second, mut b2) = ctx.sleeper("sd-exists");
    b2.cgroups_path(&path);
    b2.write();
    let out = sd.capsa(&ctx, &["create", "--bundle", b2.path_str(), &second]);
    out.assert_error_mentions("systemd unit sd-shared.scope already exists");
    let methods: Vec<String> = sd
        .calls()
        .iter()
        .map(|c| c["method"].as_str().unwrap().to_string())
        .collect();
    let tail: Vec<&str> = methods
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    assert!(
        tail.windows(3).any(|w| w
            == [
                "StartTransientUnit",
                "ResetFailedUnit",
                "StartTransientUnit"
            ]),
        "one reset then one retry, as runc: {methods:?}"
    );
    assert!(
        sd.calls_of("StopUnit").is_empty(),
        "the refused create stopped a unit that was not its own: {methods:?}"
    );
    assert!(
        !ctx.root().join(&second).exists(),
        "state of the refused container left"
    );
    // The first container's unit is untouched.
    assert_eq!(ctx.state(&first)["status"], "created");
    ctx.cmd(&["delete", "--force", &first])
        .assert_silent_success();
    assert_eq!(sd.calls_of("StopUnit").len(), 1);
}

#[test]
fn a_failed_job_and_an_unreachable_bus_fail_cleanly() {
    if !capsa_only("the systemd cgroup driver's errors") {
        return;
    }
    let sd = SystemdDouble::start();
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("sd-fail");
    let slice = slice_for(&id);
    b.cgroups_path(&format!("{slice}:sd:jobfails"));
    b.write();
    let out = sd.capsa(&ctx, &["create", "--bundle", b.path_str(), &id]);
    out.assert_error_mentions(
        "systemd unit sd-jobfails.scope: the start job finished with result \"failed\"",
    );
    assert!(!ctx.root().join(&id).exists(), "state left behind");
    for dir in unit_dirs(&format!("/{slice}/sd-jobfails.scope")) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    let (id, mut b) = ctx.sleeper("sd-nobus");
    b.cgroups_path(&format!("{}:sd:{id}", slice_for(&id)));
    b.write();
    let nobus = ctx.base().join("no-such-bus");
    let out = capsa_with_bus(
        &ctx,
        &format!("unix:path={}", nobus.display()),
        &["create", "--bundle", b.path_str(), &id],
    );
    out.assert_error_mentions(&format!(
        "cannot connect to the D-Bus socket unix:path={}",
        nobus.display()
    ));
    assert!(!ctx.root().join(&id).exists(), "state left behind");

    // Without the flag, the systemd form is refused, naming the flag.
    let out = ctx.create(&b, &id);
    out.assert_error_mentions("needs --systemd-cgroup");
}
