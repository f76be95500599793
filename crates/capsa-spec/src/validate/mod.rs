//! Turns oci-spec's loosely typed `Spec` into a [`ValidSpec`]. Each area has
//! its own file; every check is pure and names the JSON path it refuses.

mod bounds;
mod linux;
mod net_devices;
mod process;
pub(crate) mod resources;

pub(crate) use process::validate as process;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime as oci;

use crate::error::SpecError;
use crate::types::{Hook, Hooks, IdMapping, Linux, Mount, Root, ValidSpec};

/// Validates a decoded config from `bundle`.
pub(crate) fn validate(spec: oci::Spec, bundle: &Path) -> Result<ValidSpec, SpecError> {
    if spec.version().is_empty() {
        return Err(SpecError::invalid("ociVersion", "required"));
    }
    if !spec.version().starts_with("1.") {
        return Err(SpecError::invalid(
            "ociVersion",
            format!(
                "version {:?} is not 1.x, which capsa implements",
                spec.version()
            ),
        ));
    }
    let root = root(spec.root().as_ref(), bundle)?;
    let process = match spec.process() {
        Some(p) => Some(process::validate(p)?),
        None => None,
    };
    let mounts = mounts(spec.mounts().as_deref().unwrap_or_default(), bundle)?;
    let hooks = hooks(spec.hooks().as_ref())?;
    let linux = linux::validate(spec.linux().as_ref())?;
    idmapped_mounts_need_mappings(&mounts, &linux)?;
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|d| !d.is_empty());
    for (value, field) in [(&hostname, "hostname"), (&domainname, "domainname")] {
        bounds::no_nul(value.as_deref().unwrap_or_default(), field)?;
        if value.is_some() && linux.namespace(crate::NamespaceKind::Uts).is_none() {
            return Err(SpecError::invalid(
                field,
                "setting it needs a uts namespace in linux.namespaces",
            ));
        }
    }
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if annotations.contains_key("") {
        return Err(SpecError::invalid("annotations", "keys must not be empty"));
    }
    bounds::annotations(&annotations)?;
    Ok(ValidSpec {
        oci_version: spec.version().clone(),
        bundle: bundle.to_path_buf(),
        root,
        process,
        hostname,
        domainname,
        mounts,
        hooks,
        annotations,
        linux,
    })
}

fn root(root: Option<&oci::Root>, bundle: &Path) -> Result<Root, SpecError> {
    let root = root.ok_or_else(|| SpecError::invalid("root", "required on Linux"))?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::invalid("root.path", "required"));
    }
    bounds::no_nul(&root.path().to_string_lossy(), "root.path")?;
    Ok(Root {
        path: bundle.join(root.path()),
        readonly: root.readonly().unwrap_or(false),
    })
}

fn mounts(mounts: &[oci::Mount], bundle: &Path) -> Result<Vec<Mount>, SpecError> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = |field: &str| format!("mounts[{i}].{field}");
            let destination = absolute_clean(m.destination(), &at("destination"))?;
            let options = m.options().clone().unwrap_or_default();
            let wants_bind = options.iter().any(|o| o == "bind" || o == "rbind");
            let kind = match m.typ().as_deref() {
                Some(t) if !t.is_empty() => t.to_string(),
                _ if wants_bind => "bind".to_string(),
                _ => {
                    return Err(SpecError::invalid(
                        at("type"),
                        "required unless the options ask for bind or rbind",
                    ))
                }
            };
            let is_bind = wants_bind || kind == "bind";
            let uid_mappings = mount_mappings(m.uid_mappings().as_deref(), &at("uidMappings"))?;
            let gid_mappings = mount_mappings(m.gid_mappings().as_deref(), &at("gidMappings"))?;
            match (uid_mappings.is_empty(), gid_mappings.is_empty()) {
                (false, true) => {
                    return Err(SpecError::invalid(
                        at("gidMappings"),
                        "required with uidMappings (an idmapped mount maps both)",
                    ))
                }
                (true, false) => {
                    return Err(SpecError::invalid(
                        at("uidMappings"),
                        "required with gidMappings (an idmapped mount maps both)",
                    ))
                }
                _ => {}
            }
            if !is_bind {
                if let Some(o) = options.iter().find(|o| *o == "idmap" || *o == "ridmap") {
                    return Err(SpecError::invalid(
                        at("options"),
                        format!("{o:?} applies to bind mounts only, not to type {kind:?}"),
                    ));
                }
                if !uid_mappings.is_empty() {
                    return Err(SpecError::invalid(
                        at("uidMappings"),
                        format!("id mappings apply to bind mounts only, not to type {kind:?}"),
                    ));
                }
            }
            let source = match m.source() {
                Some(s) if is_bind && s.is_relative() => Some(bundle.join(s)),
                Some(s) if s.as_os_str().is_empty() => None,
                Some(s) => Some(s.clone()),
                None if is_bind => {
                    return Err(SpecError::invalid(
                        at("source"),
                        "a bind mount needs a source",
                    ))
                }
                None => None,
            };
            Ok(Mount {
                destination,
                kind,
                source,
                options,
                uid_mappings,
                gid_mappings,
            })
        })
        .collect()
}

