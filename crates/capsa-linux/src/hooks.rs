//! Running one OCI hook: the container's state JSON on its stdin, its own
//! args and env (nothing inherited from capsa), and its `timeout` enforced.
//! What it prints goes into the error when it fails, so the user sees why.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use capsa_spec::Hook;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::sys;

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} timed out after {secs} s and was killed")]
    Timeout { path: String, secs: u32 },
    #[error("{path} {status}{}", output_suffix(.output))]
    Failed {
        path: String,
        status: String,
        output: String,
    },
}

fn output_suffix(output: &str) -> String {
    let t = output.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", t.replace('\n', " | "))
    }
}

/// The state JSON with another `status` (hooks at different points of the
/// lifecycle see the status of that point).
pub fn with_status(state_json: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["status"] = serde_json::Value::String(status.to_string());
            v.to_string()
        }
        Err(_) => state_json.to_string(),
    }
}

/// Runs `hook` to completion with `state_json` on its stdin.
pub fn run(hook: &Hook, state_json: &str) -> Result<(), HookError> {
    let path = hook.path.display().to_string();
    let spawn_err = |source| HookError::Spawn {
        path: path.clone(),
        source,
    };
    let output =
        nix::sys::memfd::memfd_create(c"capsa-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| spawn_err(e.into()))?;
    let mut output = std::fs::File::from(output);
    let mut cmd = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(output.try_clone().map_err(spawn_err)?)
        .stderr(output.try_clone().map_err(spawn_err)?);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may exit first: EPIPE is fine.
        match stdin.write_all(state_json.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(spawn_err(e)),
            _ => {}
        }
    }
    if let Some(secs) = hook.timeout {
        let pidfd = sys::pidfd_open(child.id() as i32).map_err(spawn_err)?;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let ms = u64::from(secs).saturating_mul(1000).min(i32::MAX as u64) as i32;
        let ready = loop {
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(|e| spawn_err(e.into()))?,
            }
        };
        if ready == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout { path, secs });
        }
    }
    let status = child.wait().map_err(spawn_err)?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = output.rewind();
    let _ = output.take(4096).read_to_string(&mut text);
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (_, Some(sig)) => format!("was killed by signal {sig}"),
        _ => status.to_string(),
    };
    Err(HookError::Failed {
        path,
        status,
        output: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn hook(args: &[&str], timeout: Option<u32>) -> Hook {
        Hook {
            path: PathBuf::from("/bin/sh"),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["X=1".into()],
            timeout,
        }
    }

    #[test]
    fn hook_gets_state_on_stdin_and_its_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > {}; echo \"$X\" >> {}", out.display(), out.display());
        run(&hook(&["sh", "-c", &script], Some(5)), r#"{"id":"c"}"#).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}1\n");
    }

    #[test]
    fn failure_carries_status_and_output() {
        let e = run(&hook(&["sh", "-c", "echo oops >&2; exit 3"], None), "{}").unwrap_err();
        assert_eq!(e.to_string(), "/bin/sh exited with status 3: oops");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let e = run(&hook(&["sh", "-c", "sleep 10"], Some(1)), "{}").unwrap_err();
        assert!(matches!(e, HookError::Timeout { secs: 1, .. }), "{e}");
    }

    #[test]
    fn status_is_rewritten() {
        assert_eq!(
            with_status(r#"{"status":"created","id":"x"}"#, "running"),
            r#"{"id":"x","status":"running"}"#
        );
    }
}
