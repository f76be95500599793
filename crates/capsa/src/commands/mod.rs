//! One function per subcommand: arguments in, one library call, output out.

mod events;
mod exec;
mod features;
mod lifecycle;
mod pause;
mod run;
mod spec;
mod tty;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use capsa_linux::{cgroups, Runtime};

use crate::cli::{CgroupManager, Cli, Command};
use crate::logging::Logger;

/// A command's failure: the one line the user reads.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Runtime(#[from] capsa_linux::Error),
    #[error("{0}")]
    Usage(String),
    #[error("{0} is not supported by capsa yet")]
    Unsupported(&'static str),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub type CommandResult = Result<ExitCode, CommandError>;

/// The default state root: runc's rule, with our name. Root uses
/// `/run/capsa`; anyone else `$XDG_RUNTIME_DIR/capsa`, or `/run/capsa` when
/// that variable is unset or empty (where the user usually cannot write, as
/// with runc). The second value says whether the XDG directory is used.
fn default_root() -> (PathBuf, bool) {
    if nix::unistd::geteuid().is_root() {
        return (PathBuf::from("/run/capsa"), false);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => (PathBuf::from(dir).join("capsa"), true),
        _ => (PathBuf::from("/run/capsa"), false),
    }
}

/// Makes the XDG state root as runc does: 0700 and sticky, since the XDG
/// base directory spec lets the system prune files of `$XDG_RUNTIME_DIR` that
/// lack the sticky bit.
fn make_xdg_root(root: &std::path::Path) -> Result<(), CommandError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |what: String| move |source| CommandError::Io { what, source };
    std::fs::create_dir_all(root).map_err(io(format!("mkdir {}", root.display())))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1700))
        .map_err(io(format!("chmod {}", root.display())))
}

pub fn dispatch(cli: Cli, logger: &Logger) -> CommandResult {
    if matches!(cli.rootless, Some(crate::cli::Rootless::True)) {
        return Err(CommandError::Unsupported("--rootless=true"));
    }
    let systemd = match cli.cgroup_manager {
        None => cli.systemd_cgroup,
        Some(CgroupManager::Systemd) => true,
        Some(CgroupManager::Cgroupfs) => false,
        Some(CgroupManager::Disabled) => {
            return Err(CommandError::Unsupported("--cgroup-manager disabled"))
        }
    };
    let root = match cli.root.clone() {
        Some(root) => root,
        None => {
            let (root, xdg) = default_root();
            if xdg {
                make_xdg_root(&root)?;
            }
            root
        }
    };
    let mut rt = Runtime::new(root).reexec_when_sealed_copy_needed();
    if systemd {
        // Only `create` (and `run`) use it: later commands follow the state.
        rt = rt.with_cgroup_manager(cgroups::Manager::Systemd {
            bus: cgroups::systemd::system_bus_address(),
        });
    }
    match cli.command {
        Command::Create(a) => lifecycle::create(&rt, a),
        Command::Start(a) => lifecycle::start(&rt, &a.id, logger),
        Command::Run(a) => run::run(&rt, a, logger),
        Command::State(a) => lifecycle::state(&rt, &a.id),
        Command::Kill(a) => lifecycle::kill(&rt, a),
        Command::Delete(a) => lifecycle::delete(&rt, a, logger),
        Command::List(a) => lifecycle::list(&rt, a),
        Command::Ps(a) => lifecycle::ps(&rt, a),
        Command::Spec(a) => spec::spec(a),
        Command::Features => features::features(),
        Command::Exec(a) => exec::exec(&rt, *a),
        Command::Pause(a) => pause::pause(&rt, &a.id),
        Command::Resume(a) => pause::resume(&rt, &a.id),
        Command::Update(a) => update::update(&rt, *a),
        Command::Events(a) => events::events(&rt, a),
    }
}

/// Prints JSON the way runc does (indented for `state`, compact for lists).
fn print_json(value: &impl serde::Serialize, pretty: bool) -> Result<(), CommandError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .map_err(|e| CommandError::Usage(format!("cannot render JSON: {e}")))?;
    println!("{text}");
    Ok(())
}
