//! create, start, state, kill, delete, list, ps.

use std::io::Write;
use std::process::ExitCode;

use capsa_linux::{parse_signal, CreateOptions, Runtime};

use super::{print_json, CommandError, CommandResult};
use crate::cli::{CreateArgs, DeleteArgs, KillArgs, ListArgs, OutputFormat, PsArgs};
use crate::logging::Logger;

pub fn create_options(a: &CreateArgs) -> Result<CreateOptions, CommandError> {
    let bundle = std::path::absolute(&a.bundle).map_err(|e| CommandError::Io {
        what: format!("bundle {}", a.bundle.display()),
        source: e,
    })?;
    Ok(CreateOptions {
        id: a.id.clone(),
        bundle,
        pid_file: pid_file_path(a.pid_file.as_deref())?,
        console: a.console_socket.clone().map(capsa_linux::Console::Socket),
        pidfd_socket: a.pidfd_socket.clone(),
        notify_socket: notify_socket(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        listen_fds: listen_fds(),
        preserve_fds: a.preserve_fds,
    })
}

/// `--pid-file`, resolved against the caller's cwd at once (callers such
/// as conmon may pass a relative path; go-runc makes it absolute itself).
pub fn pid_file_path(
    p: Option<&std::path::Path>,
) -> Result<Option<std::path::PathBuf>, CommandError> {
    p.map(std::path::absolute)
        .transpose()
        .map_err(|e| CommandError::Io {
            what: "--pid-file".into(),
            source: e,
        })
}

/// systemd's `NOTIFY_SOCKET`, when capsa runs as a notify service.
pub fn notify_socket() -> Option<std::path::PathBuf> {
    std::env::var_os("NOTIFY_SOCKET")
        .filter(|s| !s.is_empty())
        .map(std::path::PathBuf::from)
}

/// The sockets systemd passed us for socket activation: `LISTEN_FDS`, when
/// `LISTEN_PID` names this process (sd_listen_fds(3)).
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if for_us {
        n
    } else {
        0
    }
}

pub fn create(rt: &Runtime, a: CreateArgs) -> CommandResult {
    rt.create(&create_options(&a)?)?;
    Ok(ExitCode::SUCCESS)
}

pub fn start(rt: &Runtime, id: &str, logger: &Logger) -> CommandResult {
    for w in rt.start_notify(id, notify_socket().as_deref())? {
        warn(logger, &w);
    }
    Ok(ExitCode::SUCCESS)
}

/// A warning goes to the log and to stderr (start and delete own their
/// stderr, unlike create, whose stderr is the container's).
fn warn(logger: &Logger, msg: &str) {
    logger.warn(msg);
    let _ = writeln!(std::io::stderr(), "warning: {msg}");
}

pub fn state(rt: &Runtime, id: &str) -> CommandResult {
    print_json(&rt.state(id)?, true)?;
    Ok(ExitCode::SUCCESS)
}

pub fn kill(rt: &Runtime, a: KillArgs) -> CommandResult {
    let signal = parse_signal(&a.signal).map_err(CommandError::Usage)?;
    rt.kill(&a.id, signal, a.all)?;
    Ok(ExitCode::SUCCESS)
}

pub fn delete(rt: &Runtime, a: DeleteArgs, logger: &Logger) -> CommandResult {
    for w in rt.delete(&a.id, a.force)? {
        warn(logger, &w);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(rt: &Runtime, a: ListArgs) -> CommandResult {
    let all = rt.list()?;
    if a.quiet {
        for s in &all {
            println!("{}", s.id);
        }
    } else if a.format == OutputFormat::Json {
        print_json(&all, false)?;
    } else {
        println!(
            "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for s in &all {
            println!(
                "{:<12} {:<8} {:<10} {:<40} {:<31} {}",
                s.id,
                s.pid,
                s.status,
                s.bundle,
                s.created,
                if s.owner.is_empty() { "root" } else { &s.owner }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn ps(rt: &Runtime, a: PsArgs) -> CommandResult {
    let pids = rt.pids(&a.id)?;
    if a.format == OutputFormat::Json {
        print_json(&pids, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Table: the host's ps, filtered to the container's pids (runc's way).
    let args: Vec<std::ffi::OsString> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| CommandError::Io {
            what: "run ps".into(),
            source: e,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| CommandError::Usage("ps output has no PID column".into()))?;
    println!("{header}");
    for line in lines {
        if let Some(pid) = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&pid) {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
