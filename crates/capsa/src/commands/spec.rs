//! `spec`: writes the default config.json (runc's, with our hostname).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::{CommandError, CommandResult};
use crate::cli::SpecArgs;
use capsa_spec::default_config::Rootless;

pub fn spec(a: SpecArgs) -> CommandResult {
    let dir = a.bundle.unwrap_or_else(|| ".".into());
    let path = dir.join("config.json");
    let caller = a.rootless.then(|| Rootless {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        cgroup_delegated: cgroup_delegated(Path::new("/sys/fs/cgroup"), Path::new("/proc")),
    });
    let config = capsa_spec::default_config::default_config(caller);
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| CommandError::Usage(format!("cannot render config.json: {e}")))?;
    // create_new: never overwrite a config the user wrote (runc refuses too).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| CommandError::Io {
            what: if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists; remove it first", path.display())
            } else {
                format!("cannot write {}", path.display())
            },
            source: e,
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| CommandError::Io {
            what: format!("write {}", path.display()),
            source: e,
        })?;
    Ok(ExitCode::SUCCESS)
}

/// Whether the caller's cgroup is delegated to it: `cgroup_root` is a
/// cgroup2 mount (a pure v2 host) and the caller may write to its own cgroup
/// directory and that directory's `cgroup.procs` (systemd's `Delegate=`
/// chowns both to the user).
fn cgroup_delegated(cgroup_root: &Path, proc_root: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    let v2 = nix::sys::statfs::statfs(cgroup_root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    let own = std::fs::read_to_string(proc_root.join("self/cgroup")).unwrap_or_default();
    let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let dir = cgroup_root.join(path.trim_start_matches('/'));
    v2 && access(&dir, AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
}
