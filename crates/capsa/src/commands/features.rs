//! `features`: what this capsa implements, as runtime-spec features.md
//! describes it (containerd and CRI-O read it to decide what to ask for).

use std::process::ExitCode;

use super::{print_json, CommandResult};

pub fn features() -> CommandResult {
    print_json(
        &capsa_linux::features::features(env!("CARGO_PKG_VERSION")),
        true,
    )?;
    Ok(ExitCode::SUCCESS)
}
