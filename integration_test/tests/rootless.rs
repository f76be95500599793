//! Rootless: a real unprivileged user, made by the test (`capsasec<pid>`, removed at
//! the end), writes a config with `spec --rootless` into a busybox bundle it owns and
//! runs create, start, state, kill and delete as itself (`setpriv --reuid --regid
//! --init-groups`), with `XDG_RUNTIME_DIR` set to a directory of its own and no
//! `--root`: the runtime must pick `$XDG_RUNTIME_DIR/<name>` itself. Against runc
//! (`CAPSA_RUNTIME=runc`) the same test is the oracle.
//!
//! It needs unprivileged user namespaces; when the host forbids them the test fails,
//! naming the sysctl, rather than pass without checking anything.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use capsa_integration_test::fs_fixtures::busybox_layer;
use capsa_integration_test::security::run_captured;
use capsa_integration_test::{all_pids, pid_alive, runtime, wait_until, CmdOutput, RuntimeKind};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Fails loudly, naming the sysctl, when unprivileged user namespaces are off.
fn require_unprivileged_userns() {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    for (path, off) in [
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/user/max_user_namespaces", "0"),
        (
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            "1",
        ),
    ] {
        if read(path).as_deref() == Some(off) {
            panic!(
                "rootless test: unprivileged user namespaces are disabled on this host \
                 ({path} = {off}); enable them to run this test"
            );
        }
    }
}

/// A system user made for this test and removed (with its processes) on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create() -> TestUser {
        let name = format!("capsasec{}", std::process::id());
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/nonexistent", "--shell", "/bin/sh", &name])
            .output()
            .expect("run useradd (package passwd)");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TestUser { name, uid, gid }
    }

    /// `<runtime> args...` as this user, in `cwd`, with `XDG_RUNTIME_DIR=xdg`.
    fn run(&self, xdg: &Path, cwd: &Path, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &self.name,
            "--regid",
            &self.name,
            "--init-groups",
        ])
        .arg("env")
        .arg("-i")
        .arg(format!("XDG_RUNTIME_DIR={}", xdg.display()))
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(runtime().path())
        .args(args)
        .current_dir(cwd);
        run_captured(cmd, TIMEOUT)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Whatever a failed test left running as the user goes first.
        for pid in all_pids() {
            let uid = fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|st| {
                    st.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|l| l.split_whitespace().next().map(str::to_string))
                });
            if uid == Some(self.uid.to_string()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    chown(path, Some(uid), Some(gid)).expect("chown");
    if fs::symlink_metadata(path).expect("lstat").is_dir() {
        for entry in fs::read_dir(path).expect("read_dir") {
            let entry = entry.expect("dir entry");
            if entry.file_type().expect("type").is_symlink() {
                std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).expect("lchown");
            } else {
                chown_tree(&entry.path(), uid, gid);
            }
        }
    }
}

fn status_of(out: &CmdOutput) -> String {
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{out}"));
    v["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_unprivileged_user_runs_the_whole_lifecycle() {
    capsa_integration_test::require_root();
    require_unprivileged_userns();
    let user = TestUser::create();
    let base = tempfile::Builder::new()
        .prefix("capsasec-rootless-")
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).expect("chmod base");
    let bundle: PathBuf = base.path().join("bundle");
    let xdg = base.path().join("xdg");
    busybox_layer(&bundle.join("rootfs"));
    fs::create_dir(&xdg).expect("mkdir xdg");
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).expect("chmod xdg");
    chown_tree(base.path(), user.uid, user.gid);
    chown(base.path(), Some(0), Some(0)).expect("base stays root's");

    // spec --rootless, as the user, then a long-running process instead of a shell.
    let out = user.run(&xdg, &bundle, &["spec", "--rootless"]);
    assert!(out.success(), "spec --rootless:\n{out}");
    let config_path = bundle.join("config.json");
    let mut config: Value =
        serde_json::from_str(&fs::read_to_string(&config_path).expect("config")).expect("JSON");
    assert_eq!(
        config["linux"]["uidMappings"][0]["hostID"], user.uid,
        "the caller's uid is mapped: {config}"
    );
    assert!(
        config["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .all(|n| n["type"] != "network"),
        "no network namespace: {config}"
    );
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sleep", "1000"]);
    fs::write(&config_path, config.to_string()).expect("write config");

    let id = format!("capsasec-rootless-{}", std::process::id());
    let bundle_str = bundle.to_str().expect("UTF-8");
    let out = user.run(&xdg, &bundle, &["create", "--bundle", bundle_str, &id]);
    assert!(out.success(), "create as {}:\n{out}", user.name);
    let state_dir = xdg.join(match runtime().kind() {
        RuntimeKind::Runc => "runc",
        _ => "capsa",
    });
    assert!(
        state_dir.join(&id).is_dir(),
        "the default root is $XDG_RUNTIME_DIR/<runtime>: no {}",
        state_dir.join(&id).display()
    );
    let mode = fs::metadata(&state_dir)
        .expect("state root")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1700, "the state root is 0700 and sticky");

    let state = user.run(&xdg, &bundle, &["state", &id]);
    assert_eq!(status_of(&state), "created", "{state}");
    let pid: Value = serde_json::from_str(&state.stdout).expect("state JSON");
    let pid = pid["pid"].as_u64().expect("pid") as u32;
    let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).expect("uid_map");
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(
        fields,
        ["0", &user.uid.to_string(), "1"],
        "root inside is the user outside"
    );

    let out = user.run(&xdg, &bundle, &["start", &id]);
    assert!(out.success(), "start:\n{out}");
    assert_eq!(
        status_of(&user.run(&xdg, &bundle, &["state", &id])),
        "running"
    );
    let out = user.run(&xdg, &bundle, &["kill", &id, "KILL"]);
    assert!(out.success(), "kill:\n{out}");
    wait_until("the container to stop", TIMEOUT, || {
        status_of(&user.run(&xdg, &bundle, &["state", &id])) == "stopped"
    });
    let out = user.run(&xdg, &bundle, &["delete", &id]);
    assert!(out.success(), "delete:\n{out}");
    assert!(!state_dir.join(&id).exists(), "delete removed the state");
    assert!(!pid_alive(pid), "the init {pid} is gone");
}
