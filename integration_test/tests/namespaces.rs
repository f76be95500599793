//! Namespaces as config.json asks for them: a user namespace with id mappings, joining
//! existing namespaces by path (net/uts/ipc and pid), a time namespace with a boottime
//! offset, `--no-pivot`, and a container that shares every host namespace but mount.
//! Every test passes against runc 1.1.5 (the oracle) except for assertions guarded by
//! `runc_deviates` or `capsa_only`.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use capsa_integration_test::{
    all_pids, capsa_only, ns_of, pid_alive, read_pid_file, runc_deviates, state_pid, wait_for_file,
    wait_until, Bundle, Ctx, MARKER_VAR,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Host processes started by a test (`unshare … sleep 60`), killed with their children
/// when the guard drops, pass or fail.
struct Helper {
    child: Child,
}

impl Helper {
    /// Starts `unshare <flags> --fork --kill-child sleep 60`.
    fn unshare(flags: &[&str]) -> Helper {
        let child = Command::new("unshare")
            .args(flags)
            .args(["--fork", "--kill-child", "sleep", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run unshare (util-linux)");
        Helper { child }
    }

    /// The pid of the `unshare` process itself.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pids of the `unshare` process's children.
    fn children(&self) -> Vec<u32> {
        let p = self.pid();
        fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Waits until the forked `sleep` exists and has exec'd; returns its pid.
    fn forked_sleep(&self) -> u32 {
        let mut found = None;
        wait_until("unshare to fork its sleep", WAIT, || {
            found = self.children().into_iter().find(|c| {
                fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|s| s.trim() == "sleep")
            });
            found.is_some()
        });
        found.expect("sleep child")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let children = self.children();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for c in children {
            let _ = Command::new("kill")
                .args(["-KILL", &c.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Live processes carrying the bundle's marker whose command name is `comm`.
fn marked_processes(b: &Bundle, comm: &str) -> Vec<u32> {
    let needle = format!("{MARKER_VAR}={}", b.marker());
    all_pids()
        .into_iter()
        .filter(|&pid| pid_alive(pid))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| e.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// `lchown -R` without following symlinks.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    lchown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("lchown {}: {e}", path.display()));
    let meta = fs::symlink_metadata(path).expect("stat");
    if meta.is_dir() {
        for e in fs::read_dir(path).expect("read dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn user_namespace_with_id_mappings() {
    const HOST: u32 = 100_000;
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("userns");
    let out = b.with_out_dir();
    b.sh("id -u > /out/uid; cat /proc/self/uid_map > /out/uid_map; \
          cat /proc/self/gid_map > /out/gid_map; exec sleep 1000");
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "user" }));
        let map = json!([{ "containerID": 0, "hostID": HOST, "size": 65536 }]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    // The mapped root (host uid 100000) must own its rootfs and reach it.
    chown_tree(&b.rootfs(), HOST, HOST);
    chown_tree(&out, HOST, HOST);
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).expect("chmod bundle");

    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert_ne!(
        ns_of(&pid.to_string(), "user"),
        ns_of("self", "user"),
        "init is in the host's user namespace"
    );
    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("gid_map"), WAIT);
    wait_until("the container to exec sleep", WAIT, || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });

    assert_eq!(read_trimmed(&out.join("uid")), "0", "id -u inside");
    for map in ["uid_map", "gid_map"] {
        let text = read_trimmed(&out.join(map));
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(
            fields,
            ["0", "100000", "65536"],
            "/proc/self/{map} inside: {text:?}"
        );
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for key in ["Uid:", "Gid:"] {
        let ids: Vec<&str> = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("Uid/Gid line")
            .split_whitespace()
            .collect();
        assert_eq!(
            ids, ["100000"; 4],
            "{key} of init {pid} on the host: {ids:?}"
        );
    }

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn joining_net_uts_ipc_namespaces_by_path() {
    let ctx = Ctx::new();
    let helper = Helper::unshare(&["--net", "--uts", "--ipc"]);
    let sleep = helper.forked_sleep().to_string();
    for ns in ["net", "uts", "ipc"] {
        assert_ne!(ns_of(&sleep, ns), ns_of("self", ns), "helper {ns} ns");
    }

    let (id, mut b) = ctx.id_and_bundle("joinns");
    let out = b.with_out_dir();
    b.sh("readlink /proc/self/ns/net > /out/net; exec sleep 1000");
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([
            { "type": "pid" },
            { "type": "mount" },
            { "type": "cgroup" },
            { "type": "network", "path": format!("/proc/{sleep}/ns/net") },
            { "type": "uts", "path": format!("/proc/{sleep}/ns/uts") },
            { "type": "ipc", "path": format!("/proc/{sleep}/ns/ipc") },
        ]);
    });
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file).to_string();
    for ns in ["net", "uts", "ipc"] {
        assert_eq!(
            ns_of(&pid, ns),
            ns_of(&sleep, ns),
            "init did not join the helper's {ns} namespace"
        );
    }
    assert_ne!(
        ns_of(&pid, "pid"),
        ns_of("self", "pid"),
        "init shares the host's pid namespace"
    );
    assert_ne!(
        ns_of(&pid, "pid"),
        ns_of(&sleep, "pid"),
        "init is not in a new pid namespace"
    );
    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("net"), WAIT);
    wait_until("net to be written", WAIT, || {
        fs::read_to_string(out.join("net")).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(
        read_trimmed(&out.join("net")),
        ns_of(&sleep, "net"),
        "/proc/self/ns/net inside the container"
    );
    assert_eq!(ctx.status(&id), "running");

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
    // The joined namespaces outlive the container.
    assert!(
        pid_alive(sleep.parse().expect("pid")),
        "delete killed the helper"
    );
    drop(helper);
}

#[test]
fn joining_a_pid_namespace_by_path() {
    let ctx = Ctx::new();
    let helper = Helper::unshare(&["--pid"]);
    let sleep = helper.forked_sleep();
    let sleep_s = sleep.to_string();
    let helper_ns = ns_of(&sleep_s, "pid");
    assert_ne!(helper_ns, ns_of("self", "pid"), "helper pid ns");

    let (id, mut b) = ctx.id_and_bundle("joinpid");
    let out = b.with_out_dir();
    b.sh("echo $$ > /out/self.tmp; ps > /out/ps.tmp; \
          cat /out/ps.tmp > /out/ps; cat /out/self.tmp > /out/self; exec sleep 1000");
    b.edit(|c| {
        c["linux"]["namespaces"] = json!([
            { "type": "pid", "path": format!("/proc/{sleep}/ns/pid") },
            { "type": "mount" },
            { "type": "network" },
            { "type": "ipc" },
            { "type": "uts" },
            { "type": "cgroup" },
        ]);
    });
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert_eq!(
        ns_of(&pid.to_string(), "pid"),
        helper_ns,
        "init did not join the helper's pid namespace"
    );
    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("self"), WAIT);
    wait_until("self to be written", WAIT, || {
        fs::read_to_string(out.join("self")).is_ok_and(|s| s.ends_with('\n'))
    });

    let inner: u32 = read_trimmed(&out.join("self"))
        .parse()
        .expect("pid inside is a number");
    assert!(
        inner > 1,
        "the container's init must not be pid 1 in a joined pid namespace, got {inner}"
    );
    let ps = fs::read_to_string(out.join("ps")).expect("ps output");
    // The helper's sleep is pid 1 there.
    assert!(
        ps.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"1") && l.contains("sleep 60")
        }),
        "ps inside should show the helper's `sleep 60` as pid 1:\n{ps}"
    );

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
    assert!(pid_alive(sleep), "delete killed the helper's sleep");
    drop(helper);
}

