//! Runs a compiled seccomp filter on one system call, in user space, the way
//! the kernel would: which action would the container get for
//! `fcntl(fd, F_SETFD, FD_CLOEXEC)`? `exe_guard` asks this before it sends the
//! container's last steps through the exec trampoline, whose few system calls
//! run under the container's filter.
//!
//! Only what classic-BPF seccomp programs can contain is interpreted (loads
//! from `seccomp_data`, the scratch memory, ALU and jumps on constants or X,
//! returns). Anything else, or a load of the instruction pointer (unknown
//! before the call happens), gives `None`: the caller must then assume the
//! call may be refused.

use seccompiler::sock_filter;

use crate::seccomp::BpfProgram;

/// The kernel's `struct seccomp_data` for one call.
#[derive(Debug, Clone, Copy)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl SeccompData {
    /// A call of this architecture's number `nr` with `args`.
    pub fn native(nr: i64, args: [u64; 6]) -> Self {
        SeccompData {
            nr: nr as i32,
            arch: native_audit_arch(),
            args,
        }
    }

    /// The 32-bit word at byte `offset` of the structure, as `BPF_LD|BPF_W|BPF_ABS`
    /// reads it (host byte order). The instruction pointer (offsets 8..16)
    /// is unknown: `None`.
    fn word(&self, offset: u32) -> Option<u32> {
        match offset {
            0 => Some(self.nr as u32),
            4 => Some(self.arch),
            16..=63 if offset % 4 == 0 => {
                let arg = self.args[(offset as usize - 16) / 8];
                let low_first = cfg!(target_endian = "little");
                let first_half = (offset - 16) % 8 == 0;
                Some(if first_half == low_first {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                })
            }
            _ => None,
        }
    }
}

/// `AUDIT_ARCH_*` of the architecture capsa runs on (x86_64's where capsa
/// has no filters: nothing is evaluated there).
pub fn native_audit_arch() -> u32 {
    use crate::seccomp::arch::Abi;
    Abi::host().map_or(Abi::X86_64, |abis| abis[0]).audit_arch()
}

/// The return value (action and data) the kernel would give `data` with all
/// `programs` installed in this order. As in `seccomp_run_filters`: every
/// filter runs, the newest first, and a result replaces the one so far only
/// if its action, read as a signed number, is lower (KILL_PROCESS <
/// KILL_THREAD < TRAP < ERRNO < USER_NOTIF < TRACE < LOG < ALLOW); so of two
/// equal actions the newest filter's data wins.
pub fn stacked_action(programs: &[BpfProgram], data: &SeccompData) -> Option<u32> {
    let action_only = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut result = libc::SECCOMP_RET_ALLOW;
    for p in programs.iter().rev() {
        let ret = run(&p.instructions, data)?;
        if action_only(ret) < action_only(result) {
            result = ret;
        }
    }
    Some(result)
}

/// True when the action lets the call run (ALLOW, or LOG which allows it).
pub fn allows(action: u32) -> bool {
    matches!(
        action & libc::SECCOMP_RET_ACTION_FULL,
        libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG
    )
}

const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const MEM_WORDS: usize = 16;
const SECCOMP_DATA_LEN: u32 = 64;

