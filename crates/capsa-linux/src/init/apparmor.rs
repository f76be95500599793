//! `process.apparmorProfile`: the profile the container's program runs
//! under, set for the next exec (`exec <profile>` written to the process's
//! own attr file), as runc does. The plan has checked that AppArmor is
//! enabled; the kernel checks that the profile is loaded.

use super::StepContext;
use crate::protocol::InitFailure;

/// Asks AppArmor to move this process into `profile` at its next execve.
/// `/proc/self/attr/apparmor/exec` is the interface of kernels with LSM
/// stacking (5.8+); older ones only have `/proc/self/attr/exec`.
pub(super) fn exec_into(profile: &str) -> Result<(), InitFailure> {
    let request = format!("exec {profile}");
    let stacked = "/proc/self/attr/apparmor/exec";
    let path = if std::path::Path::new(stacked).exists() {
        stacked
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(path, request).step("apparmor", || {
        format!("process.apparmorProfile: apply profile {profile:?} (write {path})")
    })
}
