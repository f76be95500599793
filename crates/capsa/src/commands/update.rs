//! `update --resources FILE|- <id>`: new resource limits for a container,
//! as `LinuxResources` JSON (containerd and CRI-O send it on stdin with
//! `-`, podman in a file).
//!
//! runc's single-value flags (`--memory`, `--cpu-shares`, `--pids-limit`,
//! ...) are not implemented: every known caller uses `--resources`.

use std::io::Read;
use std::process::ExitCode;

use capsa_linux::Runtime;

use super::{CommandError, CommandResult};
use crate::cli::UpdateArgs;

pub fn update(rt: &Runtime, a: UpdateArgs) -> CommandResult {
    let Some(source) = a.resources else {
        return Err(CommandError::Unsupported(
            "update without --resources (runc's single-value flags such as --memory)",
        ));
    };
    let bytes = if source.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| CommandError::Io {
                what: "read the resources JSON from stdin".into(),
                source,
            })?;
        buf
    } else {
        std::fs::read(&source).map_err(|e| CommandError::Io {
            what: format!("read --resources {}", source.display()),
            source: e,
        })?
    };
    let resources = capsa_spec::parse_resources(&bytes).map_err(capsa_linux::Error::from)?;
    rt.update(&a.id, &resources)?;
    Ok(ExitCode::SUCCESS)
}
