//! Steps 2-4: the init joins namespaces by path and creates the ones clone(2)
//! could not, in the order the kernel needs. (In the simplest case, nothing
//! joined and no user namespace, the clone makes only the pid namespace and
//! the init has made the others at step 0: `NamespacePlan::early_unshare`.)
//!
//! 1. setns into every namespace given by path, the user namespace first:
//!    once in it we hold capabilities over the namespaces it owns.
//! 2. unshare a new user namespace on its own and have the parent write its
//!    id maps (step 3): only then are we root in it, and only namespaces made
//!    after it are owned by it.
//! 3. unshare the other new namespaces. The cgroup namespace is always made
//!    here, never at clone: its root is the cgroup we are in when it is made,
//!    and the parent moves us into the container's cgroup only after clone.
//! 4. a pid or time namespace entered by setns/unshare applies to children
//!    only: fork once more (step 4); the child is the real init.

use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{setns, unshare, CloneFlags};

use super::{failure, StepContext};
use crate::plan::{clone_flag, NamespacePlan};
use crate::protocol::{Channel, InitFailure, Msg};
use crate::sys;

pub(super) fn enter(plan: &NamespacePlan, chan: &Channel) -> Result<(), InitFailure> {
    // Every file is opened before the first setns: joining a mount
    // namespace changes what the next paths name.
    let files = plan
        .join
        .iter()
        .map(|(kind, path)| {
            File::open(path).step("namespaces", || {
                format!("open {} namespace {}", kind.spec_name(), path.display())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for ((kind, path), file) in plan.join.iter().zip(&files) {
        setns(file.as_fd(), clone_flag(*kind)).step("namespaces", || {
            format!(
                "setns into {} namespace {}",
                kind.spec_name(),
                path.display()
            )
        })?;
    }
    drop(files);
    if plan.unshare_user {
        unshare(CloneFlags::CLONE_NEWUSER)
            .step("namespaces", || "unshare a user namespace".to_string())?;
        // Step 3: the parent writes our uid_map and gid_map. A
        // non-dumpable process's /proc files belong to the host's root, so
        // an unprivileged (rootless) parent could not open them: dumpable
        // for this one exchange (as runc's nsexec), while nothing of the
        // container runs yet to reach us.
        let rootless = !nix::unistd::geteuid().is_root();
        if rootless {
            super::set_dumpable(true)?;
        }
        chan.send(&Msg::MapIds)
            .map_err(|e| failure("namespaces", e))?;
        chan.expect(&Msg::Continue, "the id maps")
            .map_err(|e| failure("namespaces", e))?;
        if rootless {
            super::set_dumpable(false)?;
        }
    }
    let joined_user = plan
        .join
        .iter()
        .any(|(kind, _)| *kind == capsa_spec::NamespaceKind::User);
    if plan.clone_flags.contains(CloneFlags::CLONE_NEWUSER) || plan.unshare_user || joined_user {
        become_root()?;
    }
    if !plan.unshare_flags.is_empty() {
        unshare(plan.unshare_flags).step("namespaces", || {
            format!("unshare namespaces {:?}", plan.unshare_flags)
        })?;
    }
    if !plan.time_offsets.is_empty() {
        // Offsets can be written only before any process enters the new time
        // namespace, that is before the fork below.
        let text: String = plan
            .time_offsets
            .iter()
            .map(|o| format!("{} {} {}\n", o.clock, o.secs, o.nanosecs))
            .collect();
        std::fs::write("/proc/self/timens_offsets", text).step("namespaces", || {
            "write /proc/self/timens_offsets".to_string()
        })?;
    }
    if plan.fork_after {
        // Step 4: the child is the real init; we report it and leave.
        match sys::clone_process(0).step("namespaces", || {
            "fork the init into its pid/time namespace".to_string()
        })? {
            sys::Forked::Child => {}
            sys::Forked::Parent(pid) => {
                let code = i32::from(chan.send(&Msg::Forked { pid }).is_err());
                sys::exit_now(code)
            }
        }
    }
    Ok(())
}

/// In a new user namespace we keep our host credentials, which map to no
/// one there; once the parent has written the id maps, switching to uid and
/// gid 0 makes us the namespace's root (the files we create are then owned
/// by the mapped root, and the kernel checks them against the mappings).
fn become_root() -> Result<(), InitFailure> {
    use nix::unistd::{setresgid, setresuid, Gid, Uid};
    let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
    setresgid(g, g, g).step("namespaces", || {
        "setgid 0 in the new user namespace (is gid 0 mapped?)".to_string()
    })?;
    setresuid(u, u, u).step("namespaces", || {
        "setuid 0 in the new user namespace (is uid 0 mapped?)".to_string()
    })
}