/// Uptime in whole seconds from a `/proc/uptime` text.
fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("bad /proc/uptime: {text:?}"))
}

#[test]
fn time_namespace_with_a_boottime_offset() {
    // runc 1.1.5 has no time namespace (its `features` does not list "time"; added in 1.2).
    if !capsa_only("time namespaces with linux.timeOffsets (runc 1.1.5 does not support them)") {
        return;
    }
    const OFFSET: f64 = 86_400.0;
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("timens");
    let out = b.with_out_dir();
    b.sh(
        "cat /proc/uptime > /out/uptime.tmp; cat /out/uptime.tmp > /out/uptime; \
          exec sleep 1000",
    );
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({ "type": "time" }));
        c["linux"]["timeOffsets"] = json!({
            "boottime": { "secs": 86400, "nanosecs": 0 },
        });
    });
    let host_before = uptime_secs(&fs::read_to_string("/proc/uptime").expect("uptime"));
    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("uptime"), WAIT);
    wait_until("uptime to be written", WAIT, || {
        fs::read_to_string(out.join("uptime")).is_ok_and(|s| s.ends_with('\n'))
    });
    let host_after = uptime_secs(&fs::read_to_string("/proc/uptime").expect("uptime"));
    let inside = uptime_secs(&fs::read_to_string(out.join("uptime")).expect("uptime"));
    assert!(
        inside >= host_before + OFFSET && inside <= host_after + OFFSET + 1.0,
        "uptime inside ({inside}) must be the host's ({host_before}..{host_after}) plus {OFFSET}"
    );
    let pid = state_pid(&ctx.state(&id)).to_string();
    assert_ne!(
        ns_of(&pid, "time"),
        ns_of("self", "time"),
        "init shares the host's time namespace"
    );

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn no_pivot_still_confines_the_container_to_its_rootfs() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("nopivot");
    let out = b.with_out_dir();
    b.sh("ls -a / > /out/ls.tmp; cat /out/ls.tmp > /out/ls; exec sleep 1000");
    let pid_file = ctx.base().join("init.pid");
    ctx.cmd(&[
        "create",
        "--no-pivot",
        "--bundle",
        b.path_str(),
        "--pid-file",
        pid_file.to_str().expect("UTF-8"),
        &id,
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("ls"), WAIT);
    wait_until("ls to be written", WAIT, || {
        fs::read_to_string(out.join("ls")).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(ctx.status(&id), "running");

    let inside: BTreeSet<String> = fs::read_to_string(out.join("ls"))
        .expect("ls output")
        .split_whitespace()
        .filter(|e| *e != "." && *e != "..")
        .map(str::to_string)
        .collect();
    let rootfs: BTreeSet<String> = fs::read_dir(b.rootfs())
        .expect("read rootfs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        inside, rootfs,
        "with --no-pivot, `ls /` must show the rootfs, not the host"
    );
    let root_link = fs::read_link(format!("/proc/{pid}/root")).expect("readlink root");
    assert!(
        root_link.starts_with(b.rootfs()) || root_link == Path::new("/"),
        "init's root is {}",
        root_link.display()
    );

    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn sharing_every_host_namespace_but_mount() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("hostns");
    b.sh("sleep 100 & sleep 100");
    b.namespaces(&["mount"]);
    b.edit(|c| {
        // A hostname needs a private UTS namespace.
        c.as_object_mut().expect("config").remove("hostname");
        // The /sys/fs/cgroup mount without a cgroup namespace has its own test
        // (`cgroup_mount_without_a_cgroup_namespace`); this one is about delete --force.
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .retain(|m| m["type"] != "cgroup");
    });
    let pid_file = ctx.base().join("init.pid");
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file).to_string();
    for ns in ["pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(
            ns_of(&pid, ns),
            ns_of("self", ns),
            "init must share the host's {ns} namespace"
        );
    }
    assert_ne!(
        ns_of(&pid, "mnt"),
        ns_of("self", "mnt"),
        "init must have its own mount namespace"
    );
    ctx.start(&id).assert_silent_success();
    let mut sleeps = Vec::new();
    wait_until("both sleeps to run", WAIT, || {
        sleeps = marked_processes(&b, "sleep");
        sleeps.len() == 2
    });
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname"),
        hostname,
        "the container changed the host's hostname"
    );

    let out = ctx.delete_force(&id);
    if out.stderr.is_empty()
        || !runc_deviates(
            "delete --force is silent on success; runc 1.1.5 prints `Failed to remove cgroup \
             (will retry)` warnings while the killed processes exit",
        )
    {
        out.assert_silent_success();
    } else {
        out.assert_success();
    }
    for s in &sleeps {
        assert!(!pid_alive(*s), "sleep {s} survived delete --force");
    }
    ctx.assert_nothing_left(&id, &b);
}

