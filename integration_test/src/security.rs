//! Helpers for the CVE regression tests (`tests/security.rs`): a private copy of the
//! runtime binary (so that an attack that works damages a temp file, not the build), a
//! pipe kept full (a process writing its error to it blocks, which keeps a short-lived
//! victim alive), the shared libraries a dynamically linked binary needs inside a rootfs,
//! processes found by their command line, and a guard that restores a host file such as
//! `/proc/sys/kernel/core_pattern` if an attack changed it.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};

use crate::{runtime, CmdOutput, RuntimeKind, DEFAULT_TIMEOUT};

/// A file's identity on the host: (device, inode).
pub type FileId = (u64, u64);

/// The (device, inode) of `path`, following symlinks (so `/proc/<pid>/exe` gives the
/// executable that process runs).
pub fn file_id(path: &Path) -> Option<FileId> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// `sha256sum <path>`, the hex digest.
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run sha256sum: {e}"));
    assert!(
        out.status.success(),
        "sha256sum {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A copy of the runtime under test (`CAPSA_RUNTIME`, default capsa) in a private temp
/// directory, run instead of the original so that an attack on the binary can only
/// damage the copy.
pub struct RuntimeCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sha256: String,
}

impl RuntimeCopy {
    /// Copies the runtime binary to `/tmp/capsa-it-exe-XXXX/<capsa|runc|name>` (mode 0755)
    /// and records its digest.
    pub fn new() -> RuntimeCopy {
        let rt = runtime();
        let dir = tempfile::Builder::new()
            .prefix("capsa-it-exe-")
            .tempdir()
            .expect("create temp dir for the runtime copy");
        let name = match rt.kind() {
            RuntimeKind::Capsa => "capsa".to_string(),
            RuntimeKind::Runc => "runc".to_string(),
            RuntimeKind::Other(n) => n.clone(),
        };
        let base = fs::canonicalize(dir.path()).expect("canonicalize temp dir");
        let path = base.join(name);
        fs::copy(rt.path(), &path)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", rt.path().display(), path.display()));
        let sha256 = sha256(&path);
        RuntimeCopy {
            _dir: dir,
            path,
            sha256,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest taken right after the copy.
    pub fn original_sha256(&self) -> &str {
        &self.sha256
    }

    /// (device, inode) of the copy.
    pub fn id(&self) -> FileId {
        file_id(&self.path).expect("stat the runtime copy")
    }

    /// Panics unless the copy still has the digest it had when it was made.
    pub fn assert_unchanged(&self, context: &str) {
        let now = sha256(&self.path);
        assert_eq!(
            now,
            self.sha256,
            "ATTACK SUCCEEDED: the runtime binary on the host ({}) was modified {context}",
            self.path.display()
        );
    }

    /// `<copy> --root <root> <args...>`, not started.
    pub fn command(&self, root: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(root).args(args);
        cmd
    }

    /// Runs `<copy> --root <root> <args...>` with stdin from /dev/null and stdout and
    /// stderr into files, within [`DEFAULT_TIMEOUT`].
    pub fn cmd(&self, root: &Path, args: &[&str]) -> CmdOutput {
        run_captured(self.command(root, args), DEFAULT_TIMEOUT)
    }
}

impl Default for RuntimeCopy {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into anonymous files (a
/// container that inherits them must not hold a pipe open); kills it after `timeout`.
pub fn run_captured(mut cmd: Command, timeout: Duration) -> CmdOutput {
    let describe = format!("{cmd:?}");
    crate::runtime::try_run_captured(&mut cmd, &describe, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for `child` at most `timeout`; `None` when it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("wait for child: {e}"),
        }
    }
}

/// A pipe whose buffer is full: whoever writes to its write end blocks until the test
/// drains it. Given as stdout and stderr of a runtime binary that is about to fail, it
/// holds that process (alive, inside the container) for as long as the test wants.
pub struct FullPipe {
    read: Option<OwnedFd>,
    write: Option<OwnedFd>,
}

impl FullPipe {
    /// A pipe shrunk to one page and filled to the brim; the write end is blocking.
    pub fn new() -> FullPipe {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
        let _ = fcntl(&write, FcntlArg::F_SETPIPE_SZ(4096));
        let flags = OFlag::from_bits_truncate(fcntl(&write, FcntlArg::F_GETFL).expect("F_GETFL"));
        fcntl(&write, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).expect("set O_NONBLOCK");
        let chunk = [b'.'; 4096];
        loop {
            match nix::unistd::write(&write, &chunk) {
                Ok(_) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => panic!("fill the pipe: {e}"),
            }
        }
        // O_NONBLOCK belongs to the open file description, which the child shares:
        // clear it so that the child's write blocks instead of failing with EAGAIN.
        fcntl(&write, FcntlArg::F_SETFL(flags)).expect("clear O_NONBLOCK");
        FullPipe {
            read: Some(read),
            write: Some(write),
        }
    }

    /// A duplicate of the write end for a child's stdout or stderr.
    pub fn writer(&self) -> Stdio {
        let w = self.write.as_ref().expect("the write end is still ours");
        Stdio::from(w.try_clone().expect("dup the write end"))
    }

    /// Drops our own write end (after the children that need it were spawned), so that
    /// the reader sees EOF once they are gone.
    pub fn close_writer(&mut self) {
        self.write = None;
    }

    /// Starts draining the pipe in a thread (unblocking the writers) and returns what
    /// was read, the filler dots removed, once every write end is closed or `timeout`
    /// passed (then `None`: a writer is still alive).
    pub fn drain(mut self, timeout: Duration) -> Option<String> {
        self.close_writer();
        let read = self.read.take().expect("read end");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut f = File::from(read);
            let mut all = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let text = String::from_utf8_lossy(&all).replace('.', "");
            let _ = tx.send(text);
        });
        rx.recv_timeout(timeout).ok()
    }
}

impl Default for FullPipe {
    fn default() -> Self {
        Self::new()
    }
}

/// Copies the shared libraries `binary` needs (as `ldd` lists them, the ELF
/// interpreter included) into `rootfs` at the same paths, so that the binary can run
/// inside a container built from that rootfs. Does nothing for a static binary.
pub fn copy_shared_libs(binary: &Path, rootfs: &Path) {
    let out = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ldd: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).expect("create library dir in the rootfs");
        }
        fs::copy(path, &dest)
            .unwrap_or_else(|e| panic!("copy {path} into the rootfs ({}): {e}", dest.display()));
    }
}

