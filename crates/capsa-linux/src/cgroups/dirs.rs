//! The container's cgroup directories: create, join, list, remove.

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use super::{CgroupError, ContainerCgroup, HierarchyDir};

/// Files a new v1 cpuset cgroup starts with empty; until they are filled
/// in, adding a task to it fails with ENOSPC.
const CPUSET_FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

/// A parent another container removes just as we find it existing makes
/// our `mkdir` of its child fail with ENOENT; walking again fixes that.
const CREATE_RESTARTS: u32 = 3;

/// Processes just killed take a moment to leave their cgroup, and `rmdir`
/// fails with EBUSY until they have. 5 attempts wait 150 ms in all.
const RMDIR_ATTEMPTS: u32 = 5;
const RMDIR_FIRST_DELAY: Duration = Duration::from_millis(10);

impl ContainerCgroup {
    /// Creates the container's directory, and any missing parent, in every
    /// hierarchy (`mkdir -p`). Directories it makes are recorded so that
    /// [`ContainerCgroup::remove`] deletes them and only them, parents
    /// included. If it fails part-way, it removes what it made.
    pub fn create(&self) -> Result<(), CgroupError> {
        self.create_where(|_| true)
    }

    /// [`ContainerCgroup::create`] of the cgroup2 hierarchy alone (where a
    /// child is to be cloned into it, before the v1 ones are made).
    pub fn create_v2(&self) -> Result<(), CgroupError> {
        self.create_where(|h| h.is_v2)
    }

    /// [`ContainerCgroup::create`] of the v1 hierarchies alone.
    pub fn create_v1(&self) -> Result<(), CgroupError> {
        self.create_where(|h| !h.is_v2)
    }

    fn create_where(&self, pick: impl Fn(&HierarchyDir) -> bool) -> Result<(), CgroupError> {
        let mut made = Vec::new();
        let result = self
            .hierarchies
            .iter()
            .filter(|h| pick(h))
            .try_for_each(|h| create_in(h, &mut made));
        if let Err(error) = result {
            for dir in made.iter().rev() {
                if let Err(cleanup) = fs::remove_dir(dir) {
                    tracing::warn!(
                        "cannot remove cgroup directory {}: {cleanup}",
                        dir.display()
                    );
                }
            }
            return Err(error);
        }
        self.created().extend(made);
        Ok(())
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.add_process_where(pid, |_| true)
    }

