//! capsa's command line: clap structs only, no behaviour.
//!
//! The flag names, short aliases and defaults follow runc, because containerd (go-runc),
//! conmon/podman and CRI-O build their argv for runc (see docs `cli-contract.md` §1–2).
//! Two runc (urfave/Go `flag`) habits need care in clap:
//!
//! * Boolean flags may carry a value, `--detach=true` / `--force=false`. Every boolean here is
//!   declared with `num_args = 0..=1, require_equals = true, default_missing_value = "true"`,
//!   so `--detach`, `--detach=true` and `--detach=false` all work, while `--detach <id>` still
//!   leaves the id alone.
//! * Single-dash long flags (`-no-subreaper`, `-root=/x`) are rewritten before parsing by
//!   [`crate::argv::normalize`].
//!
//! `checkpoint` and `restore` are deliberately absent: podman and CRI-O probe for them with
//! `<runtime> checkpoint --help` and need a non-zero exit when they are unsupported.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::logging::Format;

/// What `capsa --version` prints after the binary name. go-runc parses the first line as
/// `<name> version <semver>` and later lines as `key: value` (`spec: `, `commit: `).
pub const VERSION_TEXT: &str = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0");

/// Top level: global flags, which (as with runc) must come before the subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "capsa",
    about = "An OCI container runtime, a drop-in replacement for runc",
    version = VERSION_TEXT,
    long_version = VERSION_TEXT,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (runc spells the short form `-v`).
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,

    /// Directory for container state. Unset means the runtime default
    /// (`/run/capsa`, or `$XDG_RUNTIME_DIR/capsa` when rootless), resolved by the caller.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Append log records (errors, and debug output with --debug) to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of the --log records.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub log_format: Format,

    /// Write debug records to the --log file.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub debug: bool,

    /// Use systemd (a transient scope unit) to manage the container cgroup;
    /// linux.cgroupsPath is then `slice:prefix:name`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub systemd_cgroup: bool,

    /// Whether to run in rootless mode. Unset means auto.
    #[arg(long, value_enum, value_name = "true|false|auto")]
    pub rootless: Option<Rootless>,

    /// Path to criu. Accepted for runc compatibility and ignored (no checkpoint support).
    #[arg(long, value_name = "PATH", hide = true)]
    pub criu: Option<PathBuf>,

    /// Cgroup manager (crun extension; podman sends `--cgroup-manager disabled`).
    #[arg(long, value_enum, value_name = "MANAGER")]
    pub cgroup_manager: Option<CgroupManager>,

    #[command(subcommand)]
    pub command: Command,
}

/// Value of the global `--rootless` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    True,
    False,
    Auto,
}

/// Value of the global `--cgroup-manager` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CgroupManager {
    Cgroupfs,
    Systemd,
    Disabled,
}

/// Output format of `list` and `ps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (init waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start(IdArg),
    /// Create and start a container.
    Run(RunArgs),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to the container's init (or to every process with --all).
    Kill(KillArgs),
    /// Delete a container and its resources.
    Delete(DeleteArgs),
    /// List containers.
    List(ListArgs),
    /// Write a starter config.json into the bundle.
    Spec(SpecArgs),
    /// Print the runtime's supported features as JSON.
    Features,
    /// List the processes running in a container.
    Ps(PsArgs),
    /// Run a new process inside a container. (Boxed: by far the largest variant.)
    Exec(Box<ExecArgs>),
    /// Freeze every process in a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Update a container's resource limits. (Boxed: runc's many flags.)
    Update(Box<UpdateArgs>),
    /// Print container statistics and OOM events.
    Events(EventsArgs),
}

/// A subcommand whose only argument is the container id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id.
    pub id: String,
}

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory (holding config.json).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,

    /// Write the init's host pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Unix socket over which to send the pty master (terminal containers).
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,

    /// Unix socket over which to send a pidfd of the init.
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,

    /// Do not use pivot_root (MS_MOVE + chroot instead).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub no_pivot: bool,

    /// Do not create a new session keyring.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub no_new_keyring: bool,

    /// Pass this many extra fds (3, 4, …) to the container process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,

    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,

    /// Return after start instead of waiting for the container to exit.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub detach: bool,

    /// Do not delete the container after it exits.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub keep: bool,

    /// Do not make capsa a child subreaper (runc flag; accepted).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process in the container's cgroup.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub all: bool,

    /// Container id.
    pub id: String,

    /// Signal number or name (`9`, `KILL`, `SIGKILL`).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub force: bool,

    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Print only the container ids.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Bundle directory to write config.json into (default: the current directory).
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,

    /// Generate a config for a rootless container.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub rootless: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Container id.
    pub id: String,

    /// Options for ps(1) in table format (default `-ef`), kept verbatim.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS_ARGS"
    )]
    pub ps_args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// JSON file holding a full OCI Process; takes precedence over the other process flags.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,

    /// Return once the process has started.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub detach: bool,

    /// Write the process's host pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Unix socket over which to send the pty master.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,

    /// Unix socket over which to send a pidfd of the process.
    #[arg(long, value_name = "SOCKET")]
    pub pidfd_socket: Option<PathBuf>,

    /// Allocate a pseudo-terminal.
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub tty: bool,

    /// Working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Set an environment variable, KEY=VALUE (repeatable).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// User to run as, UID[:GID].
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// Additional group id (repeatable).
    #[arg(short = 'g', long, value_name = "GID")]
    pub additional_gids: Vec<u32>,

    /// Add a capability to the bounding, effective, permitted and ambient sets (repeatable).
    #[arg(short, long, value_name = "CAP")]
    pub cap: Vec<String>,

    /// Set no_new_privs for the process.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub no_new_privs: bool,

    /// AppArmor profile for the process.
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,

    /// SELinux label for the process.
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,

    /// Pass this many extra fds (3, 4, …) to the process.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,

    /// Run in a sub-cgroup: `PATH` or `CONTROLLER[,CONTROLLER…]:PATH` (repeatable).
    #[arg(long, value_name = "CGROUP")]
    pub cgroup: Vec<String>,

    /// Exec even if the container is paused.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub ignore_paused: bool,

    /// Container id.
    pub id: String,

    /// Command and its arguments (ignored with --process), kept verbatim.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<OsString>,
}

