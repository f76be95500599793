//! Named fault points for the crash soak (`integration_test/soak/faults.rs`).
//!
//! Built only with the cargo feature `fault-injection` (off by default; the
//! soak builds its own capsa with it into a separate target dir). With
//! `CAPSA_FAULT=<name>` in the environment, capsa stops itself (SIGSTOP) at
//! the point of that name, so the test can SIGKILL it exactly there and check
//! what a crash at that moment leaves behind. Without the feature a point is
//! an empty inline function.

/// Stops this process when `CAPSA_FAULT` names this point.
#[cfg(feature = "fault-injection")]
pub(crate) fn point(name: &str) {
    if std::env::var_os("CAPSA_FAULT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}

/// Nothing: the feature `fault-injection` is off.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}
