//! Host detection: which cgroup hierarchies are mounted where, and which
//! cgroup the runtime itself is in. Parsing only; nothing is touched.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::path::CgroupPath;
use super::{CgroupError, ContainerCgroup, HierarchyDir};

/// How cgroups are set up on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v1 hierarchies.
    V1,
    /// cgroup v1 hierarchies plus a cgroup2 mount (usually
    /// `/sys/fs/cgroup/unified`, with no controllers enabled in it).
    Hybrid,
    /// Only cgroup2, usually at `/sys/fs/cgroup`.
    V2,
}

/// The host's cgroup hierarchies, detected once per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHost {
    mode: CgroupMode,
    hierarchies: Vec<HostHierarchy>,
    /// Kept to name it in errors about relative paths.
    self_cgroup: PathBuf,
}

/// One mounted hierarchy (co-mounted v1 controllers such as `cpu,cpuacct`
/// form one hierarchy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostHierarchy {
    mount_point: PathBuf,
    controllers: Vec<String>,
    is_v2: bool,
    own_cgroup: Option<String>,
}

/// A `cgroup` or `cgroup2` line of mountinfo.
#[derive(Debug)]
struct CgroupMount {
    /// `major:minor`: the same for every mount of one hierarchy.
    device: String,
    /// The directory of the hierarchy that is mounted, usually `/`.
    root: String,
    mount_point: PathBuf,
    is_v2: bool,
    super_options: Vec<String>,
}

/// A line of `/proc/self/cgroup`: `id:controllers:path`.
#[derive(Debug)]
struct OwnCgroup {
    /// Empty for the cgroup2 line `0::/path`.
    controllers: Vec<String>,
    path: String,
}

/// Super options of a v1 mount that are not controllers. Only used when
/// `/proc/self/cgroup` has no line for the hierarchy.
const NON_CONTROLLER_OPTIONS: &[&str] = &[
    "rw",
    "ro",
    "none",
    "all",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
];

impl CgroupHost {
    /// Reads `mountinfo` (normally `/proc/self/mountinfo`) and `self_cgroup`
    /// (normally `/proc/self/cgroup`) and finds every cgroup hierarchy.
    ///
    /// A hierarchy mounted more than once is kept once: its first mount of
    /// the whole hierarchy (root `/`), else its first mount.
    pub fn detect(mountinfo: &Path, self_cgroup: &Path) -> Result<Self, CgroupError> {
        let mounts = parse_mountinfo(&read_text(mountinfo)?, mountinfo)?;
        let own = parse_self_cgroup(&read_text(self_cgroup)?, self_cgroup)?;

        let mut chosen: Vec<CgroupMount> = Vec::new();
        for mount in mounts {
            match chosen.iter_mut().find(|c| c.device == mount.device) {
                Some(kept) if kept.root != "/" && mount.root == "/" => *kept = mount,
                Some(_) => {}
                None => chosen.push(mount),
            }
        }
        let has_v1 = chosen.iter().any(|m| !m.is_v2);
        let has_v2 = chosen.iter().any(|m| m.is_v2);
        let mode = match (has_v1, has_v2) {
            (true, false) => CgroupMode::V1,
            (true, true) => CgroupMode::Hybrid,
            (false, true) => CgroupMode::V2,
            (false, false) => return Err(CgroupError::NoCgroupMounts(mountinfo.to_path_buf())),
        };
        let hierarchies = chosen.iter().map(|m| hierarchy(m, &own)).collect();
        Ok(Self {
            mode,
            hierarchies,
            self_cgroup: self_cgroup.to_path_buf(),
        })
    }

    /// V1, hybrid or V2.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// Every hierarchy, in mount order.
    pub fn hierarchies(&self) -> &[HostHierarchy] {
        &self.hierarchies
    }

    /// Resolves `linux.cgroupsPath` for container `id` in every hierarchy.
    ///
    /// An absolute path is used as-is below each mount point; a relative one
    /// is below the runtime's own cgroup in each hierarchy (as runc does);
    /// `None` means `/capsa/<id>`. Creates nothing.
    pub fn container_cgroup(
        &self,
        cgroups_path: Option<&str>,
        id: &str,
    ) -> Result<ContainerCgroup, CgroupError> {
        let requested = CgroupPath::requested(cgroups_path, id)?;
        let mut dirs = Vec::with_capacity(self.hierarchies.len());
        for host in &self.hierarchies {
            let relative_path = requested
                .resolve(host.own_cgroup.as_deref())
                .ok_or_else(|| CgroupError::NoOwnCgroup {
                    path: requested.display(),
                    self_cgroup: self.self_cgroup.clone(),
                    mount_point: host.mount_point.clone(),
                })?;
            dirs.push(HierarchyDir {
                mount_point: host.mount_point.clone(),
                controllers: host.controllers.clone(),
                is_v2: host.is_v2,
                dir: host.mount_point.join(relative_path.trim_start_matches('/')),
                relative_path,
            });
        }
        Ok(ContainerCgroup::new(requested.display(), dirs))
    }
}