/// runc's `update` flags. A value of 0 (or an empty string) leaves that
/// setting as it is, as with runc.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// LinuxResources JSON file, or `-` for stdin. When given, the
    /// single-value flags below are ignored (as runc does).
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,

    /// Block IO weight (10-1000).
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,

    /// CPU CFS period in microseconds.
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_period: Option<u64>,

    /// CPU CFS quota in microseconds per period (-1: no limit).
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,

    /// CPU CFS burst in microseconds.
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_burst: Option<u64>,

    /// CPU shares (relative weight). runc spells it `--cpu-share`.
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        value_name = "SHARES",
        allow_negative_numbers = true
    )]
    pub cpu_share: Option<u64>,

    /// CPU realtime period in microseconds.
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_rt_period: Option<u64>,

    /// CPU realtime runtime in microseconds per period.
    #[arg(long, value_name = "USECS", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,

    /// CPUs to use, such as `0-3,6`.
    #[arg(long, value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,

    /// Memory nodes to use, such as `0`.
    #[arg(long, value_name = "NODES")]
    pub cpuset_mems: Option<String>,

    /// SCHED_IDLE for the cgroup: 1 yes, 0 no.
    #[arg(long, value_name = "0|1", allow_negative_numbers = true)]
    pub cpu_idle: Option<i64>,

    /// Memory limit: bytes or a size such as `64m`, `1g` (-1: no limit).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub memory: Option<String>,

    /// Memory reservation (soft limit): bytes or a size.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,

    /// Memory + swap limit: bytes or a size (-1: unlimited swap).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,

    /// Obsolete kernel memory limit: accepted and ignored, as by runc.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true, hide = true)]
    pub kernel_memory: Option<String>,

    /// Obsolete kernel TCP memory limit: accepted and ignored, as by runc.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true, hide = true)]
    pub kernel_memory_tcp: Option<String>,

    /// Maximum number of pids (-1: no limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,

    /// Intel RDT/CAT L3 cache schema (refused: capsa has no Intel RDT support).
    #[arg(long, value_name = "SCHEMA")]
    pub l3_cache_schema: Option<String>,

    /// Intel RDT/MBA memory bandwidth schema (refused: no Intel RDT support).
    #[arg(long, value_name = "SCHEMA")]
    pub mem_bw_schema: Option<String>,

    /// Container id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_parser = go_bool, action = ArgAction::Set,
          value_name = "BOOL", hide_default_value = true)]
    pub stats: bool,

    /// Interval between stats events, a Go duration such as `5s`.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub interval: String,

    /// Container id.
    pub id: String,
}

/// Parses a boolean the way Go's `strconv.ParseBool` does, since runc's callers are Go programs.
fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {value:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_output_starts_like_runc() {
        for flag in ["--version", "-v"] {
            let err = Cli::try_parse_from(["capsa", flag]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DisplayVersion);
            assert_eq!(
                err.to_string(),
                format!("capsa version {}\nspec: 1.2.0\n", env!("CARGO_PKG_VERSION"))
            );
        }
    }

    #[test]
    fn checkpoint_and_restore_are_unsupported() {
        for sub in ["checkpoint", "restore"] {
            let err = Cli::try_parse_from(["capsa", sub, "--help"]).unwrap_err();
            assert!(err.use_stderr(), "{sub} --help must fail, got {err}");
            assert_eq!(err.kind(), ErrorKind::InvalidSubcommand);
        }
    }

    #[test]
    fn go_booleans() {
        assert_eq!(go_bool("T"), Ok(true));
        assert_eq!(go_bool("0"), Ok(false));
        assert!(go_bool("yes").is_err());
    }

    #[test]
    fn bool_flag_does_not_swallow_the_id() {
        let cli = Cli::try_parse_from(["capsa", "delete", "--force", "abc"]).unwrap();
        let Command::Delete(args) = cli.command else {
            panic!()
        };
        assert!(args.force);
        assert_eq!(args.id, "abc");
    }
}
