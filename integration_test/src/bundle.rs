//! OCI bundles for tests: a busybox rootfs plus a `config.json` kept as a
//! `serde_json::Value` that tests edit freely (including into invalid shapes).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

/// Where the busybox binary comes from (Debian package `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// Applets linked into `rootfs/bin` (`ulimit` is an ash builtin, so `sh` covers it).
const APPLETS: &[&str] = &[
    "sh", "ash", "true", "false", "sleep", "cat", "ls", "echo", "hostname", "id", "ps", "mount",
    "grep", "ip", "readlink", "stat", "test", "[", "env", "pwd", "head", "wc", "touch", "mkdir",
    "rm", "printf", "kill", "uname", "tr", "sed", "cut", "tail", "mkfifo",
];

/// `PATH` inside the container (runc's default).
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Name of the environment variable that tags every process a test starts (container
/// process and hooks), so the leftover check can find stragglers.
pub const MARKER_VAR: &str = "CAPSA_TEST_MARKER";

/// The six hook kinds of the runtime spec, in the order the spec runs them.
pub const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A bundle directory (removed on drop) with a busybox rootfs and a config.json.
///
/// Every editing method rewrites `config.json` at once, so what a test sees in
/// [`Bundle::config`] is what the runtime reads.
pub struct Bundle {
    dir: tempfile::TempDir,
    path: PathBuf,
    config: Value,
    marker: String,
    cgroup_path: String,
}

impl Bundle {
    /// A bundle for container `id`: process `["true"]`, cgroupsPath `/capsa-test/<id>`,
    /// and the marker variable in the process environment. `id` must be a plain name
    /// (it becomes a cgroup directory); tests of bad ids build the bundle with a good one.
    pub fn new(id: &str) -> Bundle {
        assert!(
            !id.is_empty() && !id.contains('/') && id != "." && id != "..",
            "Bundle::new needs a plain name, got {id:?}"
        );
        let dir = tempfile::Builder::new()
            .prefix("capsa-it-bundle-")
            .tempdir()
            .expect("create bundle temp dir");
        let path = fs::canonicalize(dir.path()).expect("canonicalize bundle dir");
        populate_rootfs(&path.join("rootfs"));
        static N: AtomicUsize = AtomicUsize::new(0);
        let marker = format!(
            "{id}.{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let cgroup_path = format!("/capsa-test/{id}");
        let config = default_config(&marker, &cgroup_path);
        let b = Bundle {
            dir,
            path,
            config,
            marker,
            cgroup_path,
        };
        b.write();
        b
    }

    /// Absolute, canonical path of the bundle directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bundle path as a `&str`, for command lines.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("bundle path is UTF-8")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The unique value of [`MARKER_VAR`] for this bundle's processes.
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// `CAPSA_TEST_MARKER=<marker>`.
    pub fn marker_env(&self) -> String {
        format!("{MARKER_VAR}={}", self.marker)
    }

    /// The `linux.cgroupsPath` last set (default `/capsa-test/<id>`).
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup_path
    }

    /// Writes the current config to `config.json`.
    pub fn write(&self) -> &Self {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.config_path(), text).expect("write config.json");
        self
    }

    /// Replaces `config.json` with arbitrary text (for broken-config tests).
    pub fn write_raw_config(&self, text: &str) -> &Self {
        fs::write(self.config_path(), text).expect("write config.json");
        self
    }

    /// Edits the config with a closure, then writes it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        if let Some(p) = self
            .config
            .pointer("/linux/cgroupsPath")
            .and_then(Value::as_str)
        {
            self.cgroup_path = p.to_string();
        }
        self.write();
        self
    }

    /// Replaces `linux.resources` with `resources`, keeping its device rules
    /// (the default bundle's, which a container needs).
    pub fn set_resources(&mut self, resources: Value) -> &mut Self {
        self.edit(|c| {
            let devices = c["linux"]["resources"]["devices"].clone();
            c["linux"]["resources"] = resources;
            c["linux"]["resources"]["devices"] = devices;
        })
    }

    /// `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.edit(|c| c["process"]["args"] = json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Sets (or replaces) one variable of `process.env`.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        let entry = format!("{key}={value}");
        let prefix = format!("{key}=");
        self.edit(|c| {
            let env = c["process"]["env"].as_array_mut().expect("process.env");
            env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
            env.push(json!(entry));
        })
    }

    pub fn hostname(&mut self, name: &str) -> &mut Self {
        self.edit(|c| c["hostname"] = json!(name))
    }

    /// Replaces `linux.namespaces` with these types (no paths).
    pub fn namespaces(&mut self, types: &[&str]) -> &mut Self {
        let list: Vec<Value> = types.iter().map(|t| json!({ "type": t })).collect();
        self.edit(|c| c["linux"]["namespaces"] = Value::Array(list))
    }

    pub fn cgroups_path(&mut self, path: &str) -> &mut Self {
        self.edit(|c| c["linux"]["cgroupsPath"] = json!(path))
    }

    /// Appends a hook of `kind` (one of [`HOOK_KINDS`]); see [`Hook`].
    pub fn add_hook(&mut self, kind: &str, hook: Hook) -> &mut Self {
        assert!(HOOK_KINDS.contains(&kind), "unknown hook kind {kind:?}");
        let value = hook.into_value();
        self.edit(|c| {
            if !c["hooks"].is_object() {
                c["hooks"] = json!({});
            }
            if !c["hooks"][kind].is_array() {
                c["hooks"][kind] = json!([]);
            }
            c["hooks"][kind]
                .as_array_mut()
                .expect("hooks array")
                .push(value);
        })
    }

    /// Adds a read-write bind mount of host directory `source` at `destination` and
    /// creates the mount point in the (read-only) rootfs.
    pub fn bind_mount(&mut self, source: &Path, destination: &str) -> &mut Self {
        let inside = self.rootfs().join(destination.trim_start_matches('/'));
        fs::create_dir_all(&inside).expect("create bind mount point in rootfs");
        let m = json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", "rw"],
        });
        self.edit(|c| c["mounts"].as_array_mut().expect("mounts").push(m))
    }

    /// Creates `<bundle>/out` on the host, bind-mounts it read-write at `/out` in the
    /// container and returns the host path. Use it to see what the container did.
    pub fn with_out_dir(&mut self) -> PathBuf {
        let host = self.path.join("out");
        fs::create_dir_all(&host).expect("create out dir");
        self.bind_mount(&host.clone(), "/out");
        host
    }

    /// Keeps the temp dir alive; exposed so a test can move the bundle around.
    pub fn temp_dir(&self) -> &tempfile::TempDir {
        &self.dir
    }
}

