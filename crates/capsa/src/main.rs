//! capsa: an OCI container runtime with runc's command line.
//!
//! This binary is a thin layer: it parses the command line (Go-flag style,
//! as runc's callers send it), calls `capsa-linux`, and reports an error
//! once, as one line on stderr and one record in `--log`.

mod argv;
mod cli;
mod commands;
mod logging;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(argv::normalize(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let logger = match logging::Logger::new(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!(
                "cannot open log file {}: {e}",
                cli.log
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            );
            return ExitCode::FAILURE;
        }
    };
    let _ = logging::install_tracing(logger.clone());
    match commands::dispatch(cli, &logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
