//! The command line as containerd (go-runc), conmon/podman and CRI-O use it: `--version`,
//! `features`, `spec`, the `--log` file, Go-`flag` spellings, refused options, racing
//! creates and the default state root. Every test passes against runc 1.1.5 (the oracle)
//! except for assertions guarded by `runc_deviates` or `capsa_only`.
//!
//! The tests live in `integration_test/cli/`, one file per concern; this file is the
//! cargo entry point and holds what they share.

use std::path::Path;
use std::process::Command;

use capsa_integration_test::{run_captured, runtime, CmdOutput};

#[path = "../cli/flags.rs"]
mod flags;
#[path = "../cli/info.rs"]
mod info;
#[path = "../cli/log_file.rs"]
mod log_file;
#[path = "../cli/races.rs"]
mod races;

/// Runs the runtime with exactly `args` (no `--root` added), in `cwd` if given.
///
/// Output goes to anonymous files, not pipes: a container made by `create` inherits the
/// runtime's stdio and would hold a pipe open.
fn raw(args: &[&str], cwd: Option<&Path>) -> CmdOutput {
    let rt = runtime();
    let describe = format!("`{} {}`", rt.path().display(), args.join(" "));
    let mut cmd = Command::new(rt.path());
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    run_captured(&mut cmd, &describe)
}