/// The NUL-separated command line of `pid`, split.
pub fn cmdline_of(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Live processes whose command line is exactly `argv`.
pub fn pids_with_cmdline(argv: &[&str]) -> Vec<u32> {
    crate::all_pids()
        .into_iter()
        .filter(|&pid| crate::pid_alive(pid) && cmdline_of(pid) == argv)
        .collect()
}

/// Every open fd of `pid` as (number, readlink target), as the host sees them.
pub fn fds_of(pid: u32) -> Vec<(u32, String)> {
    let dir = format!("/proc/{pid}/fd");
    let mut fds: Vec<(u32, String)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let n: u32 = e.file_name().to_str()?.parse().ok()?;
                let target = fs::read_link(e.path())
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|err| format!("<{err}>"));
                Some((n, target))
            })
            .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

/// Holds the content of a host file (e.g. `/proc/sys/kernel/core_pattern`) and writes
/// it back on drop if it changed, so that a successful attack does not leave the host
/// altered.
pub struct HostFileGuard {
    path: PathBuf,
    before: Vec<u8>,
}

impl HostFileGuard {
    pub fn new(path: &Path) -> HostFileGuard {
        let before = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        HostFileGuard {
            path: path.to_path_buf(),
            before,
        }
    }

    /// The content when the guard was made.
    pub fn before(&self) -> String {
        String::from_utf8_lossy(&self.before).into_owned()
    }

    /// `Some(new content)` when the file changed.
    pub fn changed(&self) -> Option<String> {
        let now = fs::read(&self.path).unwrap_or_default();
        (now != self.before).then(|| String::from_utf8_lossy(&now).into_owned())
    }

    /// Restores the file if it changed; returns what it held.
    pub fn restore(&self) -> Option<String> {
        let changed = self.changed();
        if changed.is_some() {
            let _ = fs::write(&self.path, &self.before);
        }
        changed
    }
}

impl Drop for HostFileGuard {
    fn drop(&mut self) {
        if let Some(now) = self.restore() {
            crate::loud(&format!(
                "restored {} on the host (it had been changed to {now:?})",
                self.path.display()
            ));
        }
    }
}

/// The names in `dir` (empty when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Host mount points at or below `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    crate::mountinfo()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .map(|m| m.line)
        .collect()
}

/// `mknod <path> c <major> <minor>` with mode 0666 (the test runs as root on the host).
pub fn mknod_char(path: &Path, major: u64, minor: u64) {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent of the device node");
    }
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {} c {major} {minor}: {e}", path.display()));
}
