//! The root filesystem: every family of mount options, mount destinations (relative,
//! missing sources, files in missing directories, symlinks out of the rootfs, `/proc`
//! and `/sys` replaced by symlinks), masked and readonly paths.
//!
//! Each test looks from inside the container (its output, usually
//! `/proc/self/mountinfo` and `key=ok|fail` lines) and ends with
//! `assert_nothing_left`.
//!
//! The tests live in `integration_test/rootfs/`, one file per concern; this file is the
//! cargo entry point and holds what they share.

use capsa_integration_test::fs_fixtures::value_of;
use capsa_integration_test::Bundle;

#[path = "../rootfs/bind_mounts.rs"]
mod bind_mounts;
#[path = "../rootfs/destinations.rs"]
mod destinations;
#[path = "../rootfs/masked.rs"]
mod masked;
#[path = "../rootfs/mount_options.rs"]
mod mount_options;

/// A shell snippet printing `<key>=ok` when `cmd` succeeds, `<key>=fail` otherwise.
fn try_cmd(key: &str, cmd: &str) -> String {
    format!("if {cmd} 2>/dev/null; then echo {key}=ok; else echo {key}=fail; fi")
}

/// `sh -c` of the snippets joined, then the mountinfo.
fn script(b: &mut Bundle, parts: &[String]) {
    let mut all = parts.to_vec();
    all.push("cat /proc/self/mountinfo".to_string());
    b.sh(&all.join("; "));
}

fn assert_result(out: &str, key: &str, want: &str) {
    assert_eq!(
        value_of(out, key),
        want,
        "{key} inside the container:\n{out}"
    );
}
