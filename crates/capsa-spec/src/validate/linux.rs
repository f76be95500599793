//! `linux`: namespaces, id mappings, devices, device cgroup rules, sysctls,
//! masked and read-only paths, and the Linux features capsa refuses by name
//! until it implements them.

use std::collections::BTreeSet;

use oci_spec::runtime as oci;

use super::absolute_clean;
use crate::error::SpecError;
use crate::types::{
    Device, DeviceKind, DeviceRule, IdMapping, Linux, Namespace, NamespaceKind, Personality,
    PersonalityDomain, Propagation, TimeOffset, PERSONALITY_FLAGS,
};

pub(super) fn validate(linux: Option<&oci::Linux>) -> Result<Linux, SpecError> {
    let Some(l) = linux else {
        return Ok(Linux::default());
    };
    refuse_unsupported(l)?;
    let namespaces = namespaces(l.namespaces().as_deref().unwrap_or_default())?;
    let uid_mappings = mappings(l.uid_mappings().as_deref().unwrap_or_default());
    let gid_mappings = mappings(l.gid_mappings().as_deref().unwrap_or_default());
    let has = |k| namespaces.iter().any(|n: &Namespace| n.kind == k);
    let new_user = namespaces
        .iter()
        .any(|n| n.kind == NamespaceKind::User && n.path.is_none());
    if new_user && (uid_mappings.is_empty() || gid_mappings.is_empty()) {
        return Err(SpecError::invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    if !has(NamespaceKind::User) && (!uid_mappings.is_empty() || !gid_mappings.is_empty()) {
        return Err(SpecError::invalid(
            "linux.uidMappings",
            "id mappings need a user namespace in linux.namespaces",
        ));
    }
    let time_offsets = time_offsets(l)?;
    if !time_offsets.is_empty()
        && !namespaces
            .iter()
            .any(|n| n.kind == NamespaceKind::Time && n.path.is_none())
    {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    let net_devices = super::net_devices::validate(l.net_devices().as_ref(), &namespaces)?;
    let sysctl = l.sysctl().clone().unwrap_or_default().into_iter().collect();
    check_sysctls(&sysctl, &namespaces)?;
    let cgroups_path = l
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    super::bounds::no_nul(
        cgroups_path.as_deref().unwrap_or_default(),
        "linux.cgroupsPath",
    )?;
    Ok(Linux {
        namespaces,
        uid_mappings,
        gid_mappings,
        cgroups_path,
        devices: devices(l.devices().as_deref().unwrap_or_default())?,
        device_rules: device_rules(l.resources().as_ref())?,
        sysctl,
        masked_paths: paths(
            l.masked_paths().as_deref().unwrap_or_default(),
            "linux.maskedPaths",
        )?,
        readonly_paths: paths(
            l.readonly_paths().as_deref().unwrap_or_default(),
            "linux.readonlyPaths",
        )?,
        rootfs_propagation: propagation(l.rootfs_propagation().as_deref())?,
        time_offsets,
        seccomp: l.seccomp().clone(),
        mount_label: l.mount_label().clone().filter(|s| !s.is_empty()),
        resources: l.resources().clone(),
        personality: l.personality().as_ref().map(personality).transpose()?,
        net_devices,
    })
}

/// `linux.personality`: the domain was checked while decoding; flags are
/// the `<sys/personality.h>` names.
fn personality(p: &oci::LinuxPersonality) -> Result<Personality, SpecError> {
    let domain = match p.domain() {
        oci::LinuxPersonalityDomain::PerLinux => PersonalityDomain::Linux,
        oci::LinuxPersonalityDomain::PerLinux32 => PersonalityDomain::Linux32,
    };
    let mut flags: Vec<String> = Vec::new();
    for (i, f) in p.flags().iter().flatten().enumerate() {
        if !PERSONALITY_FLAGS.iter().any(|(name, _)| name == f) {
            return Err(SpecError::invalid(
                format!("linux.personality.flags[{i}]"),
                format!("unknown personality flag {f:?}"),
            ));
        }
        if !flags.contains(f) {
            flags.push(f.clone());
        }
    }
    Ok(Personality { domain, flags })
}

/// The argument indexes; the rest of `linux.seccomp` is checked where it is
/// compiled (`capsa-linux`'s `seccomp.rs`).
fn seccomp(sc: &oci::LinuxSeccomp) -> Result<(), SpecError> {
    for (i, s) in sc.syscalls().iter().flatten().enumerate() {
        for (j, a) in s.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(SpecError::invalid(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    format!("{} is not a syscall argument index (0 to 5)", a.index()),
                ));
            }
        }
    }
    Ok(())
}

fn refuse_unsupported(l: &oci::Linux) -> Result<(), SpecError> {
    if let Some(sc) = l.seccomp() {
        seccomp(sc)?;
    }
    if l.intel_rdt().is_some() {
        return Err(SpecError::unsupported("linux.intelRdt", "Intel RDT"));
    }
    if l.memory_policy().is_some() {
        return Err(SpecError::unsupported(
            "linux.memoryPolicy",
            "NUMA memory policy",
        ));
    }
    if let Some(r) = l.resources() {
        super::resources::validate(r)?;
    }
    Ok(())
}

fn namespaces(list: &[oci::LinuxNamespace]) -> Result<Vec<Namespace>, SpecError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, ns) in list.iter().enumerate() {
        let kind = match ns.typ() {
            oci::LinuxNamespaceType::User => NamespaceKind::User,
            oci::LinuxNamespaceType::Pid => NamespaceKind::Pid,
            oci::LinuxNamespaceType::Network => NamespaceKind::Network,
            oci::LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
            oci::LinuxNamespaceType::Uts => NamespaceKind::Uts,
            oci::LinuxNamespaceType::Mount => NamespaceKind::Mount,
            oci::LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
            oci::LinuxNamespaceType::Time => NamespaceKind::Time,
        };
        if !seen.insert(kind) {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}].type"),
                format!("the {} namespace is listed twice", kind.spec_name()),
            ));
        }
        let path = match ns.path() {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(absolute_clean(p, &format!("linux.namespaces[{i}].path"))?),
            None => None,
        };
        out.push(Namespace { kind, path });
    }
    out.sort_by_key(|n| n.kind);
    Ok(out)
}

