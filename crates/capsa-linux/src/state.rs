//! The state root: the only module that knows the layout under `--root`.
//!
//! ```text
//! <root>/                 0700, created on first use
//!   <id>/                 claimed by mkdir(2): EEXIST means the id is taken
//!     state.json          written to state.json.tmp, renamed over
//!     cgroup.json         the cgroup, recorded by create before it makes it:
//!                         what `delete --force` removes when create died
//!                         before state.json existed
//!     exec.fifo           exists from create until start: init blocks on it
//!     notify/notify.sock  with NOTIFY_SOCKET: the container's sd_notify socket
//! ```
//!
//! Every command that reads or changes a container holds an exclusive
//! `flock(2)` on the `<id>` directory for its whole run, so two capsa
//! processes acting on one id are serialised. `create` takes the lock right
//! after its `mkdir`, so a reader that finds the directory waits for create to
//! finish; a reader that then finds no `state.json` (create failed and removed
//! the directory) reports that the container does not exist.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use capsa_spec::ValidSpec;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroups::ContainerCgroup;

const STATE_FILE: &str = "state.json";
const CGROUP_FILE: &str = "cgroup.json";
const FIFO_FILE: &str = "exec.fifo";
const NOTIFY_DIR: &str = "notify";

/// Errors of the state root.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container id {0:?} is not valid: use letters, digits and . _ + - only (not . or ..)")]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    /// The directory of a `create` that died before it wrote `state.json`:
    /// not a container (so "does not exist", as runc says), but the id stays
    /// taken until `delete --force` removes what that create left.
    #[error("container {0} does not exist: an interrupted create left its id taken; `delete --force {0}` removes what it left")]
    Interrupted(String),
    /// `create` of an id an interrupted create still holds.
    #[error("container {0} already exists: an interrupted create left its id taken; `delete --force {0}` removes what it left")]
    ExistsInterrupted(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{}: corrupt state: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `id` is a plain name that cannot escape the state root.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let plain = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if plain {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// What capsa remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container init.
    pub init_pid: i32,
    /// The init's start time in clock ticks since boot (`/proc/<pid>/stat`
    /// field 22): tells a live init from a recycled pid.
    pub init_start_time: u64,
    /// RFC 3339 creation time.
    pub created: String,
    pub cgroup: ContainerCgroup,
    /// The config as validated at create: later changes to the bundle's
    /// config.json do not affect the container (runtime spec, lifecycle).
    pub spec: ValidSpec,
    /// A process of the container may hold CAP_SYS_PTRACE: its own process
    /// or one an `exec` started (`exe_guard`). A state without the field
    /// (an older capsa's) counts as yes, the safe side.
    #[serde(default = "yes")]
    pub ptrace_seen: bool,
}

fn yes() -> bool {
    true
}

/// The state root given by `--root`.
#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where `<id>`'s notify directory will be (before it is claimed).
    pub fn notify_dir_of(&self, id: &str) -> PathBuf {
        self.root.join(id).join(NOTIFY_DIR)
    }

    /// Claims a new id: creates `<root>/<id>` (failing if it exists) and
    /// locks it.
    pub fn claim(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(io_err("cannot create state root", &self.root))?;
        let dir = self.root.join(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Without state.json and with its lock free, the id is held
                // by a create that died: say how to free it.
                let interrupted = !dir.join(STATE_FILE).exists()
                    && File::open(&dir)
                        .ok()
                        .and_then(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).ok())
                        .is_some_and(|_| !dir.join(STATE_FILE).exists());
                return Err(if interrupted {
                    StateError::ExistsInterrupted(id.to_string())
                } else {
                    StateError::Exists(id.to_string())
                });
            }
            Err(e) => return Err(io_err("cannot create state dir", &dir)(e)),
        }
        let lock = lock_dir(&dir)?;
        Ok(ContainerDir {
            id: id.to_string(),
            dir,
            _lock: lock,
        })
    }

    /// Opens and locks an existing container's directory.
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let lock = match lock_dir(&dir) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            other => other?,
        };
        let cd = ContainerDir {
            id: id.to_string(),
            dir,
            _lock: lock,
        };
        // Create may have failed and removed the directory while we waited;
        // a directory still there without state.json, now that we hold its
        // lock, is a create that died.
        if !cd.dir.join(STATE_FILE).exists() {
            return Err(if cd.dir.is_dir() {
                StateError::Interrupted(id.to_string())
            } else {
                StateError::NotFound(id.to_string())
            });
        }
        Ok(cd)
    }

    /// Opens and locks the directory of a `create` that died before it wrote
    /// `state.json` (killed, or the machine went down): `None` when there is
    /// no such directory. With the lock held, a create still at work has
    /// either finished or removed its directory, so what is found is
    /// abandoned.
    pub fn open_abandoned(&self, id: &str) -> Result<Option<ContainerDir>, StateError> {
        validate_id(id)?;
        let dir = self.root.join(id);
        let lock = match lock_dir(&dir) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None)
            }
            other => other?,
        };
        if dir.join(STATE_FILE).exists() {
            return Ok(None);
        }
        Ok(Some(ContainerDir {
            id: id.to_string(),
            dir,
            _lock: lock,
        }))
    }

    /// The ids of all containers, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot read state root", &self.root)(e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(dir: &Path) -> Result<Flock<File>, StateError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(io_err("cannot open state dir", dir))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io_err("cannot lock state dir", dir)(e.into()))
}

