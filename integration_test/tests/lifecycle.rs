//! The container lifecycle as callers drive it: create, state, start, kill, delete,
//! run, list, the pid file, rlimits, and hooks. Every test passes against runc 1.1.5
//! (the oracle) except for assertions guarded by `runc_deviates` (runc differs from the
//! runtime spec) or `capsa_only` (capsa's own wording).
//!
//! The tests live in `integration_test/lifecycle/`, one file per concern; this file is
//! the cargo entry point and holds what they share.

use std::time::Duration;

use capsa_integration_test::Bundle;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// Asserts the fields every `state` object must carry.
fn assert_state(state: &Value, id: &str, bundle: &Bundle, status: &str) {
    assert!(
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "state needs a non-empty ociVersion: {state}"
    );
    assert_eq!(state["id"], id, "state id: {state}");
    assert_eq!(state["status"], status, "state status: {state}");
    assert_eq!(
        state["bundle"],
        bundle.path_str(),
        "state bundle must be the absolute bundle path: {state}"
    );
}

#[path = "../lifecycle/create_delete.rs"]
mod create_delete;
#[path = "../lifecycle/hook_failures.rs"]
mod hook_failures;
#[path = "../lifecycle/hooks.rs"]
mod hooks;
#[path = "../lifecycle/rlimits.rs"]
mod rlimits;
#[path = "../lifecycle/run_list.rs"]
mod run_list;
