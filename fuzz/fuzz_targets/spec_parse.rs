//! `capsa_spec::parse`: any bytes as `config.json` must give a `ValidSpec` or a
//! `SpecError`, never a panic (capsa reports every rejection as one error line).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match capsa_spec::parse(data, Path::new("/run/bundle")) {
        Ok(spec) => {
            // A valid spec is used further: formatting it must not panic either.
            let _ = format!("{spec:?}");
        }
        Err(e) => {
            // The error is printed as capsa's single error line.
            let line = e.to_string();
            assert!(!line.is_empty(), "empty error message");
        }
    }
});
