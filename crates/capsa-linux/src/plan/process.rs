//! The container process's part of the plan: capabilities and rlimits by
//! number, the scheduler, I/O priority and personality as the kernel takes
//! them.

use std::path::PathBuf;
use std::str::FromStr;

use nix::sys::resource::Resource;

use super::{plan_err, PlanError};

/// The container's process.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub caps: CapsPlan,
    pub rlimits: Vec<(Resource, String, u64, u64)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `process.scheduler` as sched_setattr(2) takes it, with the policy's
    /// name for errors.
    pub scheduler: Option<(crate::sys::sched::SchedAttr, &'static str)>,
    /// `process.ioPriority`: (class number, level, class name).
    pub io_priority: Option<(u32, u32, &'static str)>,
    /// `linux.personality`: the persona for personality(2).
    pub personality: Option<u32>,
    /// `process.apparmorProfile`, on a host with AppArmor (checked by the plan).
    pub apparmor_profile: Option<String>,
}

/// Capability sets, as the `caps` crate names them.
#[derive(Debug, Clone, Default)]
pub struct CapsPlan {
    pub bounding: caps::CapsHashSet,
    pub effective: caps::CapsHashSet,
    pub inheritable: caps::CapsHashSet,
    pub permitted: caps::CapsHashSet,
    pub ambient: caps::CapsHashSet,
}

pub(super) fn process(
    p: &capsa_spec::Process,
    personality: Option<&capsa_spec::Personality>,
) -> Result<ProcessPlan, PlanError> {
    let set = |names: &[String], field: &str| -> Result<caps::CapsHashSet, PlanError> {
        names
            .iter()
            .map(|n| {
                caps::Capability::from_str(n).map_err(|_| {
                    plan_err(
                        format!("process.capabilities.{field}"),
                        format!("capability {n} is not known to capsa"),
                    )
                })
            })
            .collect()
    };
    let c = &p.capabilities;
    let caps = CapsPlan {
        bounding: set(&c.bounding, "bounding")?,
        effective: set(&c.effective, "effective")?,
        inheritable: set(&c.inheritable, "inheritable")?,
        permitted: set(&c.permitted, "permitted")?,
        ambient: set(&c.ambient, "ambient")?,
    };
    let rlimits = p
        .rlimits
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let res = rlimit_resource(&r.kind).ok_or_else(|| {
                plan_err(
                    format!("process.rlimits[{i}].type"),
                    format!("unknown rlimit {:?}", r.kind),
                )
            })?;
            Ok((res, r.kind.clone(), r.soft, r.hard))
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    Ok(ProcessPlan {
        terminal: p.terminal,
        console_size: p.console_size,
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask.unwrap_or(0o022),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges,
        oom_score_adj: p.oom_score_adj,
        scheduler: p.scheduler.as_deref().map(sched_attr),
        io_priority: p.io_priority.map(|io| {
            use capsa_spec::IoPriorityClass as C;
            let (class, name) = match io.class {
                C::Rt => (1, "IOPRIO_CLASS_RT"),
                C::Be => (2, "IOPRIO_CLASS_BE"),
                C::Idle => (3, "IOPRIO_CLASS_IDLE"),
            };
            (class, u32::from(io.level), name)
        }),
        personality: personality.map(persona),
        apparmor_profile: p.apparmor_profile.clone(),
    })
}

/// runc's translation of `process.scheduler` (`configs.ToSchedAttr`).
fn sched_attr(s: &capsa_spec::Scheduler) -> (crate::sys::sched::SchedAttr, &'static str) {
    use capsa_spec::{SchedFlag as F, SchedPolicy as P};
    let policy = match s.policy {
        P::Other => 0,
        P::Fifo => 1,
        P::Rr => 2,
        P::Batch => 3,
        P::Iso => 4,
        P::Idle => 5,
        P::Deadline => 6,
    };
    let flags = s.flags.iter().fold(0u64, |acc, f| {
        acc | match f {
            F::ResetOnFork => 0x01,
            F::Reclaim => 0x02,
            F::DlOverrun => 0x04,
            F::KeepPolicy => 0x08,
            F::KeepParams => 0x10,
            F::UtilClampMin => 0x20,
            F::UtilClampMax => 0x40,
        }
    });
    let attr = crate::sys::sched::SchedAttr {
        size: crate::sys::sched::SCHED_ATTR_SIZE,
        policy,
        flags,
        nice: s.nice,
        priority: s.priority,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
    };
    (attr, s.policy.spec_name())
}

/// PER_LINUX (0) or PER_LINUX32 (8), or'ed with the flags.
fn persona(p: &capsa_spec::Personality) -> u32 {
    let domain = match p.domain {
        capsa_spec::PersonalityDomain::Linux => 0x0000,
        capsa_spec::PersonalityDomain::Linux32 => 0x0008,
    };
    p.flags
        .iter()
        .filter_map(|f| {
            capsa_spec::PERSONALITY_FLAGS
                .iter()
                .find(|(name, _)| name == f)
                .map(|(_, v)| *v)
        })
        .fold(domain, |acc, v| acc | v)
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}
