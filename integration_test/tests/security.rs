//! Regression tests, one group per class of known container-runtime CVE. Each test
//! carries out the attack as a container would, so that it succeeds against a runtime
//! without the defence (the comment on each test says how), and checks the host
//! afterwards. The tests live in `integration_test/security/`; this file is the cargo
//! entry point and holds what they share.
//!
//! Run them against capsa (default) or runc (`CAPSA_RUNTIME=runc`). Where runc 1.1.5 is
//! vulnerable or behaves differently, the test says so LOUDLY on stderr and skips that
//! assertion. A known failure of capsa is skipped the same way, naming the attack, so
//! that CI (`--include-ignored`) stays green while the report stays visible.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capsa_integration_test::{loud, runtime, Bundle, CmdOutput, RuntimeKind};
use serde_json::{json, Value};

#[path = "../security/cve_2019_19921.rs"]
mod cve_2019_19921;
#[path = "../security/cve_2019_5736.rs"]
mod cve_2019_5736;
#[path = "../security/cve_2019_5736_trampoline.rs"]
mod cve_2019_5736_trampoline;
#[path = "../security/cve_2021_30465.rs"]
mod cve_2021_30465;
#[path = "../security/cve_2024_21626.rs"]
mod cve_2024_21626;
#[path = "../security/cve_2025_31133.rs"]
mod cve_2025_31133;

/// How long the tests wait for a container to reach a point.
pub const WAIT: Duration = Duration::from_secs(20);

/// True when the runtime under test is runc.
pub fn is_runc() -> bool {
    *runtime().kind() == RuntimeKind::Runc
}

/// Reports an outcome that differs from what a safe runtime does, for a runtime that
/// is known to behave so (runc 1.1.5 for some CVEs, or a known capsa failure): a loud
/// line on stderr that survives libtest's capture, instead of a failed assertion.
pub fn known_failure(what: &str) {
    loud(&format!(
        "KNOWN FAILURE, SKIPPED ({}): {what}",
        runtime().name()
    ));
}

/// Adds capabilities to every set of `process.capabilities` the config has.
pub fn add_caps(b: &mut Bundle, caps: &[&str]) {
    b.edit(|c| {
        let sets = c["process"]["capabilities"]
            .as_object_mut()
            .expect("process.capabilities");
        for set in ["bounding", "effective", "permitted"] {
            let list = sets
                .entry(set)
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("capability list");
            for cap in caps {
                if !list.iter().any(|v| v == cap) {
                    list.push(json!(cap));
                }
            }
        }
    });
}

/// Removes every `mounts[]` entry whose destination is `/dev` or below it, so that the
/// rootfs's own `/dev` (with whatever the image put there) is used.
pub fn drop_dev_mounts(b: &mut Bundle) {
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .retain(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"));
    });
}

/// Appends one `mounts[]` entry.
pub fn push_mount(b: &mut Bundle, entry: Value) {
    b.edit(|c| c["mounts"].as_array_mut().expect("mounts").push(entry));
}

/// Writes an executable file into the rootfs.
pub fn write_exec(rootfs: &Path, rel: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = rootfs.join(rel.trim_start_matches('/'));
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("create parent dir");
    }
    fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    p
}

/// Links more busybox applets into the rootfs's /bin.
pub fn link_applets(b: &Bundle, applets: &[&str]) {
    for a in applets {
        let link = b.rootfs().join("bin").join(a);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("link {}: {e}", link.display()));
        }
    }
}

/// The value of the last `key=value` line of `text`, if any.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
}

/// A failed runtime call must be a clean failure: a non-zero exit with an error
/// message, not a crash. (The one-line rule is checked elsewhere; runc logs more.)
pub fn assert_clean_failure(out: &CmdOutput) {
    assert!(!out.success(), "expected a failure:\n{out}");
    assert!(
        out.code().is_some(),
        "the runtime died from a signal instead of failing:\n{out}"
    );
    assert!(
        !out.stderr.trim().is_empty(),
        "a failure without an error message:\n{out}"
    );
}
