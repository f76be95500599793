//! The command line: `argv::normalize` (Go-flag spellings) and clap's parse of
//! `cli::Cli`, exactly as `main` runs them. Input: NUL-separated arguments (after the
//! program name); any bytes, including non-UTF-8, as the kernel allows in argv.
//!
//! cli.rs, argv.rs and logging.rs belong to the binary crate `capsa`, which has no
//! library target: they are compiled here in place with `#[path]`, unchanged, at the
//! crate root so that their `crate::cli` / `crate::logging` paths resolve.
#![no_main]
#![allow(dead_code, unused_imports)]

#[path = "../../crates/capsa/src/argv.rs"]
mod argv;
#[path = "../../crates/capsa/src/cli.rs"]
mod cli;
#[path = "../../crates/capsa/src/logging.rs"]
mod logging;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // argv entries cannot contain NUL; an empty input is `capsa` alone.
    let args: Vec<OsString> = std::iter::once(OsString::from("capsa"))
        .chain(
            data.split(|b| *b == 0)
                .filter(|_| !data.is_empty())
                .map(|a| OsString::from_vec(a.to_vec())),
        )
        .collect();
    let normalized = argv::normalize(args.clone());
    // The normalizer only rewrites and inserts: it never drops the program name.
    assert_eq!(normalized.first(), args.first());
    match cli::Cli::try_parse_from(normalized) {
        Ok(cli) => {
            let _ = format!("{cli:?}");
        }
        Err(e) => {
            // What `e.exit()` would print (help, version, or the usage error).
            let _ = e.render().to_string();
        }
    }
});
