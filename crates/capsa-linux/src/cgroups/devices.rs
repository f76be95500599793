//! `linux.resources.devices`: the device cgroup.
//!
//! The config's rules apply in order after a first "deny all", and then the
//! rules for the devices every container gets (runtime spec, "Default
//! Devices"), as runc does: a config that denies everything still leaves
//! /dev/null and friends usable.
//!
//! With a v1 `devices` hierarchy (v1 and hybrid hosts) they are written to
//! its allow/deny lists; on a pure cgroup v2 host they become an eBPF
//! program attached to the cgroup (`bpf_devices.rs`), with the same
//! meaning.

use std::path::Path;

use capsa_spec::DeviceRule;

use super::{bpf_devices, dirs::write_file, CgroupError, ContainerCgroup};

/// The default devices (type, major, minor; `None` is `*`), allowed `rwm`
/// after the config's own rules.
const DEFAULT_ALLOWED: &[(char, i64, Option<i64>)] = &[
    ('c', 1, Some(3)), // /dev/null
    ('c', 1, Some(5)), // /dev/zero
    ('c', 1, Some(7)), // /dev/full
    ('c', 1, Some(8)), // /dev/random
    ('c', 1, Some(9)), // /dev/urandom
    ('c', 5, Some(0)), // /dev/tty
    ('c', 5, Some(2)), // /dev/ptmx
    ('c', 136, None),  // /dev/pts/*
];

pub(super) fn default_allowed() -> impl Iterator<Item = DeviceRule> {
    DEFAULT_ALLOWED
        .iter()
        .map(|&(kind, major, minor)| DeviceRule {
            allow: true,
            kind,
            major: Some(major),
            minor,
            access: "rwm".into(),
        })
}

/// The v1 line for one rule: `c 1:3 rwm`.
pub fn rule_line(r: &DeviceRule) -> String {
    let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    if r.kind == 'a' {
        return format!("a *:* {}", r.access);
    }
    format!("{} {}:{} {}", r.kind, num(r.major), num(r.minor), r.access)
}

impl ContainerCgroup {
    /// Applies the device rules: no rules means no restriction (as the
    /// runtime spec says). Called again (an update), it replaces the rules
    /// before: on v2 without a moment when no filter is attached.
    pub fn apply_device_rules(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        if rules.is_empty() {
            return Ok(());
        }
        let hierarchies = self.hierarchies();
        if let Some(v1) = hierarchies
            .iter()
            .find(|h| h.controllers().iter().any(|c| c == "devices"))
        {
            return apply_v1(v1.dir(), rules);
        }
        let Some(v2) = hierarchies.iter().find(|h| h.is_v2()) else {
            return Err(CgroupError::Unsupported(
                "linux.resources.devices on a host with neither a cgroup v1 devices hierarchy nor cgroup v2",
            ));
        };
        let rules: Vec<DeviceRule> = rules.iter().cloned().chain(default_allowed()).collect();
        bpf_devices::apply(v2.dir(), &rules)
    }
}

/// The v1 form: "deny all", the rules, then the default devices, each line
/// written to `devices.allow` or `devices.deny` of `dir`.
fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let write = |file: &str, line: &str| {
        let path = dir.join(file);
        write_file(&path, line).map_err(|source| CgroupError::Write {
            path,
            value: line.to_string(),
            source,
        })
    };
    write("devices.deny", "a")?;
    for r in rules.iter().cloned().chain(default_allowed()) {
        write(
            if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            },
            &rule_line(&r),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_render_like_the_kernel_expects() {
        let r = |allow, kind, major, minor, access: &str| DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        };
        assert_eq!(rule_line(&r(false, 'a', None, None, "rwm")), "a *:* rwm");
        assert_eq!(rule_line(&r(true, 'c', Some(1), Some(3), "rw")), "c 1:3 rw");
        assert_eq!(rule_line(&r(true, 'b', Some(8), None, "m")), "b 8:* m");
    }

    #[test]
    fn default_devices_render_as_before() {
        let lines: Vec<String> = default_allowed().map(|r| rule_line(&r)).collect();
        assert_eq!(
            lines,
            [
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:2 rwm",
                "c 136:* rwm"
            ]
        );
    }

    #[test]
    fn v1_writes_deny_all_then_the_rules_then_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["devices.allow", "devices.deny"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let rule = DeviceRule {
            allow: false,
            kind: 'c',
            major: Some(1),
            minor: Some(9),
            access: "w".into(),
        };
        apply_v1(dir.path(), &[rule]).unwrap();
        // write_file truncates: each file holds its last line.
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("devices.deny"), "c 1:9 w");
        assert_eq!(read("devices.allow"), "c 136:* rwm");
    }
}
