//! `create`'s part in the container's cgroup: make it (all at once, or the
//! cgroup2 directory before the clone and the rest while the init makes its
//! namespaces, `NamespacePlan::early_unshare`), arm the rollback to remove
//! it, and write the device rules and resources.

use super::Rollback;
use crate::error::Error;
use crate::plan;

/// Which part of the cgroup [`make_cgroup`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    All,
    /// The cgroup2 directory alone, before the clone into it.
    Dir2,
    /// What `Dir2` left: the v1 directories, device rules and resources.
    Rest,
}

/// Makes the container's cgroup (for systemd, first its unit holding
/// `pid`), arming the rollback to remove it, and writes the device rules and
/// resources; or the `part` of that.
pub(super) fn make_cgroup(
    cgroup: &crate::cgroups::ContainerCgroup,
    spec: &capsa_spec::ValidSpec,
    pid: Option<i32>,
    rootless: bool,
    rollback: &mut Rollback,
    part: Part,
) -> Result<(), Error> {
    if let Some(pid) = pid {
        // Armed once the unit is ours: a unit that existed (and that
        // start_unit refused) belongs to someone else.
        cgroup.start_unit(pid, spec.linux.resources.as_ref())?;
        rollback.cgroup = Some(cgroup.clone());
    }
    match part {
        Part::All => cgroup.create()?,
        Part::Dir2 => cgroup.create_v2()?,
        Part::Rest => cgroup.create_v1()?,
    }
    // (Again after `Rest`: the copy must list every directory made.)
    rollback.cgroup = Some(cgroup.clone());
    if part == Part::Dir2 {
        return Ok(());
    }
    // Without privileges device rules cannot be set (rootless: the user
    // namespace's device access is the kernel's own limit).
    if !rootless {
        cgroup.apply_device_rules(&plan::device_cgroup_rules(spec))?;
    }
    if let Some(resources) = &spec.linux.resources {
        cgroup.apply_resources(resources)?;
    }
    Ok(())
}