/// One hook entry: `{path, args, env, timeout}`. The environment always carries the
/// bundle's marker so a hook that outlives its runtime shows up as a leftover.
#[derive(Debug, Clone)]
pub struct Hook {
    path: String,
    args: Vec<String>,
    env: Vec<String>,
    timeout: Option<u64>,
}

impl Hook {
    /// A hook running `/bin/sh -c script` with `PATH` and the bundle marker set.
    pub fn sh(bundle: &Bundle, script: &str) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![format!("PATH={CONTAINER_PATH}"), bundle.marker_env()],
            timeout: None,
        }
    }

    /// A hook that appends `<name> <state JSON from stdin>\n` to `log` (a path as the
    /// hook sees it).
    pub fn log_state(bundle: &Bundle, name: &str, log: &str) -> Hook {
        Hook::sh(
            bundle,
            &format!("printf '%s ' {name} >> {log}; cat >> {log}; echo >> {log}"),
        )
    }

    pub fn timeout(mut self, seconds: u64) -> Hook {
        self.timeout = Some(seconds);
        self
    }

    fn into_value(self) -> Value {
        let mut v = json!({ "path": self.path, "args": self.args, "env": self.env });
        if let Some(t) = self.timeout {
            v["timeout"] = json!(t);
        }
        v
    }
}

/// Reads the hard limit on open files of this process, so the config never asks for
/// more (the host lacks CAP_SYS_RESOURCE).
fn nofile_limit() -> u64 {
    let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|h| h.parse::<u64>().ok());
    hard.map_or(1024, |h| h.min(1024))
}

/// A config like `runc spec` writes it, with terminal off, the cgroup namespace added,
/// no ambient capabilities and an explicit cgroupsPath.
fn default_config(marker: &str, cgroup_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let nofile = nofile_limit();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["true"],
            "env": [format!("PATH={CONTAINER_PATH}"), format!("{MARKER_VAR}={marker}")],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "permitted": caps,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "capsa-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                          "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "cgroupsPath": cgroup_path,
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Fills `rootfs` with busybox, its applet links, the usual empty directories and a
/// minimal passwd/group.
fn populate_rootfs(rootfs: &Path) {
    check_busybox();
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(rootfs.join(d)).expect("create rootfs dir");
    }
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox into rootfs");
    for applet in APPLETS {
        symlink("busybox", rootfs.join("bin").join(applet)).expect("link busybox applet");
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
         app:x:1000:1000:app:/tmp:/bin/sh\n",
    )
    .expect("write /etc/passwd");
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n",
    )
    .expect("write /etc/group");
}

/// Panics unless `/bin/busybox` exists and is statically linked (no ELF interpreter).
fn check_busybox() {
    let bytes = match fs::read(BUSYBOX) {
        Ok(b) => b,
        Err(e) => panic!(
            "{BUSYBOX} is missing ({e}): the test rootfs is built from it; \
             install busybox-static (`apt-get install busybox-static`)"
        ),
    };
    if has_elf_interpreter(&bytes) {
        panic!(
            "{BUSYBOX} is dynamically linked and cannot run in a bare rootfs; \
             install busybox-static (`apt-get install busybox-static`)"
        );
    }
}

/// True when a 64-bit little-endian ELF image has a PT_INTERP program header.
fn has_elf_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    if elf.get(0..4) != Some(b"\x7fELF".as_slice()) || elf.get(4) != Some(&2) {
        panic!("{BUSYBOX} is not a 64-bit ELF binary; install busybox-static");
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return true;
    };
    (0..usize::from(phnum)).any(|i| {
        let off = phoff as usize + i * usize::from(phentsize);
        u32_at(off) == Some(3) // PT_INTERP
    })
}
