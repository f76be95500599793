//! Soaks: many lifecycles in a row and side by side, `kill -9` of capsa at every
//! phase of a command, two capsa processes racing on one id, and hostile configs.
//! The tests live in `integration_test/soak/`; this file is the cargo entry point
//! and holds what they share.
//!
//! CI runs the short form. The long form is run by hand:
//! `CAPSA_SOAK=long cargo test -p capsa-integration-test --test soak -- --nocapture`
//! (1000 sequential and 100 parallel lifecycles, more race rounds).
//!
//! The tests of this binary take turns ([`exclusive`]): each counts the fds and the
//! processes of the whole test process, which another test running at the same time
//! would disturb.

use std::sync::{Mutex, MutexGuard};

#[path = "../soak/faults.rs"]
mod faults;
#[path = "../soak/hostile.rs"]
mod hostile;
#[path = "../soak/lifecycles.rs"]
mod lifecycles;
#[path = "../soak/measure.rs"]
mod measure;
#[path = "../soak/races.rs"]
mod races;

/// The short form (CI) or the long form (`CAPSA_SOAK=long`).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub sequential: usize,
    pub parallel: usize,
    pub race_rounds: usize,
    pub long: bool,
}

impl Scale {
    pub fn from_env() -> Scale {
        match std::env::var("CAPSA_SOAK").as_deref() {
            Ok("long") => Scale {
                sequential: 1000,
                parallel: 100,
                race_rounds: 100,
                long: true,
            },
            Ok("") | Ok("short") | Err(_) => Scale {
                sequential: 40,
                parallel: 20,
                race_rounds: 6,
                long: false,
            },
            Ok(other) => panic!("CAPSA_SOAK={other:?}: use `long` (or `short`, the default)"),
        }
    }
}

/// One soak at a time in this test binary.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