/// A container's locked state directory.
#[derive(Debug)]
pub struct ContainerDir {
    id: String,
    dir: PathBuf,
    _lock: Flock<File>,
}

impl ContainerDir {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw fd of the lock, which the container init must close at once:
    /// a forked child shares the lock and would otherwise hold it forever.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self._lock.as_raw_fd()
    }

    /// The directory of the sd_notify proxy socket (`NOTIFY_SOCKET`).
    pub fn notify_dir(&self) -> PathBuf {
        self.dir.join(NOTIFY_DIR)
    }

    /// The exec fifo the init blocks on until `start`.
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(FIFO_FILE)
    }

    /// Writes the state atomically: a reader sees the old or the new file,
    /// never a half-written one, even across a crash.
    pub fn save(&self, state: &ContainerState) -> Result<(), StateError> {
        self.write_atomic(STATE_FILE, state)
    }

    /// Records the cgroup before `create` makes it (see the layout above).
    pub fn record_cgroup(&self, cgroup: &ContainerCgroup) -> Result<(), StateError> {
        self.write_atomic(CGROUP_FILE, cgroup)
    }

    /// The cgroup recorded by [`ContainerDir::record_cgroup`], if any.
    pub fn recorded_cgroup(&self) -> Option<ContainerCgroup> {
        let bytes = fs::read(self.dir.join(CGROUP_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// JSON to `<name>.tmp`, renamed over `<name>`; the caller holds the
    /// lock, so no two writers share the temporary file. The rename is what
    /// makes the write atomic for readers. No fsync: a state file describes
    /// processes that a reboot ends anyway, `--root` is normally on tmpfs
    /// (`/run`), and on a disk the sync cost 0.5 ms per file here (runc does
    /// not sync either).
    fn write_atomic(&self, name: &str, value: &impl Serialize) -> Result<(), StateError> {
        let tmp = self.dir.join(format!("{name}.tmp"));
        let dest = self.dir.join(name);
        let bytes = serde_json::to_vec(value).map_err(|e| StateError::Corrupt {
            path: dest.clone(),
            source: e,
        })?;
        let mut f = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_err("cannot write", &tmp))?;
        f.write_all(&bytes).map_err(io_err("cannot write", &tmp))?;
        crate::lifecycle::fault::point("state:before-rename");
        fs::rename(&tmp, &dest).map_err(io_err("cannot rename state file to", &dest))
    }

    pub fn load(&self) -> Result<ContainerState, StateError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            Err(e) => return Err(io_err("cannot read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Removes the directory and everything in it; the lock goes with `self`.
    pub fn remove(self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("cannot remove state dir", &self.dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_plain_names() {
        for good in ["a", "abc-1.2_x+y", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n", "ü"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn claim_is_exclusive_and_open_needs_state() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path().join("run"));
        let dir = root.claim("c1").unwrap();
        // Held by a create at work: taken.
        assert!(matches!(root.claim("c1"), Err(StateError::Exists(_))));
        drop(dir);
        // Claimed, never saved, lock released: a create that died. Not a
        // container, but its id stays taken, and both errors say how to free it.
        assert!(matches!(root.open("c1"), Err(StateError::Interrupted(_))));
        assert!(matches!(
            root.claim("c1"),
            Err(StateError::ExistsInterrupted(_))
        ));
        assert!(root
            .open("c1")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(matches!(root.open("nope"), Err(StateError::NotFound(_))));
        assert!(root.ids().unwrap().is_empty());
    }
}

#[cfg(test)]
#[path = "state_proptests.rs"]
mod proptests;