fn mappings(list: &[oci::LinuxIdMapping]) -> Vec<IdMapping> {
    list.iter()
        .map(|m| IdMapping {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        })
        .collect()
}

fn time_offsets(l: &oci::Linux) -> Result<Vec<TimeOffset>, SpecError> {
    let mut out = Vec::new();
    for (clock, offset) in l.time_offsets().iter().flatten() {
        if clock != "monotonic" && clock != "boottime" {
            return Err(SpecError::invalid(
                format!("linux.timeOffsets.{clock}"),
                "only the monotonic and boottime clocks have offsets",
            ));
        }
        let (secs, nanosecs) = (offset.secs().unwrap_or(0), offset.nanosecs().unwrap_or(0));
        super::bounds::time_offset(secs, nanosecs, &format!("linux.timeOffsets.{clock}"))?;
        out.push(TimeOffset {
            clock: clock.clone(),
            secs: offset.secs().unwrap_or(0),
            nanosecs: offset.nanosecs().unwrap_or(0),
        });
    }
    out.sort_by(|a, b| a.clock.cmp(&b.clock));
    Ok(out)
}

/// Sysctls that belong to a namespace are allowed only when the container has
/// its own namespace of that kind; anything else would change the host.
fn check_sysctls(
    sysctl: &std::collections::BTreeMap<String, String>,
    namespaces: &[Namespace],
) -> Result<(), SpecError> {
    let has = |k| namespaces.iter().any(|n: &Namespace| n.kind == k);
    for key in sysctl.keys() {
        let at = format!("linux.sysctl.{key}");
        if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) {
            return Err(SpecError::invalid(at, "not a sysctl name"));
        }
        let needs = if key.starts_with("net.") {
            Some(NamespaceKind::Network)
        } else if key.starts_with("fs.mqueue.")
            || [
                "kernel.msgmax",
                "kernel.msgmnb",
                "kernel.msgmni",
                "kernel.sem",
                "kernel.shmall",
                "kernel.shmmax",
                "kernel.shmmni",
                "kernel.shm_rmid_forced",
            ]
            .contains(&key.as_str())
        {
            Some(NamespaceKind::Ipc)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Some(NamespaceKind::Uts)
        } else {
            None
        };
        match needs {
            Some(kind) if !has(kind) => {
                return Err(SpecError::invalid(
                    at,
                    format!(
                        "needs a {} namespace in linux.namespaces, or it would change the host",
                        kind.spec_name()
                    ),
                ))
            }
            Some(_) => {}
            None => {
                return Err(SpecError::invalid(
                    at,
                    "not a namespaced sysctl: setting it would change the host",
                ))
            }
        }
    }
    Ok(())
}