/// One mount's `uidMappings` or `gidMappings` (`at` names it). Absent and
/// empty are the same: runtime-spec 1.2 lets an `idmap` mount leave its
/// mappings out and take the container's.
fn mount_mappings(
    list: Option<&[oci::LinuxIdMapping]>,
    at: &str,
) -> Result<Vec<IdMapping>, SpecError> {
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(j, m)| {
            let (container_id, host_id, size) = (m.container_id(), m.host_id(), m.size());
            if size == 0 {
                return Err(SpecError::invalid(
                    format!("{at}[{j}].size"),
                    "must be greater than 0",
                ));
            }
            if container_id.checked_add(size).is_none() || host_id.checked_add(size).is_none() {
                return Err(SpecError::invalid(
                    format!("{at}[{j}]"),
                    format!(
                        "the range of {size} ids from containerID {container_id} or hostID \
                         {host_id} goes past the largest id"
                    ),
                ));
            }
            Ok(IdMapping {
                container_id,
                host_id,
                size,
            })
        })
        .collect()
}

/// An `idmap`/`ridmap` mount without mappings of its own takes those of the
/// container's user namespace (runc 1.2; the runtime spec says an error
/// otherwise), so it needs one.
fn idmapped_mounts_need_mappings(mounts: &[Mount], linux: &Linux) -> Result<(), SpecError> {
    let has_userns = linux.namespace(crate::NamespaceKind::User).is_some();
    for (i, m) in mounts.iter().enumerate() {
        if m.is_idmapped() && m.uid_mappings.is_empty() && !has_userns {
            return Err(SpecError::invalid(
                format!("mounts[{i}].options"),
                "an idmapped mount without uidMappings and gidMappings takes the container's \
                 user namespace mappings, but linux.namespaces has no user namespace",
            ));
        }
    }
    Ok(())
}

fn hooks(hooks: Option<&oci::Hooks>) -> Result<Hooks, SpecError> {
    let Some(h) = hooks else {
        return Ok(Hooks::default());
    };
    let list = |name: &str, list: &Option<Vec<oci::Hook>>| -> Result<Vec<Hook>, SpecError> {
        list.as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, hook)| {
                let at = |f: &str| format!("hooks.{name}[{i}].{f}");
                if !hook.path().is_absolute() {
                    return Err(SpecError::invalid(
                        at("path"),
                        format!("{:?} is not an absolute path", hook.path()),
                    ));
                }
                let timeout = match hook.timeout() {
                    None => None,
                    Some(t) if t > 0 => Some(u32::try_from(t).unwrap_or(u32::MAX)),
                    Some(t) => {
                        return Err(SpecError::invalid(
                            at("timeout"),
                            format!("{t} is not a positive number of seconds"),
                        ))
                    }
                };
                Ok(Hook {
                    path: hook.path().clone(),
                    args: hook.args().clone().unwrap_or_default(),
                    env: hook.env().clone().unwrap_or_default(),
                    timeout,
                })
            })
            .collect()
    };
    Ok(Hooks {
        prestart: list("prestart", h.prestart())?,
        create_runtime: list("createRuntime", h.create_runtime())?,
        create_container: list("createContainer", h.create_container())?,
        start_container: list("startContainer", h.start_container())?,
        poststart: list("poststart", h.poststart())?,
        poststop: list("poststop", h.poststop())?,
    })
}

/// Checks that `path` is absolute and returns it without `.` components
/// (`..` is kept: it is resolved safely inside the root at mount time).
pub(crate) fn absolute_clean(path: &Path, at: &str) -> Result<PathBuf, SpecError> {
    bounds::no_nul(&path.to_string_lossy(), at)?;
    if !path.is_absolute() {
        return Err(SpecError::invalid(
            at,
            format!("{:?} is not an absolute path", path),
        ));
    }
    Ok(path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
