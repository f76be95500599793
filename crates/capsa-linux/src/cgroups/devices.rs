//! `linux.resources.devices`: the device cgroup (v1 allow/deny lists).
//!
//! The config's rules are written in order after a first "deny all", and
//! then the rules for the devices every container gets (runtime spec,
//! "Default Devices"), as runc does: a config that denies everything still
//! leaves /dev/null and friends usable.

use capsa_spec::DeviceRule;

use super::{dirs::write_file, CgroupError, ContainerCgroup};

/// The default devices, allowed after the config's own rules.
const DEFAULT_ALLOWED: &[&str] = &[
    "c 1:3 rwm",   // /dev/null
    "c 1:5 rwm",   // /dev/zero
    "c 1:7 rwm",   // /dev/full
    "c 1:8 rwm",   // /dev/random
    "c 1:9 rwm",   // /dev/urandom
    "c 5:0 rwm",   // /dev/tty
    "c 5:2 rwm",   // /dev/ptmx
    "c 136:* rwm", // /dev/pts/*
];

/// The v1 line for one rule: `c 1:3 rwm`.
pub fn rule_line(r: &DeviceRule) -> String {
    let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    if r.kind == 'a' {
        return format!("a *:* {}", r.access);
    }
    format!("{} {}:{} {}", r.kind, num(r.major), num(r.minor), r.access)
}

impl ContainerCgroup {
    /// Applies the device rules. On a host without a v1 `devices` hierarchy
    /// (pure cgroup v2) rules need an eBPF program, which capsa does not
    /// load yet: that is refused rather than ignored.
    pub fn apply_device_rules(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        if rules.is_empty() {
            return Ok(());
        }
        let Some(dir) = self
            .hierarchies()
            .iter()
            .find(|h| h.controllers().iter().any(|c| c == "devices"))
        else {
            return Err(CgroupError::Unsupported(
                "linux.resources.devices on a host without the cgroup v1 devices controller (cgroup v2 device rules need eBPF)",
            ));
        };
        let write = |file: &str, line: &str| {
            let path = dir.dir().join(file);
            write_file(&path, line).map_err(|source| CgroupError::Write {
                path,
                value: line.to_string(),
                source,
            })
        };
        write("devices.deny", "a")?;
        for r in rules {
            write(
                if r.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                },
                &rule_line(r),
            )?;
        }
        for line in DEFAULT_ALLOWED {
            write("devices.allow", line)?;
        }
        Ok(())
    }
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
}