impl HostHierarchy {
    /// Where the hierarchy is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// Its v1 controllers (`name=systemd` for a named one); empty for v2.
    pub fn controllers(&self) -> &[String] {
        &self.controllers
    }

    /// Whether this is the cgroup2 hierarchy.
    pub fn is_v2(&self) -> bool {
        self.is_v2
    }

    /// The runtime's own cgroup in this hierarchy, relative to the mount
    /// point. `None` if `/proc/self/cgroup` has no line for it, or our cgroup
    /// lies outside the mounted part of the hierarchy.
    pub fn own_cgroup(&self) -> Option<&str> {
        self.own_cgroup.as_deref()
    }
}

fn hierarchy(mount: &CgroupMount, own: &[OwnCgroup]) -> HostHierarchy {
    let line = own.iter().find(|line| {
        if mount.is_v2 {
            line.controllers.is_empty()
        } else {
            !line.controllers.is_empty()
                && line
                    .controllers
                    .iter()
                    .all(|c| mount.super_options.contains(c))
        }
    });
    let controllers = match (mount.is_v2, line) {
        (true, _) => Vec::new(),
        (false, Some(line)) => line.controllers.clone(),
        (false, None) => mount
            .super_options
            .iter()
            .filter(|o| !NON_CONTROLLER_OPTIONS.contains(&o.as_str()))
            .filter(|o| !o.starts_with("release_agent="))
            .cloned()
            .collect(),
    };
    HostHierarchy {
        mount_point: mount.mount_point.clone(),
        controllers,
        is_v2: mount.is_v2,
        own_cgroup: line.and_then(|line| below_root(&line.path, &mount.root)),
    }
}

/// `path` relative to a mount of the hierarchy directory `root`. A
/// container runtime run inside another container without a cgroup
/// namespace sees mounts such as root `/docker/<id>`.
fn below_root(path: &str, root: &str) -> Option<String> {
    if root == "/" {
        return Some(path.to_string());
    }
    match path.strip_prefix(root.trim_end_matches('/'))? {
        "" => Some("/".to_string()),
        rest if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    }
}

fn read_text(path: &Path) -> Result<String, CgroupError> {
    std::fs::read(path)
        // Some unrelated mount point may not be UTF-8; it must not stop us.
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Parses proc_pid_mountinfo(5) lines, keeping the cgroup ones:
/// `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
fn parse_mountinfo(text: &str, file: &Path) -> Result<Vec<CgroupMount>, CgroupError> {
    let mut mounts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason| CgroupError::Parse {
            path: file.to_path_buf(),
            line: index + 1,
            reason,
            text: line.to_string(),
        };
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        // The optional fields vary in number; "-" ends them.
        let dash = fields
            .iter()
            .skip(6)
            .position(|f| *f == "-")
            .map(|p| p + 6)
            .ok_or_else(|| bad("malformed mountinfo entry (no \" - \" separator)"))?;
        let Some(fs_type) = fields.get(dash + 1) else {
            return Err(bad("malformed mountinfo entry (no filesystem type)"));
        };
        let is_v2 = match *fs_type {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        mounts.push(CgroupMount {
            device: fields[2].to_string(),
            root: String::from_utf8_lossy(&unescape(fields[3])).into_owned(),
            mount_point: PathBuf::from(OsStr::from_bytes(&unescape(fields[4]))),
            is_v2,
            super_options: fields
                .get(dash + 3)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    Ok(mounts)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// Parses `/proc/self/cgroup`: `id:controllers:path`, where the cgroup2
/// line is `0::path` and a named v1 hierarchy shows as `name=systemd`.
fn parse_self_cgroup(text: &str, file: &Path) -> Result<Vec<OwnCgroup>, CgroupError> {
    let mut own = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // The path itself may contain ':', so split only twice.
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CgroupError::Parse {
                path: file.to_path_buf(),
                line: index + 1,
                reason: "expected \"id:controllers:path\"",
                text: line.to_string(),
            });
        };
        own.push(OwnCgroup {
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: path.to_string(),
        });
    }
    Ok(own)
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
