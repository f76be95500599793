//! `capsa_spec::parse_resources`: any bytes as `update --resources FILE` must give
//! resources or a `SpecError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = capsa_spec::parse_resources(data) {
        assert!(!e.to_string().is_empty(), "empty error message");
    }
});
