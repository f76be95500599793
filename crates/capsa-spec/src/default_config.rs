//! The starter `config.json` written by `capsa spec`, equivalent to what `runc spec` writes.
//!
//! Rootful: a shell as root with a minimal capability set, the usual /proc, /dev, /sys mounts and
//! pid, network, ipc, uts, mount and cgroup namespaces, all devices denied.
//!
//! Rootless (`runc spec --rootless`): the caller's uid and gid are mapped to root in a new user
//! namespace; there is no network namespace (an unprivileged user cannot configure one); /sys is
//! bind-mounted from the host, since mounting a fresh sysfs needs a network namespace we own;
//! mount options that name a host gid/uid (devpts `gid=5`) are dropped because that id is not
//! mapped; and there are no cgroup resources, which the user usually cannot set. The cgroup
//! namespace is kept only when the caller's cgroup is delegated to it on a cgroup2 host
//! ([`Rootless::cgroup_delegated`], found by the caller: this crate makes no Linux calls);
//! otherwise the container would see, as its root, a cgroup it cannot use.

use serde_json::{json, Value};

/// Runtime-spec version written into `ociVersion`.
pub const OCI_VERSION: &str = "1.2.0";

/// Capabilities the default process keeps in its bounding, effective and permitted sets.
/// (runc ≥1.1 leaves the inheritable and ambient sets out.)
const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The caller of `spec --rootless`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rootless {
    /// Effective uid and gid, mapped to root inside the container.
    pub uid: u32,
    pub gid: u32,
    /// The caller's own cgroup is a cgroup2 directory it may manage.
    pub cgroup_delegated: bool,
}

/// Builds the starter config: rootless for `Some` caller, else rootful.
pub fn default_config(rootless: Option<Rootless>) -> Value {
    let mut linux = json!({
        "namespaces": namespaces(rootless),
        "maskedPaths": [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
            "/sys/devices/virtual/tpm",
        ],
        "readonlyPaths": [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ],
    });
    match rootless {
        Some(Rootless { uid, gid, .. }) => {
            linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
            linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
        }
        None => {
            linux["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
        }
    }

    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "capsa",
        "mounts": mounts(rootless.is_some()),
        "linux": linux,
    })
}

fn namespaces(rootless: Option<Rootless>) -> Value {
    let mut kinds = vec!["pid"];
    if rootless.is_none() {
        kinds.push("network");
    }
    kinds.extend(["ipc", "uts", "mount"]);
    if rootless.is_none_or(|r| r.cgroup_delegated) {
        kinds.push("cgroup");
    }
    if rootless.is_some() {
        kinds.push("user");
    }
    kinds.iter().map(|kind| json!({ "type": kind })).collect()
}

fn mounts(rootless: bool) -> Value {
    let mount = |destination: &str, kind: &str, source: &str, options: &[&str]| {
        let mut m = json!({ "destination": destination, "type": kind, "source": source });
        if !options.is_empty() {
            m["options"] = json!(options);
        }
        m
    };
    let devpts_options: &[&str] = if rootless {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let sys = if rootless {
        mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )
    } else {
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )
    };
    json!([
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"]
        ),
        mount("/dev/pts", "devpts", "devpts", devpts_options),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"]
        ),
        sys,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"]
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    fn spec(rootless: Option<Rootless>) -> Spec {
        serde_json::from_value(default_config(rootless)).unwrap()
    }

    fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
        let linux = spec.linux().as_ref().unwrap();
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|ns| ns.typ())
            .collect()
    }

    fn mount_options(spec: &Spec, destination: &str) -> Vec<String> {
        let mount = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some(destination))
            .unwrap();
        mount.options().clone().unwrap_or_default()
    }

    #[test]
    fn rootful() {
        let spec = spec(None);
        assert_eq!(spec.version(), "1.2.0");
        assert_eq!(spec.hostname().as_deref(), Some("capsa"));
        use LinuxNamespaceType::*;
        assert_eq!(
            namespace_types(&spec),
            [Pid, Network, Ipc, Uts, Mount, Cgroup]
        );

        let destinations: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert!(mount_options(&spec, "/dev/pts").contains(&"gid=5".to_owned()));
        assert!(mount_options(&spec, "/proc").is_empty());

        let process = spec.process().as_ref().unwrap();
        assert!(process.terminal().unwrap());
        assert_eq!(process.args().as_ref().unwrap(), &["sh"]);
        assert_eq!(process.no_new_privileges(), Some(true));
        let caps = process.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        let rlimits = process.rlimits().as_ref().unwrap();
        assert_eq!((rlimits[0].hard(), rlimits[0].soft()), (1024, 1024));

        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path().to_str(), Some("rootfs"));
        assert_eq!(root.readonly(), Some(true));

        let linux = spec.linux().as_ref().unwrap();
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(devices.len(), 1);
        assert!(!devices[0].allow());
        assert_eq!(devices[0].access().as_deref(), Some("rwm"));
        assert!(linux.uid_mappings().is_none());
        assert_eq!(linux.masked_paths().as_ref().unwrap()[0], "/proc/acpi");
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    }

    #[test]
    fn rootless() {
        let caller = Rootless {
            uid: 1000,
            gid: 1001,
            cgroup_delegated: false,
        };
        let spec = spec(Some(caller));
        use LinuxNamespaceType::*;
        assert_eq!(namespace_types(&spec), [Pid, Ipc, Uts, Mount, User]);
        let delegated = Rootless {
            cgroup_delegated: true,
            ..caller
        };
        assert_eq!(
            namespace_types(&self::spec(Some(delegated))),
            [Pid, Ipc, Uts, Mount, Cgroup, User]
        );

        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.resources().is_none());
        let uid = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (uid.host_id(), uid.container_id(), uid.size()),
            (1000, 0, 1)
        );
        let gid = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!(
            (gid.host_id(), gid.container_id(), gid.size()),
            (1001, 0, 1)
        );

        let sys = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination().to_str() == Some("/sys"))
            .unwrap();
        assert_eq!(sys.typ().as_deref(), Some("none"));
        assert_eq!(sys.source().as_ref().and_then(|s| s.to_str()), Some("/sys"));
        assert_eq!(
            mount_options(&spec, "/sys"),
            ["rbind", "nosuid", "noexec", "nodev", "ro"]
        );
        assert!(!mount_options(&spec, "/dev/pts")
            .iter()
            .any(|o| o.starts_with("gid=") || o.starts_with("uid=")));
    }
}
