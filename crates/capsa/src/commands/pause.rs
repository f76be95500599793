//! `pause <id>` and `resume <id>`.

use std::process::ExitCode;

use capsa_linux::Runtime;

use super::CommandResult;

pub fn pause(rt: &Runtime, id: &str) -> CommandResult {
    rt.pause(id)?;
    Ok(ExitCode::SUCCESS)
}

pub fn resume(rt: &Runtime, id: &str) -> CommandResult {
    rt.resume(id)?;
    Ok(ExitCode::SUCCESS)
}