fn devices(list: &[oci::LinuxDevice]) -> Result<Vec<Device>, SpecError> {
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            let at = |f: &str| format!("linux.devices[{i}].{f}");
            let path = absolute_clean(d.path(), &at("path"))?;
            if !path.starts_with("/dev") {
                return Err(SpecError::invalid(
                    at("path"),
                    format!("{:?} is not under /dev", d.path()),
                ));
            }
            let kind = match d.typ() {
                oci::LinuxDeviceType::C | oci::LinuxDeviceType::U => DeviceKind::Char,
                oci::LinuxDeviceType::B => DeviceKind::Block,
                oci::LinuxDeviceType::P => DeviceKind::Fifo,
                oci::LinuxDeviceType::A => {
                    return Err(SpecError::invalid(
                        at("type"),
                        "\"a\" is a cgroup rule type, not a device type (use c, b, u or p)",
                    ))
                }
            };
            super::bounds::device_numbers(
                Some(d.major()),
                Some(d.minor()),
                &format!("linux.devices[{i}]"),
                false,
            )?;
            Ok(Device {
                path,
                kind,
                major: d.major(),
                minor: d.minor(),
                file_mode: d.file_mode(),
                uid: d.uid(),
                gid: d.gid(),
            })
        })
        .collect()
}

fn device_rules(resources: Option<&oci::LinuxResources>) -> Result<Vec<DeviceRule>, SpecError> {
    let Some(list) = resources.and_then(|r| r.devices().as_ref()) else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let kind = match r.typ().unwrap_or(oci::LinuxDeviceType::A) {
                oci::LinuxDeviceType::A => 'a',
                oci::LinuxDeviceType::B => 'b',
                oci::LinuxDeviceType::C | oci::LinuxDeviceType::U => 'c',
                oci::LinuxDeviceType::P => {
                    return Err(SpecError::invalid(
                        format!("linux.resources.devices[{i}].type"),
                        "the device cgroup has no rules for fifos",
                    ))
                }
            };
            let access = r.access().clone().unwrap_or_else(|| "rwm".to_string());
            if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
                return Err(SpecError::invalid(
                    format!("linux.resources.devices[{i}].access"),
                    format!("{access:?} is not a combination of r, w and m"),
                ));
            }
            super::bounds::device_numbers(
                r.major(),
                r.minor(),
                &format!("linux.resources.devices[{i}]"),
                true,
            )?;
            Ok(DeviceRule {
                allow: r.allow(),
                kind,
                major: r.major(),
                minor: r.minor(),
                access,
            })
        })
        .collect()
}

fn paths(list: &[String], field: &str) -> Result<Vec<std::path::PathBuf>, SpecError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| absolute_clean(std::path::Path::new(p), &format!("{field}[{i}]")))
        .collect()
}

fn propagation(value: Option<&str>) -> Result<Option<Propagation>, SpecError> {
    Ok(match value {
        None | Some("") => None,
        Some("shared" | "rshared") => Some(Propagation::Shared),
        Some("slave" | "rslave") => Some(Propagation::Slave),
        Some("private" | "rprivate") => Some(Propagation::Private),
        Some("unbindable" | "runbindable") => Some(Propagation::Unbindable),
        Some(other) => {
            return Err(SpecError::invalid(
                "linux.rootfsPropagation",
                format!(
                    "{other:?} is not one of shared, slave, private, unbindable (or their r-forms)"
                ),
            ))
        }
    })
}