/// Runs one program. `None`: an instruction this interpreter (or seccomp)
/// does not allow, an out-of-range jump or scratch slot, or a load of an
/// unknown word.
fn run(prog: &[sock_filter], data: &SeccompData) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS];
    let mut pc = 0usize;
    // Classic BPF only jumps forward, so every step advances pc: the loop
    // ends within prog.len() steps.
    while let Some(ins) = prog.get(pc) {
        pc += 1;
        let k = ins.k;
        match ins.code & 0x07 {
            BPF_LD => {
                a = match ins.code & 0xe0 {
                    BPF_ABS if ins.code & 0x18 == BPF_W => data.word(k)?,
                    BPF_IMM => k,
                    BPF_MEM => *mem.get(k as usize)?,
                    BPF_LEN => SECCOMP_DATA_LEN,
                    _ => return None,
                }
            }
            BPF_LDX => {
                x = match ins.code & 0xe0 {
                    BPF_IMM => k,
                    BPF_MEM => *mem.get(k as usize)?,
                    BPF_LEN => SECCOMP_DATA_LEN,
                    _ => return None,
                }
            }
            BPF_ST => *mem.get_mut(k as usize)? = a,
            BPF_STX => *mem.get_mut(k as usize)? = x,
            BPF_ALU => {
                let operand = if ins.code & BPF_X != 0 { x } else { k };
                a = alu(ins.code & 0xf0, a, operand)?;
            }
            BPF_JMP => {
                let operand = if ins.code & BPF_X != 0 { x } else { k };
                let op = ins.code & 0xf0;
                if op == 0x00 {
                    pc = pc.checked_add(k as usize)?;
                    continue;
                }
                let taken = match op {
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    _ => return None,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            BPF_RET => {
                return Some(match ins.code & 0x18 {
                    BPF_A => a,
                    0x00 => k,
                    _ => return None,
                })
            }
            BPF_MISC => {
                match ins.code & 0xf8 {
                    0x00 => x = a, // TAX
                    0x80 => a = x, // TXA
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    // Falling off the end: the kernel refuses such a program at load time.
    None
}

fn alu(op: u16, a: u32, v: u32) -> Option<u32> {
    Some(match op {
        0x00 => a.wrapping_add(v),
        0x10 => a.wrapping_sub(v),
        0x20 => a.wrapping_mul(v),
        0x30 => a.checked_div(v)?,
        0x40 => a | v,
        0x50 => a & v,
        0x60 => a.checked_shl(v).unwrap_or(0),
        0x70 => a.checked_shr(v).unwrap_or(0),
        0x80 => a.wrapping_neg(),
        0x90 => a.checked_rem(v)?,
        0xa0 => a ^ v,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccomp;

    fn profile(json: &str) -> Vec<BpfProgram> {
        let sc: LinuxSeccomp = serde_json::from_str(json).unwrap();
        crate::seccomp::compile(&sc).unwrap()
    }

    fn action(programs: &[BpfProgram], nr: i64, args: [u64; 6]) -> u32 {
        stacked_action(programs, &SeccompData::native(nr, args)).unwrap()
    }

    #[test]
    fn no_filter_allows_everything() {
        assert_eq!(
            action(&[], libc::SYS_execve, [0; 6]),
            libc::SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn deny_list_and_allow_list_profiles() {
        let deny = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["fcntl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        );
        assert_eq!(
            action(&deny, libc::SYS_fcntl, [3, 2, 1, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert!(allows(action(&deny, libc::SYS_execve, [0; 6])));

        let allow = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["execve","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(allows(action(&allow, libc::SYS_execve, [0; 6])));
        assert!(!allows(action(&allow, libc::SYS_execveat, [0; 6])));
        assert!(!allows(action(&allow, libc::SYS_fcntl, [3, 2, 1, 0, 0, 0])));
    }

    #[test]
    fn argument_conditions_are_evaluated() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["fcntl"],"action":"SCMP_ACT_KILL_PROCESS",
                 "args":[{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
                {"names":["write"],"action":"SCMP_ACT_LOG",
                 "args":[{"index":0,"value":4294967296,"op":"SCMP_CMP_GE"}]}]}"#,
        );
        assert_eq!(
            action(&p, libc::SYS_fcntl, [3, 2, 1, 0, 0, 0]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert!(allows(action(&p, libc::SYS_fcntl, [3, 1, 0, 0, 0, 0])));
        // 64-bit comparison: the high word decides.
        assert_eq!(
            action(&p, libc::SYS_write, [1 << 32, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_LOG
        );
        assert_eq!(
            action(&p, libc::SYS_write, [5, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn a_foreign_architecture_is_killed() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        let mut data = SeccompData::native(libc::SYS_execve, [0; 6]);
        data.arch = 0x4000_0003; // AUDIT_ARCH_I386
                                 // libseccomp's bad-arch action, as under runc.
        assert_eq!(
            stacked_action(&p, &data),
            Some(libc::SECCOMP_RET_KILL_THREAD)
        );
    }

    #[test]
    fn unknown_words_and_instructions_give_none() {
        let load_ip = sock_filter {
            code: BPF_LD | BPF_W | BPF_ABS,
            jt: 0,
            jf: 0,
            k: 8,
        };
        let ret = || sock_filter {
            code: BPF_RET,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        };
        let data = SeccompData::native(0, [0; 6]);
        assert_eq!(run(&[load_ip, ret()], &data), None);
        let bad = sock_filter {
            code: 0x07 | 0x40,
            jt: 0,
            jf: 0,
            k: 0,
        };
        assert_eq!(run(&[bad, ret()], &data), None);
        assert_eq!(run(&[], &data), None);
        let jump_out = sock_filter {
            code: BPF_JMP,
            jt: 0,
            jf: 0,
            k: 5,
        };
        assert_eq!(run(&[jump_out, ret()], &data), None);
    }
}
