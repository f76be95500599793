//! Pausing and resuming: the v1 freezer (`freezer.state`) where the host
//! mounts one, else cgroup2's `cgroup.freeze` (every non-root cgroup2 has
//! it; no controller to enable). Both freeze the nested cgroups too.
//!
//! Freezing is not instant: v1 reports `FREEZING` until every task has
//! stopped, cgroup2 flips `frozen` in `cgroup.events`. Both functions wait
//! for the final state, so `pause` returns only once nothing runs.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::dirs::write_file;
use super::{CgroupError, ContainerCgroup};

/// How long a freeze or thaw may take before it is reported as failed.
const LIMIT: Duration = Duration::from_secs(5);

/// A task stuck in an uninterruptible sleep can keep a v1 cgroup in
/// `FREEZING`; as runc does, thaw briefly and retry every this many polls.
const V1_RETRY_EVERY: u32 = 50;

/// Where the container's freezer is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Freezer {
    /// The container's directory in the v1 `freezer` hierarchy.
    V1(PathBuf),
    /// The container's cgroup2 directory.
    V2(PathBuf),
}

impl ContainerCgroup {
    fn freezer(&self) -> Option<Freezer> {
        let h = self.hierarchies();
        h.iter()
            .find(|h| !h.is_v2() && h.controllers().iter().any(|c| c == "freezer"))
            .map(|h| Freezer::V1(h.dir().to_path_buf()))
            .or_else(|| {
                h.iter()
                    .find(|h| h.is_v2())
                    .map(|h| Freezer::V2(h.dir().to_path_buf()))
            })
    }

    /// Freezes every process of the container and waits until they all are.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some(Freezer::V1(dir)) => set_v1(&dir, true, LIMIT),
            Some(Freezer::V2(dir)) => set_v2(&dir, true, LIMIT),
            None => Err(CgroupError::NoFreezer { action: "pause" }),
        }
    }

    /// Thaws the container and waits until it runs again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some(Freezer::V1(dir)) => set_v1(&dir, false, LIMIT),
            Some(Freezer::V2(dir)) => set_v2(&dir, false, LIMIT),
            None => Err(CgroupError::NoFreezer { action: "resume" }),
        }
    }

    /// Whether the container was frozen by a `pause` (not merely by a frozen
    /// ancestor). False when the cgroup is gone or the host has no freezer.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer() {
            Some(Freezer::V1(dir)) => frozen_v1(&dir),
            Some(Freezer::V2(dir)) => frozen_v2(&dir),
            None => Ok(false),
        }
    }
}

/// Reads a control file; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_file(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Sleeps between polls: 1 ms at first, up to 10 ms.
fn backoff(attempt: u32) {
    sleep(Duration::from_millis(u64::from(attempt.min(10)).max(1)));
}

/// v1: `FROZEN` or `THAWED` into `freezer.state`, then polls it until it
/// reads the same. A freeze that does not settle in `limit` is undone.
pub(super) fn set_v1(dir: &Path, frozen: bool, limit: Duration) -> Result<(), CgroupError> {
    let file = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let deadline = Instant::now() + limit;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        if frozen && attempt > 0 && attempt % V1_RETRY_EVERY == 0 {
            write(&file, "THAWED")?;
            sleep(Duration::from_millis(1));
        }
        if attempt == 0 || frozen {
            write(&file, want)?;
        }
        let state = read(&file)?.unwrap_or_default();
        if state == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(&file, "THAWED");
            }
            return Err(CgroupError::FreezeTimeout {
                action: if frozen { "pause" } else { "resume" },
                path: file,
                state,
                waited_ms: started.elapsed().as_millis(),
            });
        }
        attempt += 1;
        backoff(attempt);
    }
}

/// cgroup2: `1` or `0` into `cgroup.freeze`, then polls `cgroup.events`
/// until its `frozen` line agrees. A freeze that does not settle is undone.
pub(super) fn set_v2(dir: &Path, frozen: bool, limit: Duration) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.freeze");
    let events = dir.join("cgroup.events");
    let want = if frozen { "1" } else { "0" };
    write(&file, want)?;
    let deadline = Instant::now() + limit;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let text = read(&events)?.unwrap_or_default();
        let state = text
            .lines()
            .find_map(|l| l.strip_prefix("frozen "))
            .unwrap_or("")
            .trim()
            .to_string();
        if state == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(&file, "0");
            }
            return Err(CgroupError::FreezeTimeout {
                action: if frozen { "pause" } else { "resume" },
                path: events,
                state: format!("frozen {state}"),
                waited_ms: started.elapsed().as_millis(),
            });
        }
        attempt += 1;
        backoff(attempt);
    }
}

/// v1: `FROZEN` in `freezer.state`, and frozen by itself
/// (`freezer.self_freezing`), not only through an ancestor.
pub(super) fn frozen_v1(dir: &Path) -> Result<bool, CgroupError> {
    if read(&dir.join("freezer.state"))?.as_deref() != Some("FROZEN") {
        return Ok(false);
    }
    Ok(read(&dir.join("freezer.self_freezing"))?.is_none_or(|s| s == "1"))
}

/// cgroup2: `cgroup.freeze` is 1 (what was asked of this cgroup itself).
pub(super) fn frozen_v2(dir: &Path) -> Result<bool, CgroupError> {
    Ok(read(&dir.join("cgroup.freeze"))?.as_deref() == Some("1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_freeze_and_thaw_write_freezer_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("freezer.state");
        fs::write(&state, "THAWED\n").unwrap();
        assert!(!frozen_v1(dir.path()).unwrap());
        set_v1(dir.path(), true, LIMIT).unwrap();
        assert_eq!(fs::read_to_string(&state).unwrap(), "FROZEN");
        assert!(frozen_v1(dir.path()).unwrap());
        // Frozen only through a frozen ancestor: not paused itself.
        fs::write(dir.path().join("freezer.self_freezing"), "0\n").unwrap();
        assert!(!frozen_v1(dir.path()).unwrap());
        set_v1(dir.path(), false, LIMIT).unwrap();
        assert_eq!(fs::read_to_string(&state).unwrap(), "THAWED");
    }

    #[test]
    fn v2_freeze_waits_for_cgroup_events() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.freeze"), "0\n").unwrap();
        fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set_v2(dir.path(), true, LIMIT).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "1"
        );
        assert!(frozen_v2(dir.path()).unwrap());
        // cgroup.events still says frozen: thawing must time out, naming it.
        let err = set_v2(dir.path(), false, Duration::from_millis(30)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cannot resume: "), "{text}");
        assert!(
            text.contains("cgroup.events still reads \"frozen 1\""),
            "{text}"
        );
    }

    #[test]
    fn a_freeze_that_does_not_settle_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.freeze"), "0\n").unwrap();
        fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let err = set_v2(dir.path(), true, Duration::from_millis(30)).unwrap_err();
        assert!(matches!(err, CgroupError::FreezeTimeout { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "0"
        );
    }

    #[test]
    fn a_missing_cgroup_is_not_frozen() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        assert!(!frozen_v1(&gone).unwrap());
        assert!(!frozen_v2(&gone).unwrap());
    }
}
