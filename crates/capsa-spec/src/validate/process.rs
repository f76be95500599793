//! `process`: args, cwd, user, capabilities, rlimits and the parts of process
//! setup capsa does not implement yet (refused by name).

use std::collections::BTreeSet;

use oci_spec::runtime as oci;

use super::absolute_clean;
use crate::error::SpecError;
use crate::types::{Capabilities, Process, Rlimit, User};

pub(crate) fn validate(p: &oci::Process) -> Result<Process, SpecError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::invalid(
            "process.args",
            "must name the program to run",
        ));
    }
    if p.command_line().is_some() {
        return Err(SpecError::unsupported(
            "process.commandLine",
            "commandLine (a Windows field)",
        ));
    }
    let cwd = absolute_clean(p.cwd(), "process.cwd")?;
    let env = p.env().clone().unwrap_or_default();
    for (i, var) in env.iter().enumerate() {
        if !var.contains('=') || var.starts_with('=') {
            return Err(SpecError::invalid(
                format!("process.env[{i}]"),
                format!("{var:?} is not of the form NAME=value"),
            ));
        }
    }
    refuse_unsupported(p)?;
    Ok(Process {
        terminal: p.terminal().unwrap_or(false),
        console_size: p
            .console_size()
            .map(|b| (clamp16(b.height()), clamp16(b.width()))),
        user: user(p.user()),
        args,
        env,
        cwd,
        capabilities: capabilities(p.capabilities().as_ref())?,
        rlimits: rlimits(p.rlimits().as_deref().unwrap_or_default())?,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        oom_score_adj: p.oom_score_adj(),
        selinux_label: p.selinux_label().clone().filter(|s| !s.is_empty()),
    })
}

fn refuse_unsupported(p: &oci::Process) -> Result<(), SpecError> {
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(SpecError::unsupported(
            "process.apparmorProfile",
            "AppArmor",
        ));
    }
    if p.io_priority().is_some() {
        return Err(SpecError::unsupported("process.ioPriority", "I/O priority"));
    }
    if p.scheduler().is_some() {
        return Err(SpecError::unsupported(
            "process.scheduler",
            "scheduling policy",
        ));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(SpecError::unsupported(
            "process.execCPUAffinity",
            "exec CPU affinity",
        ));
    }
    Ok(())
}

fn user(u: &oci::User) -> User {
    User {
        uid: u.uid(),
        gid: u.gid(),
        umask: u.umask(),
        additional_gids: u.additional_gids().clone().unwrap_or_default(),
    }
}

/// Canonical `CAP_*` names. oci-spec already refused unknown names while
/// decoding, with the JSON path.
fn capabilities(c: Option<&oci::LinuxCapabilities>) -> Result<Capabilities, SpecError> {
    let Some(c) = c else {
        return Ok(Capabilities::default());
    };
    let names = |set: &Option<oci::Capabilities>| -> Vec<String> {
        let set: BTreeSet<String> = set
            .iter()
            .flatten()
            .map(|cap| {
                serde_json::to_value(cap)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("CAP_{cap}"))
            })
            .collect();
        set.into_iter().collect()
    };
    Ok(Capabilities {
        bounding: names(c.bounding()),
        effective: names(c.effective()),
        inheritable: names(c.inheritable()),
        permitted: names(c.permitted()),
        ambient: names(c.ambient()),
    })
}

fn rlimits(list: &[oci::PosixRlimit]) -> Result<Vec<Rlimit>, SpecError> {
    let mut seen = BTreeSet::new();
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let kind = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if !seen.insert(kind.clone()) {
                return Err(SpecError::invalid(
                    format!("process.rlimits[{i}].type"),
                    format!("{kind} is listed twice"),
                ));
            }
            if r.soft() > r.hard() {
                return Err(SpecError::invalid(
                    format!("process.rlimits[{i}]"),
                    format!(
                        "{kind}: soft limit {} is above hard limit {}",
                        r.soft(),
                        r.hard()
                    ),
                ));
            }
            Ok(Rlimit {
                kind,
                soft: r.soft(),
                hard: r.hard(),
            })
        })
        .collect()
}

/// Terminal sizes are 16-bit in the kernel; larger values mean "as large as
/// possible" rather than an error.
fn clamp16(v: u64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}
