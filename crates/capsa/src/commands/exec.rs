//! `exec`: a process in a running container. In the foreground capsa waits
//! for it, forwarding signals, and exits with its status; with `--detach` it
//! returns once the program was exec'd (the pid file written), and the
//! process is the caller's to reap.

use std::process::ExitCode;

use capsa_linux::{ExecOptions, ExecOverrides, ExecProcess, Runtime};

use super::lifecycle::pid_file_path;
use super::run::{block_forwarded_signals, wait_for};
use super::{tty, CommandError, CommandResult};
use crate::cli::ExecArgs;

pub fn exec(rt: &Runtime, a: ExecArgs) -> CommandResult {
    if a.apparmor.is_some() || a.process_label.is_some() {
        return Err(CommandError::Unsupported(
            "exec --apparmor/--process-label (no LSM support)",
        ));
    }
    let process = match &a.process {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| CommandError::Io {
                what: format!("cannot read {}", path.display()),
                source: e,
            })?;
            ExecProcess::Given(capsa_spec::parse_process(&bytes).map_err(capsa_linux::Error::from)?)
        }
        None => ExecProcess::Override(overrides(&a)?),
    };
    if !a.detach {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| CommandError::Io {
            what: "become a child subreaper".into(),
            source: e.into(),
        })?;
    }
    let mut relay = None;
    let console = match &a.console_socket {
        Some(path) => Some(capsa_linux::Console::Socket(path.clone())),
        None if !a.detach => {
            let (ours, theirs) = tty::console_pair()?;
            relay = Some(ours);
            Some(theirs)
        }
        None => None,
    };
    let opts = ExecOptions {
        console,
        ignore_paused: a.ignore_paused,
        pidfd_socket: a.pidfd_socket.clone(),
        sub_cgroups: a.cgroup.clone(),
        id: a.id.clone(),
        process,
        pid_file: pid_file_path(a.pid_file.as_deref())?,
        preserve_fds: a.preserve_fds,
    };
    let pid = rt.exec(&opts)?;
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    let master = match &relay {
        Some(sock) => tty::take_master(sock)?,
        None => None,
    };
    let sfd = block_forwarded_signals()?;
    let code = match master {
        Some(master) => tty::relay(master, pid, &sfd)?,
        None => wait_for(pid, &sfd)?,
    };
    Ok(ExitCode::from(code))
}

fn overrides(a: &ExecArgs) -> Result<ExecOverrides, CommandError> {
    let (uid, gid) = match &a.user {
        None => (None, None),
        Some(u) => {
            let (uid, gid) = match u.split_once(':') {
                Some((uid, gid)) => (uid, Some(gid)),
                None => (u.as_str(), None),
            };
            let num = |s: &str| {
                s.parse::<u32>().map_err(|_| {
                    CommandError::Usage(format!("--user {u:?}: expected uid[:gid] as numbers"))
                })
            };
            (Some(num(uid)?), gid.map(num).transpose()?)
        }
    };
    for kv in &a.env {
        if !kv.contains('=') {
            return Err(CommandError::Usage(format!(
                "--env {kv:?}: expected NAME=value"
            )));
        }
    }
    Ok(ExecOverrides {
        args: a
            .command
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect(),
        env: a.env.clone(),
        cwd: a.cwd.clone(),
        uid,
        gid,
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        terminal: a.tty,
    })
}
