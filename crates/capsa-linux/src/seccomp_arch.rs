//! `linux.seccomp.architectures`: the system call ABIs a filter checks, their
//! call numbers, and the dispatch each program starts with (see
//! "Architectures" in `seccomp.rs` for why it is built this way).

use std::str::FromStr;

use oci_spec::runtime::Arch;
use seccompiler::sock_filter;

/// `__X32_SYSCALL_BIT`: set in the call number of x32-ABI system calls.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// libseccomp's default bad-arch action (`SCMP_ACT_KILL`, which runc keeps):
/// a call of an ABI the profile does not list kills the calling thread.
pub(crate) const BAD_ARCH_ACTION: u32 = libc::SECCOMP_RET_KILL_THREAD;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const AUDIT_ARCH_RISCV64: u32 = 0xc000_00f3;

/// One system call ABI the kernel can present to a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abi {
    X86_64,
    /// x32: the x86_64 audit arch, call numbers with [`X32_SYSCALL_BIT`].
    X32,
    I386,
    Aarch64,
    /// 32-bit ARM (EABI) on an aarch64 kernel.
    Arm,
    Riscv64,
}

impl Abi {
    /// The ABIs a kernel of this architecture can run, the native one
    /// first; `None` on an architecture capsa has no filters for.
    pub(crate) fn host() -> Option<&'static [Abi]> {
        if cfg!(target_arch = "x86_64") {
            Some(&[Abi::X86_64, Abi::I386, Abi::X32])
        } else if cfg!(target_arch = "aarch64") {
            Some(&[Abi::Aarch64, Abi::Arm])
        } else if cfg!(target_arch = "riscv64") {
            Some(&[Abi::Riscv64])
        } else {
            None
        }
    }

    pub(crate) fn oci(self) -> Arch {
        match self {
            Abi::X86_64 => Arch::ScmpArchX86_64,
            Abi::X32 => Arch::ScmpArchX32,
            Abi::I386 => Arch::ScmpArchX86,
            Abi::Aarch64 => Arch::ScmpArchAarch64,
            Abi::Arm => Arch::ScmpArchArm,
            Abi::Riscv64 => Arch::ScmpArchRiscv64,
        }
    }

    /// `seccomp_data.arch` for calls of this ABI.
    pub(crate) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
            Abi::Riscv64 => AUDIT_ARCH_RISCV64,
        }
    }

    /// `seccomp_data.nr` of the call `name` in this ABI; `None` when the ABI
    /// has no such call.
    pub(crate) fn number(self, name: &str) -> Option<i64> {
        let id = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Abi::X32 => return x32_number(name),
            Abi::I386 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Abi::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
            Abi::Riscv64 => syscalls::riscv64::Sysno::from_str(name).ok()?.id(),
        };
        Some(i64::from(id))
    }
}

/// The x32 calls whose x86_64 entry takes 64-bit structures: x32 has its
/// own entry for them, numbered from 512 (the kernel's syscall_64.tbl, abi
/// `x32`).
const X32_OWN: [&str; 36] = [
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];
/// x86_64 calls x32 does not have at all (abi `64` in syscall_64.tbl with
/// no x32 counterpart).
const X32_ABSENT: [&str; 11] = [
    "create_module",
    "epoll_ctl_old",
    "epoll_wait_old",
    "get_kernel_syms",
    "get_thread_area",
    "nfsservctl",
    "query_module",
    "set_thread_area",
    "_sysctl",
    "uselib",
    "vserver",
];

fn x32_number(name: &str) -> Option<i64> {
    let bit = i64::from(X32_SYSCALL_BIT);
    if let Some(at) = X32_OWN.iter().position(|&own| own == name) {
        return Some(bit | (512 + at as i64));
    }
    if X32_ABSENT.contains(&name) {
        return None;
    }
    Abi::X86_64.number(name).map(|nr| bit | nr)
}

/// The ABIs the filters check for `listed` (`linux.seccomp.architectures`):
/// the native one always (libseccomp's filters always hold it, and runc only
/// adds to them), plus each listed one this host can run, in `host` order.
/// Listed arches this kernel never presents need nothing.
pub(crate) fn filtered(listed: &[Arch], host: &[Abi]) -> Vec<Abi> {
    let native = host[0];
    let mut abis = vec![native];
    for arch in listed {
        let arch = if *arch == Arch::ScmpArchNative {
            native.oci()
        } else {
            *arch
        };
        match host.iter().find(|abi| abi.oci() == arch) {
            Some(abi) if !abis.contains(abi) => abis.push(*abi),
            Some(_) => {}
            None => tracing::debug!(
                "seccomp: linux.seccomp.architectures: {arch} never runs on this {} kernel, nothing to filter",
                native.oci()
            ),
        }
    }
    abis.sort_by_key(|abi| host.iter().position(|h| h == abi));
    abis
}

/// seccompiler's program minus its arch check (`ld arch; jeq ours, skip 1;
/// ret KILL_PROCESS`): the call-number matching, which starts at its first
/// instruction and jumps only within itself. `None` if the program does not
/// start that way.
pub(crate) fn strip_arch_check(mut program: Vec<sock_filter>) -> Option<Vec<sock_filter>> {
    let starts = program.len() > 3
        && (program[0].code, program[0].k) == (LD_W_ABS, ARCH_OFFSET)
        && (program[1].code, program[1].jt, program[1].jf) == (JEQ_K, 1, 0)
        && (program[2].code, program[2].k) == (RET_K, libc::SECCOMP_RET_KILL_PROCESS);
    starts.then(|| program.split_off(3))
}

