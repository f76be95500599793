//! `capsa_spec::parse_process`: any bytes as `exec --process FILE` must give a
//! `Process` or a `SpecError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match capsa_spec::parse_process(data) {
        Ok(p) => {
            let _ = format!("{p:?}");
        }
        Err(e) => {
            assert!(!e.to_string().is_empty(), "empty error message");
        }
    }
});
