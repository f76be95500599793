//! What `create` does differently without root (effective uid not 0), as
//! runc does for rootless containers: the cgroup is best-effort.
//!
//! An unprivileged user can usually not make directories in the host's
//! cgroup hierarchies (a cgroup2 subtree delegated to the user is the
//! exception). So the container's cgroup lives in the hierarchies the user
//! may write to and the others are left out, with a debug line; that is an
//! error only when `linux.resources` asks for limits (anything but
//! `devices`), since they would silently not apply. Device rules are not
//! applied: the user cannot make device nodes in its user namespace anyway
//! (they are bind-mounted), and attaching a device program needs
//! CAP_SYS_ADMIN on the host.
//!
//! The id maps: without CAP_SETGID in the parent user namespace the kernel
//! takes a `gid_map` only after `setgroups` is set to `deny` (user_namespaces(7));
//! the container's process then keeps the groups it has (`init/process.rs`
//! skips an empty setgroups there).

use std::path::Path;

use nix::unistd::{access, AccessFlags};

use crate::cgroups::ContainerCgroup;
use crate::error::Error;

/// Whether capsa runs without root, and so creates rootless containers.
pub(super) fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Before the gid map of a rootless container's user namespace: `deny` to
/// `<proc>/<pid>/setgroups`.
pub(super) fn deny_setgroups(proc_root: &Path, pid: i32) -> Result<(), Error> {
    let path = proc_root.join(pid.to_string()).join("setgroups");
    std::fs::write(&path, "deny").map_err(Error::sys(format!(
        "rootless: write deny to {} (needed before gid_map)",
        path.display()
    )))
}

/// Leaves out of `cgroup` the hierarchies the user cannot create it in;
/// fails, naming the first such hierarchy, when `resources` asks for limits.
pub(super) fn usable_cgroup(
    cgroup: &mut ContainerCgroup,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<(), Error> {
    let limits = asks_for_limits(resources);
    let mut refused = None;
    cgroup.retain_hierarchies(|h| {
        let ok = writable_ancestor(h.dir());
        if !ok {
            tracing::debug!(
                "rootless: no write access to create {}; the container has no cgroup in that hierarchy",
                h.dir().display()
            );
            refused.get_or_insert_with(|| h.dir().to_path_buf());
        }
        ok
    });
    match refused {
        Some(dir) if limits => Err(Error::Unsupported(format!(
            "linux.resources for a rootless container whose cgroup {} is not writable by the user (delegate a cgroup2 subtree and set linux.cgroupsPath inside it)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether `resources` holds anything but `devices`.
fn asks_for_limits(resources: Option<&oci_spec::runtime::LinuxResources>) -> bool {
    let Some(resources) = resources else {
        return false;
    };
    match serde_json::to_value(resources) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.remove("devices");
            fields.values().any(|v| !v.is_null())
        }
        _ => true,
    }
}

/// Whether the nearest existing directory at or above `dir` lets us create
/// entries (or, when `dir` exists, write to it).
fn writable_ancestor(dir: &Path) -> bool {
    let mut at = Some(dir);
    while let Some(path) = at {
        if path.exists() {
            return access(path, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
        }
        at = path.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_limits_other_than_devices_count() {
        assert!(!asks_for_limits(None));
        let devices: oci_spec::runtime::LinuxResources =
            serde_json::from_str(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#).unwrap();
        assert!(!asks_for_limits(Some(&devices)));
        let memory: oci_spec::runtime::LinuxResources =
            serde_json::from_str(r#"{"memory": {"limit": 1048576}}"#).unwrap();
        assert!(asks_for_limits(Some(&memory)));
    }

    #[test]
    fn the_nearest_existing_ancestor_decides() {
        let dir = tempfile::tempdir().unwrap();
        assert!(writable_ancestor(&dir.path().join("a/b/c")));
        assert!(!writable_ancestor(Path::new("/proc/1/nonexistent/x")));
    }
}
