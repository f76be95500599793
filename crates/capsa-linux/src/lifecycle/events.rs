//! `events`: a container's statistics, once (`--stats`) or as a stream of
//! `stats` events every interval with an `oom` event for each process the
//! kernel's OOM killer kills in the container, until the container stops.
//!
//! The events are runc's (`types/events.go`): `{"type":"stats","id":…,
//! "data":{…}}` and `{"type":"oom","id":…}`, one JSON object per line.
//!
//! OOM kills are found by watching the memory cgroup's kill counter
//! (`oom_kill` in v1 `memory.oom_control`, v2 `memory.events`) rather than
//! with runc's v1 eventfd or v2 inotify: the counter says how many kills
//! happened, covers both versions alike, and the same check after the
//! init exits catches the kill that stopped the container. The counter is
//! read every [`OOM_POLL`]; the stream waits on a pidfd of the init, so a
//! stop is seen at once. The state-dir lock is not held while streaming.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ContainerStatus;
use crate::cgroups::{ContainerCgroup, Stats};
use crate::error::Error;
use crate::{procfs, sys, Runtime};

/// How often the OOM kill counter is read while streaming.
pub const OOM_POLL: Duration = Duration::from_millis(100);

/// After the init has exited, the kill counter is read once more after this
/// long: the kernel bumps it right after sending the SIGKILL, which can
/// race with the victim's exit becoming visible.
const OOM_SETTLE: Duration = Duration::from_millis(20);

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Stats,
    Oom,
}

/// One line of `events` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub id: String,
    /// The statistics of a `stats` event; absent from `oom` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Event {
    pub fn stats(id: &str, stats: Stats) -> Self {
        Event {
            kind: EventKind::Stats,
            id: id.to_string(),
            data: Some(stats),
        }
    }

    pub fn oom(id: &str) -> Self {
        Event {
            kind: EventKind::Oom,
            id: id.to_string(),
            data: None,
        }
    }
}

impl Runtime {
    /// The statistics of a created, running or paused container (runc
    /// refuses a stopped one the same way).
    pub fn stats(&self, id: &str) -> Result<Stats, Error> {
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        if self.status_of(&dir, &st) == ContainerStatus::Stopped {
            return Err(Error::NotRunning);
        }
        Ok(st.cgroup.stats()?)
    }

    /// The event stream of a created, running or paused container: a
    /// `stats` event every `interval` (the first after one interval, as
    /// runc) and an `oom` event per OOM kill from now on. It ends once the
    /// container has stopped. An `interval` below 1 ms is taken as 1 ms.
    pub fn events(&self, id: &str, interval: Duration) -> Result<EventStream, Error> {
        let interval = interval.max(Duration::from_millis(1));
        let dir = self.state.open(id)?;
        let st = dir.load()?;
        if self.status_of(&dir, &st) == ContainerStatus::Stopped {
            return Err(Error::NotRunning);
        }
        // Should the pid be recycled before this, the stream still ends at
        // once: `alive` compares the start time too.
        let pidfd = sys::pidfd_open(st.init_pid).ok();
        let mut stream = EventStream {
            id: st.id.clone(),
            cgroup: st.cgroup.clone(),
            proc_root: self.proc_root.clone(),
            init_pid: st.init_pid,
            init_start_time: st.init_start_time,
            pidfd,
            interval,
            next_stats: Instant::now() + interval,
            oom_kills: None,
            pending_ooms: 0,
            stopped: false,
        };
        // Kills from before the stream started are not reported.
        stream.oom_kills = stream.read_oom_kills();
        Ok(stream)
    }
}

/// The events of one container, in the order they happen (see
/// [`Runtime::events`]). Iterating blocks until the next event.
#[derive(Debug)]
pub struct EventStream {
    id: String,
    cgroup: ContainerCgroup,
    proc_root: PathBuf,
    init_pid: i32,
    init_start_time: u64,
    /// Readable once the init has exited; `None` where pidfds are missing.
    pidfd: Option<OwnedFd>,
    interval: Duration,
    next_stats: Instant,
    /// The kill counter last read; `None` without a memory controller.
    oom_kills: Option<u64>,
    /// Kills counted but not yet returned as events.
    pending_ooms: u64,
    stopped: bool,
}

impl EventStream {
    fn alive(&self) -> bool {
        procfs::is_alive(&self.proc_root, self.init_pid, self.init_start_time)
    }

    fn read_oom_kills(&self) -> Option<u64> {
        self.cgroup.oom_kill_count().unwrap_or_else(|e| {
            tracing::debug!("cannot read the OOM kill counter: {e}");
            None
        })
    }

    /// Counts the kills since the last look into `pending_ooms`.
    fn check_oom(&mut self) {
        let Some(now) = self.read_oom_kills() else {
            return;
        };
        let before = self.oom_kills.unwrap_or(0);
        if now > before {
            self.pending_ooms += now - before;
        }
        // A smaller number means a new cgroup of the same name: start over.
        self.oom_kills = Some(now);
    }

    /// Sleeps up to `limit`, waking early when the init exits.
    fn wait(&self, limit: Duration) {
        let Some(fd) = &self.pidfd else {
            std::thread::sleep(limit);
            return;
        };
        let ms = i32::try_from(limit.as_millis().max(1)).unwrap_or(i32::MAX);
        let timeout = nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, timeout).is_err() {
            // EINTR: the caller loops and waits again.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Iterator for EventStream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        loop {
            if self.pending_ooms > 0 {
                self.pending_ooms -= 1;
                return Some(Event::oom(&self.id));
            }
            if self.stopped {
                return None;
            }
            self.check_oom();
            if self.pending_ooms > 0 {
                continue;
            }
            if !self.alive() {
                std::thread::sleep(OOM_SETTLE);
                self.check_oom();
                self.stopped = true;
                continue;
            }
            let now = Instant::now();
            if now >= self.next_stats {
                self.next_stats += self.interval;
                if self.next_stats <= now {
                    // Fell behind (a stopped reader, a suspended host):
                    // no burst of catch-up events.
                    self.next_stats = now + self.interval;
                }
                match self.cgroup.stats() {
                    Ok(stats) => return Some(Event::stats(&self.id, stats)),
                    // runc logs and goes on; the next round may succeed,
                    // or find the container stopped.
                    Err(e) => tracing::warn!("cannot read the statistics of {}: {e}", self.id),
                }
                continue;
            }
            let mut limit = self.next_stats - now;
            if self.oom_kills.is_some() || self.pidfd.is_none() {
                limit = limit.min(OOM_POLL);
            }
            self.wait(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_runc_prints_them() {
        assert_eq!(
            serde_json::to_string(&Event::oom("c1")).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
        let text = serde_json::to_string(&Event::stats("c1", Stats::default())).unwrap();
        assert!(
            text.starts_with(r#"{"type":"stats","id":"c1","data":{"cpu":{"usage":"#),
            "{text}"
        );
    }
}
