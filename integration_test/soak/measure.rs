//! Running capsa as a child of the test and measuring it: exit status, output,
//! time, and peak resident memory; and the test process's own fds.
//!
//! The peak RSS comes from busybox's `time -f %M` (busybox-static is what the
//! bundles are made of): it forks capsa and reports `ru_maxrss` of what it reaped.
//! Reaping capsa ourselves would not do: `ru_maxrss` starts from the RSS of the
//! image a process replaced at exec, and std spawns with vfork, so that would be
//! the whole test process's RSS. busybox 1.35 takes `ru_maxrss` for a number of
//! pages and multiplies it by 4 (KiB per page): [`busybox_rss_factor`] measures
//! that once on a 64 MiB buffer, so a fixed busybox is read right too.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use capsa_integration_test::{CmdOutput, BUSYBOX};

/// How long one capsa call may take in a soak.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A capsa call, its time and its peak resident set size.
pub struct Measured {
    pub out: CmdOutput,
    pub max_rss_kb: u64,
    pub elapsed: Duration,
}

/// A process started by [`spawn`], not yet reaped.
pub struct Spawned {
    child: Child,
    out: File,
    err: File,
    command: String,
    started: Instant,
}

/// Starts `<bin> --root <root> <args...>` with `env` added to the environment.
/// stdout and stderr go to anonymous files: a created init inherits them, and a
/// pipe would stay open as long as it lives.
pub fn spawn(bin: &Path, root: &Path, args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(root).args(args);
    let command = format!(
        "{}{} --root {} {}",
        env.iter()
            .map(|(k, v)| format!("{k}={v} "))
            .collect::<String>(),
        bin.display(),
        root.display(),
        args.join(" ")
    );
    start(cmd, env, command)
}

fn start(mut cmd: Command, env: &[(&str, &str)], command: String) -> Spawned {
    let out = tempfile::tempfile().expect("tempfile for stdout");
    let err = tempfile::tempfile().expect("tempfile for stderr");
    let child = cmd
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    Spawned {
        child,
        out,
        err,
        command,
        started: Instant::now(),
    }
}

/// Runs capsa to the end under busybox's `time` and measures it.
pub fn run(bin: &Path, root: &Path, args: &[&str]) -> Measured {
    let report = tempfile::NamedTempFile::new().expect("tempfile for time's report");
    let mut cmd = Command::new(BUSYBOX);
    cmd.args(["time", "-f", "%M", "-o"])
        .arg(report.path())
        .arg(bin)
        .arg("--root")
        .arg(root)
        .args(args);
    let command = format!(
        "{} --root {} {}",
        bin.display(),
        root.display(),
        args.join(" ")
    );
    let (out, elapsed) = start(cmd, &[], command).wait(TIMEOUT);
    let max_rss_kb = read_report(report.path()) / busybox_rss_factor();
    Measured {
        out,
        max_rss_kb,
        elapsed,
    }
}

/// The last line of busybox time's report (a failed command adds a line before).
fn read_report(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("busybox time reported {text:?}"))
}

/// How many times too large busybox's `%M` is: 4 for busybox 1.35, 1 once fixed.
fn busybox_rss_factor() -> u64 {
    static FACTOR: OnceLock<u64> = OnceLock::new();
    *FACTOR.get_or_init(|| {
        let report = tempfile::NamedTempFile::new().expect("tempfile for time's report");
        let status = Command::new(BUSYBOX)
            .args(["time", "-f", "%M", "-o"])
            .arg(report.path())
            .args([
                BUSYBOX,
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=64M",
                "count=1",
            ])
            .stderr(Stdio::null())
            .status()
            .expect("run busybox time dd");
        assert!(status.success(), "busybox time dd failed: {status}");
        // dd touches its whole 64 MiB buffer: about 66,000 KiB, or 4 times that.
        let kib = read_report(report.path());
        match kib / 60_000 {
            1 => 1,
            4 | 5 => 4,
            _ => panic!("busybox time says {kib} KiB for a 64 MiB dd: cannot read its %M"),
        }
    })
}

impl Spawned {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reaps the process (killing it after `timeout`, then panicking); returns its
    /// output and how long it ran.
    pub fn wait(mut self, timeout: Duration) -> (CmdOutput, Duration) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} did not finish within {timeout:?}; killed it",
                        self.command
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("waiting for {}: {e}", self.command),
            }
        };
        let elapsed = self.started.elapsed();
        let out = CmdOutput {
            command: self.command,
            status,
            stdout: read_all(&mut self.out),
            stderr: read_all(&mut self.err),
        };
        (out, elapsed)
    }
}

fn read_all(f: &mut File) -> String {
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek output file");
    f.read_to_end(&mut buf).expect("read output file");
    String::from_utf8_lossy(&buf).into_owned()
}

/// The number of open fds of the test process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// The median of `values` (0 when empty).
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}
