//! What a container can leave behind, read from /proc: state dirs, cgroups, mounts
//! and processes. Used by [`assert_nothing_left`] after every delete and every failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bundle::{Bundle, MARKER_VAR};

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Root of the mount within its filesystem (field 4).
    pub root: String,
    /// Mount point (field 5), unescaped.
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    /// Super-block options (last field), e.g. `rw,memory` for a v1 cgroup hierarchy.
    pub super_options: String,
    /// The raw line, for messages.
    pub line: String,
}

/// Parses `/proc/self/mountinfo` (the test's, i.e. the host's, mount namespace).
pub fn mountinfo() -> Vec<MountInfo> {
    mountinfo_of("self")
}

/// Parses `/proc/<pid>/mountinfo`; empty when the process is gone.
pub fn mountinfo_of(pid: &str) -> Vec<MountInfo> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    Some(MountInfo {
        root: unescape(l.get(3)?),
        mount_point: PathBuf::from(unescape(l.get(4)?)),
        fs_type: r.first()?.to_string(),
        source: unescape(r.get(1)?),
        super_options: r.get(2).unwrap_or(&"").to_string(),
        line: line.to_string(),
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup hierarchy (v1 `cgroup` and v2 `cgroup2`) mounted in our namespace.
pub fn cgroup_mounts() -> Vec<MountInfo> {
    mountinfo()
        .into_iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect()
}

/// The host directory of `cgroup` (absolute, as in `linux.cgroupsPath`) in
/// the v1 hierarchy that has `controller`, else in the cgroup2 one.
pub fn host_cgroup_dir(controller: &str, cgroup: &str) -> PathBuf {
    let mounts = cgroup_mounts();
    let m = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller))
        .or_else(|| mounts.iter().find(|m| m.fs_type == "cgroup2"))
        .unwrap_or_else(|| panic!("no hierarchy has the {controller} controller"));
    m.mount_point.join(cgroup.trim_start_matches('/'))
}

/// The file `file` of [`host_cgroup_dir`], trimmed; panics naming the path.
pub fn host_cgroup_read(controller: &str, cgroup: &str, file: &str) -> String {
    let path = host_cgroup_dir(controller, cgroup).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The directories that would hold cgroup `cgroup_path` (absolute, as in
/// `linux.cgroupsPath`) in each mounted hierarchy.
pub fn cgroup_dirs(cgroup_path: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for m in cgroup_mounts() {
        let rel = if m.root == "/" {
            cgroup_path.trim_start_matches('/')
        } else if let Some(rest) = cgroup_path.strip_prefix(m.root.as_str()) {
            rest.trim_start_matches('/')
        } else {
            continue;
        };
        dirs.push(m.mount_point.join(rel));
    }
    dirs
}

/// One line of `/proc/<pid>/cgroup`: hierarchy id, controllers, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    pub controllers: String,
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`; empty when the process is gone.
pub fn proc_cgroups(pid: u32) -> Vec<CgroupLine> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            Some(CgroupLine {
                hierarchy: parts.next()?.parse().ok()?,
                controllers: parts.next()?.to_string(),
                path: parts.next()?.to_string(),
            })
        })
        .collect()
}

/// The state letter of `/proc/<pid>/stat` (`R`, `S`, `Z`, ...); `None` when gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain ") ".
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// True when `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// All numeric entries of /proc.
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// A live process that belongs to a container, and why we think so.
#[derive(Debug)]
pub struct Straggler {
    pub pid: u32,
    pub comm: String,
    pub reason: String,
}

/// Live (non-zombie) processes that carry `marker` in their environment, sit in
/// cgroup `cgroup_path` (or below it) in any hierarchy, or have their root directory
/// inside `bundle_dir`.
pub fn stragglers(marker: &str, cgroup_path: &str, bundle_dir: &Path) -> Vec<Straggler> {
    let me = std::process::id();
    let needle = format!("{MARKER_VAR}={marker}");
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == me || !pid_alive(pid) {
            continue;
        }
        let mut reasons = Vec::new();
        if let Ok(env) = fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|var| var == needle.as_bytes()) {
                reasons.push(format!("environment has {needle}"));
            }
        }
        let sub = format!("{cgroup_path}/");
        if let Some(cg) = proc_cgroups(pid)
            .into_iter()
            .find(|c| c.path == cgroup_path || c.path.starts_with(&sub))
        {
            reasons.push(format!(
                "in cgroup {}:{}:{}",
                cg.hierarchy, cg.controllers, cg.path
            ));
        }
        if let Ok(root) = fs::read_link(format!("/proc/{pid}/root")) {
            if root.starts_with(bundle_dir) {
                reasons.push(format!("root directory is {}", root.display()));
            }
        }
        if !reasons.is_empty() && pid_alive(pid) {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            found.push(Straggler {
                pid,
                comm,
                reason: reasons.join("; "),
            });
        }
    }
    found
}

