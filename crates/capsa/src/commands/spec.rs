//! `spec`: writes the default config.json (runc's, with our hostname).

use std::io::Write;
use std::process::ExitCode;

use super::{CommandError, CommandResult};
use crate::cli::SpecArgs;

pub fn spec(a: SpecArgs) -> CommandResult {
    let dir = a.bundle.unwrap_or_else(|| ".".into());
    let path = dir.join("config.json");
    let ids = a.rootless.then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    let config = capsa_spec::default_config::default_config(ids);
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| CommandError::Usage(format!("cannot render config.json: {e}")))?;
    // create_new: never overwrite a config the user wrote (runc refuses too).
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| CommandError::Io {
            what: if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists; remove it first", path.display())
            } else {
                format!("cannot write {}", path.display())
            },
            source: e,
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| CommandError::Io {
            what: format!("write {}", path.display()),
            source: e,
        })?;
    Ok(ExitCode::SUCCESS)
}
