//! `linux.seccomp` → classic-BPF programs ([`compile`], pure) → the kernel
//! ([`install`]).
//!
//! # One OCI profile, several stacked filters
//!
//! An OCI profile gives every `syscalls[]` entry its own action, while a
//! seccompiler filter has one action for a match and one for a mismatch. We
//! bridge the two with filter stacking: when several filters are installed,
//! the kernel runs all of them on every system call and takes the
//! highest-precedence result (KILL_PROCESS > KILL_THREAD > TRAP > ERRNO >
//! USER_NOTIF > TRACE > LOG > ALLOW). [`compile`] builds:
//!
//! * the *default* filter: every system call named by an entry, with that
//!   entry's argument conditions → ALLOW; anything else → `defaultAction`.
//!   It is left out when `defaultAction` is ALLOW.
//! * one filter per distinct other action A (ERRNO with different errno
//!   values are different actions): the entries with action A → A; anything
//!   else → ALLOW. A filter whose rule set is empty is left out.
//!
//! An entry whose action equals `defaultAction` is skipped, as libseccomp
//! does. Why this is the profile: a call that matches no entry gets
//! `defaultAction` from the default filter and ALLOW from all others, so
//! `defaultAction`; a call matching an entry with action A gets ALLOW from
//! the default filter, A from A's filter and ALLOW from the rest, so A.
//! Caveat: a call that matches entries with two different actions gets the
//! more restrictive one (under runc, libseccomp's merging decides); for two
//! ERRNO values it gets the one from the filter installed last.
//!
//! Within one entry, the `args` are ANDed into one rule and each name of
//! `names` gets that rule; entries naming the same call are ORed. As in runc,
//! an entry with two conditions on the same argument index is split into one
//! rule per condition (ORed), which is what such profiles mean. Comparisons
//! are 64-bit, as libseccomp's. `SCMP_CMP_MASKED_EQ` takes `value` as the
//! mask and `valueTwo` as the value; a `valueTwo` with bits outside the mask
//! can never match (as in libseccomp), so that rule is dropped.
//! `errnoRet` (and `defaultErrnoRet`) default to EPERM, for TRACE too, where
//! the value is the message for the tracer (runc does the same).
//!
//! # Architectures
//!
//! A kernel runs calls of several ABIs, told apart by `seccomp_data.arch`:
//! on x86_64 the native one, i386 (`int 0x80`) and x32 (the x86_64 audit
//! arch with bit 30 of the call number set); on aarch64 also 32-bit arm.
//! As with libseccomp, the profile's rules apply to the native ABI and to
//! each ABI `architectures` lists that this host can run, each with its own
//! call numbers (the `syscalls` crate's per-arch tables; x32's are the
//! x86_64 ones with bit 30, except its own 512+ entries). An empty list
//! means the native ABI only, and the native ABI is filtered even when the
//! list leaves it out (runc only adds arches to libseccomp's native
//! filter). A name one ABI lacks (`chown32` on x86_64, `arch_prctl` on
//! i386) is skipped for that ABI with a debug line. Calls of an ABI not
//! filtered get libseccomp's default bad-arch action, `SCMP_ACT_KILL`
//! (kill the thread), which runc keeps.
//!
//! seccompiler builds programs for its one target arch only, each starting
//! with `ld arch; jeq native; ret KILL_PROCESS`. So (`seccomp_arch.rs`) we
//! let it build the call-number matching of each ABI (its numbers are just
//! constants to it), cut that arch check off, and put our own dispatch in
//! front: load the arch, jump to that ABI's section (for the x86_64 audit
//! arch, first on the x32 bit), else return the bad-arch action. The
//! default filter of Docker's default profile takes 1,759 instructions for
//! x86_64, 2,104 for i386 and 1,722 for x32, and a program may have 4,096,
//! so a filter whose sections do not fit in one program is split: each program dispatches to the
//! sections it carries and returns ALLOW for the listed ABIs another
//! program of the same filter checks (and the bad-arch action for unlisted
//! ones), so the stack still gives each call exactly its ABI's result.
//!
//! Not done: libseccomp's i386 socketcall(2)/ipc(2) demultiplexing (a rule
//! for `socket` also matching `socketcall(SYS_SOCKET, ..)`): on i386 a rule
//! applies to the direct call only. Argument values are compared on 64
//! bits on every ABI; a 32-bit ABI's arguments have a zero high word.
//!
//! # Install order
//!
//! Each filter is installed by its own `seccomp(2)` call, which the filters
//! already installed must allow. So the filters that may restrict
//! `seccomp(2)` go last, and a profile where two of them would is refused.
//! Only the native ABI matters here (the init makes those calls), so of a
//! filter split into several programs the one with the native section goes
//! last.
//!
//! # NOTIFY and flags
//!
//! `SCMP_ACT_NOTIFY` is built here like the other actions and finished by
//! `seccomp_notify.rs` (which says why and how); its filter must fit in one
//! program for all its ABIs, as only one filter of a process can have the
//! listener. `flags` apply to every filter (`SECCOMP_FILTER_FLAG_LOG` logs
//! each filter's non-ALLOW results, `SPEC_ALLOW` must be on all of them or
//! the mitigation is forced anyway), except `WAIT_KILLABLE_RECV`, which the
//! kernel accepts only with a listener and so goes on the NOTIFY filter
//! alone. `TSYNC` has nothing to do: the init is single-threaded when it
//! installs the filters.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use seccompiler::{
    sock_filter, BackendError, SeccompAction, SeccompFilter, SeccompRule, TargetArch,
};