/// True for ids that name exactly one directory entry (no `/`, not `.` or `..`).
fn is_plain_name(id: &str) -> bool {
    !id.is_empty() && !id.contains('/') && id != "." && id != ".."
}

/// Panics, listing everything found, unless container `id` left nothing behind:
///
/// * no state directory `<root>/<id>` (for an id that is not a plain name, such as
///   `..` or `a/b`: the root directory must hold nothing at all);
/// * no directory for `cgroup_path` in any cgroup hierarchy of /proc/self/mountinfo
///   (v1 and v2);
/// * no mount whose mount point is inside the bundle directory;
/// * no live process (zombies do not count) tagged with the bundle's marker, in the
///   cgroup, or rooted inside the bundle.
///
/// Processes get a short grace period (a SIGKILLed task needs a moment to exit);
/// everything else must be gone when this is called.
pub fn assert_nothing_left(root: &Path, id: &str, cgroup_path: &str, bundle: &Bundle) {
    let mut problems = Vec::new();

    if is_plain_name(id) {
        let state = root.join(id);
        if fs::symlink_metadata(&state).is_ok() {
            problems.push(format!("state directory {} still exists", state.display()));
        }
    } else if let Ok(rd) = fs::read_dir(root) {
        let names: Vec<String> = rd
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        if !names.is_empty() {
            problems.push(format!(
                "state root {} is not empty after a failure for id {id:?}: {names:?}",
                root.display()
            ));
        }
    }

    for dir in cgroup_dirs(cgroup_path) {
        if dir.exists() {
            problems.push(format!("cgroup directory {} still exists", dir.display()));
        }
    }

    for m in mountinfo() {
        if m.mount_point.starts_with(bundle.path()) {
            problems.push(format!("mount left inside the bundle: {}", m.line));
        }
    }

    let deadline = Instant::now() + Duration::from_secs(2);
    let procs = loop {
        let procs = stragglers(bundle.marker(), cgroup_path, bundle.path());
        if procs.is_empty() || Instant::now() >= deadline {
            break procs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for p in procs {
        problems.push(format!(
            "process {} ({}) still alive: {}",
            p.pid, p.comm, p.reason
        ));
    }

    assert!(
        problems.is_empty(),
        "container {id:?} left things behind:\n  - {}",
        problems.join("\n  - ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let m = parse_mountinfo_line(
            "36 31 0:33 / /sys/fs/cgroup/a\\040b rw,relatime shared:5 - cgroup cgroup rw,devices",
        )
        .expect("parse");
        assert_eq!(m.mount_point, PathBuf::from("/sys/fs/cgroup/a b"));
        assert_eq!(m.fs_type, "cgroup");
        assert_eq!(m.super_options, "rw,devices");
        assert_eq!(m.root, "/");
    }

    #[test]
    fn unescape_leaves_plain_backslashes() {
        assert_eq!(unescape("a\\b"), "a\\b");
        assert_eq!(unescape("x\\134y"), "x\\y");
    }
}