/// The default `/sys/fs/cgroup` mount (type cgroup) in a container without a cgroup
/// namespace, as in runc 1.1.5's own `spec`: create must succeed and the container must see
/// its own cgroup there.
#[test]
fn cgroup_mount_without_a_cgroup_namespace() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("nocgns");
    let out = b.with_out_dir();
    b.sh(
        "ls /sys/fs/cgroup > /out/ls.tmp; cat /sys/fs/cgroup/pids/cgroup.procs > /out/procs.tmp; \
          cat /out/procs.tmp > /out/procs; cat /out/ls.tmp > /out/ls; exec sleep 1000",
    );
    b.namespaces(&["pid", "network", "ipc", "uts", "mount"]);
    let pid_file = ctx.base().join("init.pid");
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file).to_string();
    assert_eq!(
        ns_of(&pid, "cgroup"),
        ns_of("self", "cgroup"),
        "init must share the host's cgroup namespace"
    );
    ctx.start(&id).assert_silent_success();
    wait_for_file(&out.join("ls"), WAIT);
    wait_until("ls to be written", WAIT, || {
        fs::read_to_string(out.join("ls")).is_ok_and(|s| s.ends_with('\n'))
    });
    let ls = fs::read_to_string(out.join("ls")).expect("ls output");
    assert!(
        ls.split_whitespace().any(|e| e == "pids"),
        "/sys/fs/cgroup inside lacks the pids hierarchy:\n{ls}"
    );
    // The container's own cgroup, not the host's root: it holds the container's init.
    let procs = fs::read_to_string(out.join("procs")).expect("cgroup.procs");
    assert!(
        procs.split_whitespace().any(|p| p == "1"),
        "/sys/fs/cgroup/pids/cgroup.procs inside should list the container's init (pid 1):\n{procs}"
    );
    assert_eq!(ctx.status(&id), "running");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
