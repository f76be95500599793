//! Finding the runtime binary under test and running it with a timeout.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::os::unix::process::ExitStatusExt;

/// How long one runtime call may take before the test gives up on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which runtime `CAPSA_RUNTIME` selected. Some assertions depend on it (see
/// [`crate::runc_deviates`] and [`crate::capsa_only`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeKind {
    Capsa,
    Runc,
    /// Any other runc-compatible runtime (crun, youki, ...), named by its file name.
    Other(String),
}

/// The runtime binary under test.
#[derive(Debug)]
pub struct Runtime {
    path: PathBuf,
    kind: RuntimeKind,
}

/// The runtime selected by `CAPSA_RUNTIME`, resolved once per test binary.
///
/// Panics (in every test that asks for it) when not running as root or when the
/// binary is missing, with a message saying how to fix that.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    crate::require_root();
    RUNTIME.get_or_init(Runtime::from_env)
}

impl Runtime {
    fn from_env() -> Runtime {
        let path = match std::env::var_os("CAPSA_RUNTIME") {
            Some(v) if !v.is_empty() => resolve_named(Path::new(&v)),
            _ => default_capsa_path(),
        };
        let kind = detect_kind(&path);
        Runtime { path, kind }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> &RuntimeKind {
        &self.kind
    }

    pub fn is_runc(&self) -> bool {
        self.kind == RuntimeKind::Runc
    }

    /// A short name for messages: `capsa`, `runc`, or the file name.
    pub fn name(&self) -> String {
        match &self.kind {
            RuntimeKind::Capsa => "capsa".to_string(),
            RuntimeKind::Runc => "runc".to_string(),
            RuntimeKind::Other(n) => n.clone(),
        }
    }

    /// Runs `<runtime> --root <root> <args...>` and waits (at most [`DEFAULT_TIMEOUT`]).
    pub fn cmd(&self, root: &Path, args: &[&str]) -> CmdOutput {
        self.cmd_timeout(root, args, DEFAULT_TIMEOUT)
    }

    /// Like [`Runtime::cmd`] with an explicit timeout; panics when it runs out.
    pub fn cmd_timeout(&self, root: &Path, args: &[&str], timeout: Duration) -> CmdOutput {
        match self.try_cmd(root, args, timeout) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs the runtime without panicking; `Err` describes a spawn failure or a timeout
    /// (the runtime process is then killed).
    ///
    /// stdout and stderr go to anonymous files rather than pipes: a container created by
    /// `create` or `run --detach` inherits the runtime's stdio and would hold a pipe open
    /// for as long as it lives.
    pub fn try_cmd(
        &self,
        root: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CmdOutput, String> {
        let mut full: Vec<String> = vec!["--root".into(), root.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        let describe = format!("`{} {}`", self.path.display(), full.join(" "));
        let mut cmd = Command::new(&self.path);
        cmd.args(&full);
        try_run_captured(&mut cmd, &describe, timeout)
    }
}

/// Runs `cmd` (named `describe` in messages) with stdin from /dev/null and waits at most
/// [`DEFAULT_TIMEOUT`]; panics when it cannot start or runs out of time (it is then
/// killed). stdout and stderr go to anonymous files, as in [`Runtime::try_cmd`].
pub fn run_captured(cmd: &mut Command, describe: &str) -> CmdOutput {
    match try_run_captured(cmd, describe, DEFAULT_TIMEOUT) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// [`run_captured`] with a timeout, returning the failure instead of panicking.
pub(crate) fn try_run_captured(
    cmd: &mut Command,
    describe: &str,
    timeout: Duration,
) -> Result<CmdOutput, String> {
    let mut out_file = tempfile::tempfile().map_err(|e| format!("tempfile: {e}"))?;
    let mut err_file = tempfile::tempfile().map_err(|e| format!("tempfile: {e}"))?;
    let clone = |f: &File| f.try_clone().map_err(|e| format!("dup: {e}"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(clone(&out_file)?)
        .stderr(clone(&err_file)?)
        .spawn()
        .map_err(|e| format!("cannot run {describe}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{describe} did not finish within {timeout:?}; killed it"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {describe}: {e}")),
        }
    };
    Ok(CmdOutput {
        command: describe.to_string(),
        status,
        stdout: read_all(&mut out_file),
        stderr: read_all(&mut err_file),
    })
}

fn read_all(f: &mut File) -> String {
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek output file");
    f.read_to_end(&mut buf).expect("read output file");
    String::from_utf8_lossy(&buf).into_owned()
}

/// `CAPSA_RUNTIME` is a path (contains `/`) or a command name looked up in `PATH`.
fn resolve_named(v: &Path) -> PathBuf {
    if v.as_os_str().to_string_lossy().contains('/') {
        let p = if v.is_absolute() {
            v.to_path_buf()
        } else {
            std::env::current_dir().expect("cwd").join(v)
        };
        if !is_executable(&p) {
            panic!(
                "CAPSA_RUNTIME={}: no executable file there. Build capsa with \
                 `cargo build -p capsa`, or point CAPSA_RUNTIME at a runtime binary \
                 (e.g. CAPSA_RUNTIME=runc)",
                v.display()
            );
        }
        return p;
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let p = dir.join(v);
        if is_executable(&p) {
            return p;
        }
    }
    panic!(
        "CAPSA_RUNTIME={}: not found in PATH. Install it (runc: `apt-get install runc`) or \
         build capsa with `cargo build -p capsa` and unset CAPSA_RUNTIME",
        v.display()
    );
}

fn default_capsa_path() -> PathBuf {
    let release = std::env::var("CAPSA_PROFILE").is_ok_and(|p| p == "release");
    let profile = if release { "release" } else { "debug" };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to the workspace root, where cargo runs.
        Some(t) if !t.is_empty() => workspace.join(t),
        _ => workspace.join("target"),
    };
    let path = target.join(profile).join("capsa");
    if !is_executable(&path) {
        let build = if release {
            "cargo build --release -p capsa"
        } else {
            "cargo build -p capsa"
        };
        panic!(
            "the capsa binary is missing at {}: build it first with `{build}` \
             (CAPSA_PROFILE=release selects target/release), or set CAPSA_RUNTIME to another \
             runtime, e.g. CAPSA_RUNTIME=runc",
            path.display()
        );
    }
    path
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn detect_kind(path: &Path) -> RuntimeKind {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file == "runc" {
        return RuntimeKind::Runc;
    }
    if file.starts_with("capsa") {
        return RuntimeKind::Capsa;
    }
    let version = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if version.starts_with("runc version") {
        RuntimeKind::Runc
    } else if version.starts_with("capsa") {
        RuntimeKind::Capsa
    } else {
        RuntimeKind::Other(file)
    }
}

/// What one runtime call did.
#[derive(Debug)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, `None` when the runtime itself was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the full output unless the call exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Exit 0 with nothing on stdout or stderr (create, start, kill, delete).
    pub fn assert_silent_success(&self) -> &Self {
        self.assert_success();
        assert!(
            self.stdout.is_empty() && self.stderr.is_empty(),
            "expected a silent success:\n{self}"
        );
        self
    }

    /// A failure as the developers' guide wants it: a non-zero exit, nothing on stdout,
    /// and exactly one non-empty line on stderr. Returns that line.
    pub fn assert_error_line(&self) -> String {
        assert!(
            !self.success(),
            "expected a failure (non-zero exit):\n{self}"
        );
        assert!(
            self.code().is_some(),
            "the runtime died from a signal instead of exiting with an error:\n{self}"
        );
        assert!(self.stdout.is_empty(), "expected empty stdout:\n{self}");
        let err = self.stderr.trim();
        assert!(!err.is_empty(), "expected an error line on stderr:\n{self}");
        assert_eq!(
            err.lines().count(),
            1,
            "expected exactly one error line on stderr:\n{self}"
        );
        err.to_string()
    }

    /// [`CmdOutput::assert_error_line`] plus: the line contains `needle` (ASCII case-insensitive).
    pub fn assert_error_mentions(&self, needle: &str) -> String {
        let line = self.assert_error_line();
        assert!(
            line.to_lowercase().contains(&needle.to_lowercase()),
            "the error line should mention {needle:?}:\n{self}"
        );
        line
    }
}

impl fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "unknown status".to_string(),
        };
        write!(
            f,
            "  command: {}\n  status: {how}\n  stdout: {:?}\n  stderr: {:?}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Writes straight to the process's stderr. libtest captures `eprintln!` of passing
/// tests, so notices that must be seen (skipped assertions) bypass the capture.
pub fn loud(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n!!!!!!!! {msg}");
}
