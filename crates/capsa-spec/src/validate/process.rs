//! `process`: args, cwd, user, capabilities, rlimits, scheduler, I/O
//! priority and the parts of process setup capsa does not implement yet
//! (refused by name).

use std::collections::BTreeSet;

use oci_spec::runtime as oci;

use super::absolute_clean;
use crate::error::SpecError;
use crate::types::{
    Capabilities, IoPriority, IoPriorityClass, Process, Rlimit, SchedFlag, SchedPolicy, Scheduler,
    User,
};

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
    for (i, arg) in args.iter().enumerate() {
        super::bounds::no_nul(arg, &format!("process.args[{i}]"))?;
    }
    let env = p.env().clone().unwrap_or_default();
    for (i, var) in env.iter().enumerate() {
        super::bounds::no_nul(var, &format!("process.env[{i}]"))?;
        if !var.contains('=') || var.starts_with('=') {
            return Err(SpecError::invalid(
                format!("process.env[{i}]"),
                format!("{var:?} is not of the form NAME=value"),
            ));
        }
    }
    refuse_unsupported(p)?;
    super::bounds::user(&user(p.user()))?;
    super::bounds::oom_score_adj(p.oom_score_adj())?;
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
        apparmor_profile: p.apparmor_profile().clone().filter(|s| !s.is_empty()),
        scheduler: p
            .scheduler()
            .as_ref()
            .map(|s| scheduler(s).map(Box::new))
            .transpose()?,
        io_priority: p.io_priority().as_ref().map(io_priority).transpose()?,
    })
}

/// `process.scheduler` with runc's rules. Unknown policy and flag names were
/// refused while decoding, with their JSON path.
pub(crate) fn scheduler(s: &oci::Scheduler) -> Result<Scheduler, SpecError> {
    use oci::LinuxSchedulerFlag as F;
    use oci::LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => SchedPolicy::Other,
        P::SchedFifo => SchedPolicy::Fifo,
        P::SchedRr => SchedPolicy::Rr,
        P::SchedBatch => SchedPolicy::Batch,
        P::SchedIso => SchedPolicy::Iso,
        P::SchedIdle => SchedPolicy::Idle,
        P::SchedDeadline => SchedPolicy::Deadline,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(SpecError::invalid(
            "process.scheduler.nice",
            format!("{nice} is not a nice value (-20 to 19)"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, SchedPolicy::Fifo | SchedPolicy::Rr);
    if priority != 0 && !realtime {
        return Err(SpecError::invalid(
            "process.scheduler.priority",
            format!(
                "a priority is only for SCHED_FIFO and SCHED_RR, not {}",
                policy.spec_name()
            ),
        ));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy != SchedPolicy::Deadline && (runtime, deadline, period) != (0, 0, 0) {
        let field = if runtime != 0 {
            "runtime"
        } else if deadline != 0 {
            "deadline"
        } else {
            "period"
        };
        return Err(SpecError::invalid(
            format!("process.scheduler.{field}"),
            format!(
                "runtime, deadline and period are only for SCHED_DEADLINE, not {}",
                policy.spec_name()
            ),
        ));
    }
    if realtime && !(1..=99).contains(&priority) {
        return Err(SpecError::invalid(
            "process.scheduler.priority",
            format!(
                "{} needs a priority from 1 to 99, not {priority}",
                policy.spec_name()
            ),
        ));
    }
    let mut flags = Vec::new();
    for f in s.flags().iter().flatten() {
        let flag = match f {
            F::SchedResetOnFork => SchedFlag::ResetOnFork,
            F::SchedFlagReclaim => SchedFlag::Reclaim,
            F::SchedFlagDLOverrun => SchedFlag::DlOverrun,
            F::SchedFlagKeepPolicy => SchedFlag::KeepPolicy,
            F::SchedFlagKeepParams => SchedFlag::KeepParams,
            F::SchedFlagUtilClampMin => SchedFlag::UtilClampMin,
            F::SchedFlagUtilClampMax => SchedFlag::UtilClampMax,
        };
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    Ok(Scheduler {
        policy,
        nice,
        priority: u32::try_from(priority).unwrap_or(0),
        flags,
        runtime,
        deadline,
        period,
    })
}

/// `process.ioPriority`: unknown class names were refused while decoding.
fn io_priority(io: &oci::LinuxIOPriority) -> Result<IoPriority, SpecError> {
    let level = u8::try_from(io.priority())
        .ok()
        .filter(|l| *l <= 7)
        .ok_or_else(|| {
            SpecError::invalid(
                "process.ioPriority.priority",
                format!("{} is not an I/O priority level (0 to 7)", io.priority()),
            )
        })?;
    let class = match io.class() {
        oci::IOPriorityClass::IoprioClassRt => IoPriorityClass::Rt,
        oci::IOPriorityClass::IoprioClassBe => IoPriorityClass::Be,
        oci::IOPriorityClass::IoprioClassIdle => IoPriorityClass::Idle,
    };
    Ok(IoPriority { class, level })
}

fn refuse_unsupported(p: &oci::Process) -> Result<(), SpecError> {
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