/// One ABI's call-number matching, from [`strip_arch_check`].
pub(crate) type Section = (Abi, Vec<sock_filter>);
/// One program made by [`pack`]: the ABIs it checks and its instructions.
pub(crate) type Packed = (Vec<Abi>, Vec<sock_filter>);

/// Packs `sections` (per ABI, from [`strip_arch_check`]) into as few
/// programs of at most `max` instructions as it can, in order. Each program
/// is [`assemble`]d; returns the ABIs and instructions of each, or the size of
/// a section that fits in no program.
pub(crate) fn pack(
    host: &[Abi],
    filtered: &[Abi],
    sections: Vec<Section>,
    max: usize,
) -> Result<Vec<Packed>, usize> {
    // Sizes first (the dispatch plus the sections), so that only the
    // programs made are copied together.
    let size = |group: &[Section]| {
        let heads: Vec<Section> = group.iter().map(|(abi, _)| (*abi, Vec::new())).collect();
        assemble(host, filtered, &heads).len() + group.iter().map(|(_, b)| b.len()).sum::<usize>()
    };
    let mut groups: Vec<Vec<Section>> = Vec::new();
    for section in sections {
        if let Some(last) = groups.last_mut() {
            last.push(section);
            if size(last) <= max {
                continue;
            }
            let section = last.pop().expect("just pushed");
            groups.push(vec![section]);
        } else {
            groups.push(vec![section]);
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let program = assemble(host, filtered, &group);
            if program.len() > max {
                return Err(program.len());
            }
            Ok((group.into_iter().map(|(abi, _)| abi).collect(), program))
        })
        .collect()
}

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;

/// Where the dispatch sends the calls of one ABI.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    /// Not listed: the bad-arch action.
    BadArch,
    /// Listed, but filtered by another program: this one allows it.
    Allow,
    /// The x86_64 audit arch: x32 or not, by bit 30 of the call number.
    SplitX32,
    Section(usize),
}

/// One program: the dispatch on `seccomp_data.arch` (and, for the x86_64
/// audit arch, on the x32 bit), then the sections it carries.
///
/// ```text
///     ld  [arch]
///     jeq AUDIT_ARCH_A, 0, 1 ; ja <A's target>   (per audit arch with a target)
///     ret BAD_ARCH_ACTION                         (any other arch)
///     ret ALLOW                                   (listed, filtered elsewhere)
///     ld  [nr] ; jset X32_BIT, 0, 1 ; <to x32> ; <to x86_64>  (x86_64 only:
///                                            a ja, or the ret itself)
///     <sections>
/// ```
/// Conditional jumps reach only 255 instructions, so each one just skips or
/// takes the `ja` after it, which reaches any distance.
fn assemble(host: &[Abi], filtered: &[Abi], sections: &[Section]) -> Vec<sock_filter> {
    let target = |abi: Abi| match sections.iter().position(|(a, _)| *a == abi) {
        Some(at) => Label::Section(at),
        None if filtered.contains(&abi) => Label::Allow,
        None => Label::BadArch,
    };
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut program = vec![insn(LD_W_ABS, 0, 0, ARCH_OFFSET)];
    let mut jumps: Vec<(usize, Label)> = Vec::new();
    let mut split = None;
    for (i, abi) in host.iter().enumerate() {
        if host[..i].iter().any(|a| a.audit_arch() == abi.audit_arch()) {
            continue;
        }
        let label = match *abi {
            Abi::X86_64 if host.contains(&Abi::X32) => {
                let both = (target(Abi::X32), target(Abi::X86_64));
                split = Some(both);
                if both == (Label::BadArch, Label::BadArch) {
                    Label::BadArch
                } else {
                    Label::SplitX32
                }
            }
            abi => target(abi),
        };
        if label != Label::BadArch {
            program.push(insn(JEQ_K, 0, 1, abi.audit_arch()));
            jumps.push((program.len(), label));
            program.push(insn(JA, 0, 0, 0));
        }
    }
    let bad_arch_at = program.len();
    program.push(insn(RET_K, 0, 0, BAD_ARCH_ACTION));
    let allow_at = program.len();
    program.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    let split_at = program.len();
    if let Some((x32, x86_64)) = split {
        program.push(insn(LD_W_ABS, 0, 0, NR_OFFSET));
        program.push(insn(JSET_K, 0, 1, X32_SYSCALL_BIT));
        for label in [x32, x86_64] {
            // The returns above are behind us: repeat them here.
            match label {
                Label::BadArch => program.push(insn(RET_K, 0, 0, BAD_ARCH_ACTION)),
                Label::Allow => program.push(insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW)),
                _ => {
                    jumps.push((program.len(), label));
                    program.push(insn(JA, 0, 0, 0));
                }
            }
        }
    }
    let mut section_at = Vec::with_capacity(sections.len());
    for (_, body) in sections {
        section_at.push(program.len());
        program.extend_from_slice(body);
    }
    for (at, label) in jumps {
        let to = match label {
            Label::BadArch => bad_arch_at,
            Label::Allow => allow_at,
            Label::SplitX32 => split_at,
            Label::Section(i) => section_at[i],
        };
        // Every jump goes forward: the targets come after the dispatch.
        program[at].k = (to - at - 1) as u32;
    }
    program
}

/// The `SCMP_ARCH_*` names of the ABIs this host's filters can check, for
/// `capsa features`.
pub fn supported_architectures() -> Vec<String> {
    Abi::host()
        .unwrap_or_default()
        .iter()
        .map(|abi| abi.oci().to_string())
        .collect()
}