use crate::seccomp_notify::NOTIFY;

#[path = "seccomp_arch.rs"]
pub(crate) mod arch;
#[path = "seccomp_args.rs"]
mod args;
#[path = "seccomp_flags.rs"]
mod flags;

pub use arch::supported_architectures;
use arch::Abi;
use args::entry_rules;
use flags::{filter_flags, kernel_before};
pub use flags::{supported_flags, KNOWN_FLAGS};

/// The errno of an ERRNO or TRACE action whose config gives none.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// `BPF_MAXINSNS`: the kernel's limit on one program.
const MAX_INSTRUCTIONS: usize = 4096;

/// One compiled filter, ready for [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfProgram {
    /// What the filter does, for messages, e.g. `SCMP_ACT_ERRNO(38) for 1
    /// syscalls`.
    pub summary: String,
    pub instructions: Vec<sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` to install it with.
    pub flags: u32,
    /// The NOTIFY filter: installed with a listener (`seccomp_notify.rs`).
    pub listener: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp filters cannot be built for {arch}: capsa supports x86_64, aarch64 and riscv64"
    )]
    UnsupportedHost { arch: &'static str },
    #[error("{path}: {value} does not fit in the 16 bits a seccomp filter returns")]
    ErrnoOutOfRange { path: String, value: u32 },
    #[error("{path}: argument index {index} is out of range 0..=5")]
    ArgIndex { path: String, index: usize },
    #[error("{path}: {source}")]
    Rule { path: String, source: BackendError },
    #[error("{count} of the seccomp filters would restrict seccomp(2) itself; capsa installs them one by one, so only one may")]
    SeccompRestrictedTwice { count: usize },
    #[error("cannot build the seccomp filter {summary}: {source}")]
    Build {
        summary: String,
        source: BackendError,
    },
    #[error("cannot build the seccomp filter {summary}: seccompiler's program does not start with the arch check capsa replaces")]
    UnexpectedProgram { summary: String },
    #[error("the SCMP_ACT_NOTIFY filter ({summary}) needs {size} instructions for its architectures, more than the 4096 of one program (the kernel gives one listener per process)")]
    NotifyTooLarge { summary: String, size: usize },
    #[error("linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is used but no listenerPath is set")]
    ListenerPathMissing,
    #[error("{path}: SCMP_ACT_NOTIFY cannot apply to {call}(2): {why}")]
    MustNotNotify {
        path: &'static str,
        call: &'static str,
        why: &'static str,
    },
    #[error("linux.seccomp.flags: this kernel ({release}) refused SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which needs Linux 5.19 or later: {source}")]
    WaitKillableRecv { release: String, source: io::Error },
    #[error("installing seccomp filter {number} of {count} ({summary}): {source}")]
    Install {
        number: usize,
        count: usize,
        summary: String,
        source: io::Error,
    },
}

/// Compiles `config` into the programs to install, in order. Pure: nothing
/// is installed and the host is not touched.
pub fn compile(config: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    let host = Abi::host().ok_or(SeccompError::UnsupportedHost {
        arch: std::env::consts::ARCH,
    })?;
    let abis = arch::filtered(config.architectures().as_deref().unwrap_or_default(), host);
    let native = |name: &str| abis[0].number(name).unwrap_or(-1);
    let default = action(config.default_action(), config.default_errno_ret(), || {
        "linux.seccomp.defaultErrnoRet".to_string()
    })?;

    let (allowed, by_action) = collect_rules(config, &default, &abis)?;
    let (flags, listener_flags) = filter_flags(config);

    let mut plans = Vec::new();
    if default != SeccompAction::Allow {
        plans.push(Plan {
            summary: format!(
                "default {}, allowing {} syscalls",
                describe(&default),
                allowed[0].len()
            ),
            rules: allowed,
            on_match: SeccompAction::Allow,
            otherwise: default.clone(),
        });
    }
    for (act, rules) in by_action {
        plans.push(Plan {
            summary: format!("{} for {} syscalls", describe(&act), rules[0].len()),
            rules,
            on_match: act,
            otherwise: SeccompAction::Allow,
        });
    }
    // Stable: the filters that may restrict seccomp(2) move to the end.
    let seccomp_nr = native("seccomp");
    plans.sort_by_key(|plan| plan.may_restrict(seccomp_nr));
    let count = plans
        .iter()
        .filter(|plan| plan.may_restrict(seccomp_nr))
        .count();
    if count > 1 {
        return Err(SeccompError::SeccompRestrictedTwice { count });
    }
    if let Some(notifying) = plans.iter().find(|plan| plan.notifies()) {
        if config.listener_path().is_none() {
            return Err(SeccompError::ListenerPathMissing);
        }
        let path = if default == NOTIFY {
            "linux.seccomp.defaultAction"
        } else {
            "linux.seccomp.syscalls"
        };
        for (call, why) in crate::seccomp_notify::MUST_NOT_NOTIFY {
            if notifying.may_restrict(native(call)) {
                return Err(SeccompError::MustNotNotify { path, call, why });
            }
        }
    }
    let mut programs = Vec::new();
    for plan in plans {
        let flags = if plan.notifies() {
            listener_flags
        } else {
            flags
        };
        programs.extend(plan.build(host, &abis, flags)?);
    }
    Ok(programs)
}

/// A filter's rule sets, one per filtered ABI (in the order of
/// [`arch::filtered`], the native one first).
type AbiRules = Vec<SyscallRules>;

/// The rule sets of the default filter (the calls it allows) and of each
/// other action's filter, in the order the actions first appear.
fn collect_rules(
    config: &LinuxSeccomp,
    default: &SeccompAction,
    abis: &[Abi],
) -> Result<(AbiRules, Vec<(SeccompAction, AbiRules)>), SeccompError> {
    let mut allowed = vec![SyscallRules::new(); abis.len()];
    let mut by_action: Vec<(SeccompAction, AbiRules)> = Vec::new();
    for (i, entry) in config.syscalls().iter().flatten().enumerate() {
        let act = action(entry.action(), entry.errno_ret(), || {
            format!("linux.seccomp.syscalls[{i}].errnoRet")
        })?;
        if act == *default {
            continue;
        }
        let Some(when) = entry_rules(entry.args().as_deref().unwrap_or_default(), i)? else {
            tracing::debug!("seccomp: linux.seccomp.syscalls[{i}] can never match, skipped");
            continue;
        };
        for (j, name) in entry.names().iter().enumerate() {
            for (k, abi) in abis.iter().enumerate() {
                let Some(nr) = abi.number(name) else {
                    tracing::debug!(
                        "seccomp: linux.seccomp.syscalls[{i}].names[{j}]: {name:?} is not a {} system call, skipped for it",
                        abi.oci()
                    );
                    continue;
                };
                if *default != SeccompAction::Allow {
                    add(&mut allowed[k], nr, &when);
                }
                if act == SeccompAction::Allow {
                    continue;
                }
                let at = match by_action.iter().position(|(a, _)| *a == act) {
                    Some(at) => at,
                    None => {
                        by_action.push((act.clone(), vec![SyscallRules::new(); abis.len()]));
                        by_action.len() - 1
                    }
                };
                add(&mut by_action[at].1[k], nr, &when);
            }
        }
    }
    Ok((allowed, by_action))
}

/// Installs `programs` on the calling thread, in order, each with its flags;
/// returns the listener of the NOTIFY filter, if there is one. The thread
/// must have `no_new_privs` set or hold `CAP_SYS_ADMIN`; this function sets
/// nothing itself (the OCI spec sets `no_new_privs` only when
/// `process.noNewPrivileges` is true).
pub fn install(programs: &[BpfProgram]) -> Result<Option<OwnedFd>, SeccompError> {
    use crate::sys::seccomp::{install_filter, install_filter_with_listener};
    let mut listener = None;
    for (i, program) in programs.iter().enumerate() {
        let (insns, flags) = (&program.instructions, program.flags);
        let installed = if program.listener {
            install_filter_with_listener(insns, flags).map(|fd| listener = Some(fd))
        } else {
            install_filter(insns, flags)
        };
        installed.map_err(|source| {
            let killable = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
            if source.raw_os_error() == Some(libc::EINVAL) && flags & killable != 0 {
                let release = nix::sys::utsname::uname()
                    .map(|u| u.release().to_string_lossy().into_owned())
                    .unwrap_or_default();
                if kernel_before(&release, (5, 19)) {
                    return SeccompError::WaitKillableRecv { release, source };
                }
            }
            SeccompError::Install {
                number: i + 1,
                count: programs.len(),
                summary: program.summary.clone(),
                source,
            }
        })?;
    }
    Ok(listener)
}

/// When a system call matches, for one entry or for all entries of a filter.
#[derive(Debug, Clone)]
enum When {
    Always,
    /// Any of these rules (never empty).
    Any(Vec<SeccompRule>),
}

type SyscallRules = BTreeMap<i64, When>;

fn add(rules: &mut SyscallRules, nr: i64, when: &When) {
    use std::collections::btree_map::Entry;
    match rules.entry(nr) {
        Entry::Vacant(slot) => {
            slot.insert(when.clone());
        }
        Entry::Occupied(mut slot) => match (slot.get_mut(), when) {
            (When::Always, _) => {}
            (merged, When::Always) => *merged = When::Always,
            (When::Any(all), When::Any(more)) => all.extend(more.iter().cloned()),
        },
    }
}

/// One filter before it becomes BPF.
struct Plan {
    summary: String,
    rules: AbiRules,
    on_match: SeccompAction,
    otherwise: SeccompAction,
}

impl Plan {
    /// Whether this is the filter whose action is NOTIFY.
    fn notifies(&self) -> bool {
        self.on_match == NOTIFY || self.otherwise == NOTIFY
    }

    /// Whether this filter can return something other than ALLOW for the
    /// native call `nr`.
    fn may_restrict(&self, nr: i64) -> bool {
        if self.otherwise == SeccompAction::Allow {
            self.rules[0].contains_key(&nr)
        } else {
            !matches!(self.rules[0].get(&nr), Some(When::Always))
        }
    }

    /// The programs of this filter: one unless its ABI sections do not fit
    /// in one; then the one with the native section comes last.
    fn build(
        self,
        host: &[Abi],
        abis: &[Abi],
        flags: u32,
    ) -> Result<Vec<BpfProgram>, SeccompError> {
        let listener = self.notifies();
        let summary = self.summary;
        let build_error = |source| SeccompError::Build {
            summary: summary.clone(),
            source,
        };
        let mut sections = Vec::with_capacity(abis.len());
        for (abi, rules) in abis.iter().zip(self.rules) {
            let rules = rules
                .into_iter()
                .map(|(nr, when)| match when {
                    When::Always => (nr, Vec::new()),
                    When::Any(rules) => (nr, rules),
                })
                .collect();
            // The target only decides the arch check, which is cut off.
            let filter = SeccompFilter::new(
                rules,
                self.otherwise.clone(),
                self.on_match.clone(),
                TargetArch::x86_64,
            )
            .map_err(build_error)?;
            let program: Vec<sock_filter> = filter.try_into().map_err(build_error)?;
            let body =
                arch::strip_arch_check(program).ok_or_else(|| SeccompError::UnexpectedProgram {
                    summary: summary.clone(),
                })?;
            sections.push((*abi, body));
        }
        let mut groups = arch::pack(host, abis, sections, MAX_INSTRUCTIONS)
            .map_err(|size| build_error(BackendError::FilterTooLarge(size)))?;
        if listener && groups.len() > 1 {
            let size = groups.iter().map(|(_, p)| p.len()).sum();
            return Err(SeccompError::NotifyTooLarge { summary, size });
        }
        let split = groups.len() > 1;
        groups.reverse();
        Ok(groups
            .into_iter()
            .map(|(carried, mut instructions)| {
                if listener {
                    crate::seccomp_notify::to_user_notif(&mut instructions);
                }
                let summary = if split {
                    let names: Vec<String> = carried.iter().map(|a| a.oci().to_string()).collect();
                    format!("{summary}, on {}", names.join(", "))
                } else {
                    summary.clone()
                };
                BpfProgram {
                    summary,
                    instructions,
                    flags,
                    listener,
                }
            })
            .collect())
    }
}

/// The seccompiler action for an OCI action and its optional errno.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    errno_path: impl FnOnce() -> String,
) -> Result<SeccompAction, SeccompError> {
    use LinuxSeccompAction as A;
    let errno = || match errno_ret {
        None => Ok(DEFAULT_ERRNO),
        Some(value) if value <= u32::from(u16::MAX) => Ok(value),
        Some(value) => Err(SeccompError::ErrnoOutOfRange {
            path: errno_path(),
            value,
        }),
    };
    Ok(match action {
        // libseccomp's SCMP_ACT_KILL is kill-thread.
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActErrno => SeccompAction::Errno(errno()?),
        A::ScmpActTrace => SeccompAction::Trace(errno()?),
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActNotify => NOTIFY,
    })
}

fn describe(action: &SeccompAction) -> String {
    if *action == NOTIFY {
        return "SCMP_ACT_NOTIFY".to_string();
    }
    match action {
        SeccompAction::Allow => "SCMP_ACT_ALLOW".to_string(),
        SeccompAction::Errno(errno) => format!("SCMP_ACT_ERRNO({errno})"),
        SeccompAction::KillThread => "SCMP_ACT_KILL_THREAD".to_string(),
        SeccompAction::KillProcess => "SCMP_ACT_KILL_PROCESS".to_string(),
        SeccompAction::Log => "SCMP_ACT_LOG".to_string(),
        SeccompAction::Trace(msg) => format!("SCMP_ACT_TRACE({msg})"),
        SeccompAction::Trap => "SCMP_ACT_TRAP".to_string(),
    }
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