    /// [`ContainerCgroup::add_process`] in the hierarchies `pick` chooses.
    pub(super) fn add_process_where(
        &self,
        pid: i32,
        pick: impl Fn(&HierarchyDir) -> bool,
    ) -> Result<(), CgroupError> {
        for hierarchy in self.hierarchies.iter().filter(|h| pick(h)) {
            let path = hierarchy.dir.join("cgroup.procs");
            write_file(&path, &pid.to_string()).map_err(|source| CgroupError::AddProcess {
                pid,
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Moves `pid` into existing sub-cgroups of the container's cgroup
    /// (`exec --cgroup`): `subs` holds `path` (every hierarchy) or
    /// `controller:path` (the v1 hierarchies with that controller; on v2 the
    /// controller part is ignored, as runc does). Hierarchies not named stay
    /// at the container's own cgroup.
    pub fn add_process_to_sub(&self, pid: i32, subs: &[String]) -> Result<(), CgroupError> {
        for hierarchy in &self.hierarchies {
            let mut dir = hierarchy.dir.clone();
            for spec in subs {
                let (controller, path) = match spec.split_once(':') {
                    Some((c, p)) => (Some(c), p),
                    None => (None, spec.as_str()),
                };
                let applies = hierarchy.is_v2
                    || controller.is_none_or(|c| hierarchy.controllers.iter().any(|h| h == c));
                if !applies {
                    continue;
                }
                let rel = path.trim_start_matches('/');
                if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
                    return Err(CgroupError::InvalidPath { path: spec.clone(), reason: "exec --cgroup needs a relative path inside the container's cgroup, without . or .." });
                }
                dir = hierarchy.dir.join(rel);
            }
            let path = dir.join("cgroup.procs");
            write_file_existing(&path, &pid.to_string())
                .map_err(|source| CgroupError::AddProcess { pid, path, source })?;
        }
        Ok(())
    }

    /// Every process in the container's cgroup and the cgroups nested in
    /// it, sorted and without duplicates. Read from the v2 hierarchy if there
    /// is one, else from v1 `pids`, `freezer` or the first hierarchy. Empty
    /// if the cgroup does not exist (any more).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let with = |controller: &str| {
            let has = |h: &&HierarchyDir| h.controllers.iter().any(|c| c == controller);
            self.hierarchies.iter().find(has)
        };
        let source = self
            .hierarchies
            .iter()
            .find(|h| h.is_v2)
            .or_else(|| with("pids"))
            .or_else(|| with("freezer"))
            .or_else(|| self.hierarchies.first());
        let mut pids = Vec::new();
        if let Some(hierarchy) = source {
            collect_pids(&hierarchy.dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the container's directory, nested cgroups first, in every
    /// hierarchy, then the parents `create` made if they are now empty
    /// (others may still hold cgroups of other containers: `/capsa`).
    ///
    /// Missing directories are fine, so this can be repeated. It goes on
    /// past a failing hierarchy and returns the first error. A cgroup of
    /// the systemd driver has its unit stopped first.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let mut first_error = None;
        // systemd: stopping the unit kills what is left and removes its
        // cgroup; the directories it does not manage are removed below.
        if let Err(error) = self.stop_unit() {
            first_error.get_or_insert(error);
        }
        for hierarchy in &self.hierarchies {
            if let Err(error) = remove_tree(&hierarchy.dir) {
                first_error.get_or_insert(error);
            }
        }
        let created = self.created_dirs();
        let parents = created
            .iter()
            .rev()
            .filter(|dir| !self.hierarchies.iter().any(|h| dir.starts_with(&h.dir)));
        for dir in parents {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::NotFound
                            | ErrorKind::DirectoryNotEmpty
                            | ErrorKind::ResourceBusy
                    ) => {}
                Err(source) => {
                    first_error.get_or_insert(CgroupError::RemoveDir {
                        path: dir.clone(),
                        source,
                    });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// `mkdir -p` of one hierarchy's directory below its mount point, which
/// must exist. Pushes every directory it makes onto `made`.
fn create_in(hierarchy: &HierarchyDir, made: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let components: Vec<&str> = hierarchy
        .relative_path
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    let mut restarts = 0;
    let mut depth = 0;
    while depth < components.len() {
        let parent = hierarchy.mount_point.join(components[..depth].join("/"));
        let dir = parent.join(components[depth]);
        match fs::create_dir(&dir) {
            Ok(()) => {
                made.push(dir.clone());
                if hierarchy.is_v1_cpuset() {
                    copy_cpuset(&parent, &dir)?;
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e)
                if e.kind() == ErrorKind::NotFound && depth > 0 && restarts < CREATE_RESTARTS =>
            {
                restarts += 1;
                depth = 0;
                continue;
            }
            Err(source) => return Err(CgroupError::CreateDir { path: dir, source }),
        }
        depth += 1;
    }
    Ok(())
}

fn copy_cpuset(parent: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in CPUSET_FILES {
        let from = parent.join(file);
        let value = fs::read_to_string(&from).map_err(|source| CgroupError::Read {
            path: from.clone(),
            source,
        })?;
        let value = value.trim();
        let path = dir.join(file);
        write_file(&path, value).map_err(|source| CgroupError::Write {
            path,
            value: value.to_string(),
            source,
        })?;
    }
    Ok(())
}

/// One `write` of the whole value: cgroup files take one value per write.
/// `create` is only there so plain files can stand in for cgroupfs in tests;
/// on cgroupfs the control files always exist.
/// Writes to a cgroup file that must already exist (a sub-cgroup named by
/// the user: creating it would hide a typo).
fn write_file_existing(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

pub(super) fn write_file(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// Adds the pids of `dir` and every cgroup nested in it. Directories that
/// vanish meanwhile (a nested cgroup removed) count as empty.
fn collect_pids(dir: &Path, pids: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(text) => {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let pid = line.parse().map_err(|_| CgroupError::BadPid {
                    path: procs.clone(),
                    text: line.to_string(),
                })?;
                pids.push(pid);
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CgroupError::Read {
                path: procs,
                source,
            })
        }
    }
    for child in subdirectories(dir)? {
        collect_pids(&child, pids)?;
    }
    Ok(())
}

/// The nested cgroups of `dir`; none if `dir` is missing.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let list_error = |source| CgroupError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(list_error(source)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_error)?;
        if entry.file_type().map_err(list_error)?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Removes `dir` and its nested cgroups, deepest first. cgroupfs lets
/// `rmdir` remove a directory that still lists its control files.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // A container's cgroup rarely has nested ones: rmdir at once, and list
    // the directory (a dozen control files per hierarchy) only when the
    // kernel refuses. Any refusal comes back from the loop below.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in subdirectories(dir)? {
        remove_tree(&child)?;
    }
    let mut delay = RMDIR_FIRST_DELAY;
    for attempt in 1..=RMDIR_ATTEMPTS {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == ErrorKind::ResourceBusy && attempt < RMDIR_ATTEMPTS => {
                sleep(delay);
                delay *= 2;
            }
            Err(e) if e.kind() == ErrorKind::ResourceBusy => break,
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Err(CgroupError::StillBusy {
        path: dir.to_path_buf(),
        attempts: RMDIR_ATTEMPTS,
    })
}

#[cfg(test)]
#[path = "dirs_tests.rs"]
mod tests;
