//! `linux.resources.devices` on cgroup v2: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup
//! directory. cgroup v2 has no devices controller; the kernel runs this
//! program on every mknod and open of a device node by a process of the
//! cgroup, and refuses the access (EPERM) when it returns 0.
//!
//! [`program`] turns the rules into instructions (pure), [`apply`] loads
//! and attaches them, replacing any device program already on the cgroup.
//!
//! # Semantics
//!
//! The same as the v1 list capsa writes (see `devices.rs`): everything is
//! denied, then the rules apply in order, and for each kind of access the
//! last rule that matches the device and names that access decides. A
//! request for several accesses (an `O_RDWR` open asks for read and write)
//! is allowed only if each of them is. An `a` rule matches every device and
//! every access, whatever its numbers and access string say (the kernel's
//! v1 controller reads it that way too): it resets the list to "allow all"
//! or "deny all".
//!
//! One difference from the v1 kernel: v1 ignores a deny rule that would
//! punch a hole into a wildcard allow rule (allow `c *:* rwm`, then deny
//! `c 1:3 rwm` leaves 1:3 allowed there); here the later rule wins, as the
//! config says.
//!
//! # The program
//!
//! It reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32
//! minor; }` (access in the high 16 bits of `access_type`, device type in
//! the low ones) into registers, then walks the rules from the last one
//! back, keeping in r3 the accesses not yet decided:
//!
//! ```text
//!   r2 = type   r3 = access   r4 = major   r5 = minor
//!   for each rule, last first (skipped when the device does not match):
//!     deny:   if r3 & rule.access != 0: return 0
//!     allow:  r3 &= !rule.access; if r3 == 0: return 1
//!   return <default: 1 after an "allow a" rule, else 0>
//! ```
//!
//! Rules before the last `a` rule can never decide anything and are left
//! out.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use capsa_spec::DeviceRule;

use super::{devices::rule_line, CgroupError};
use crate::sys::bpf::{self, Insn};

/// `BPF_DEVCG_DEV_*`: the device type in `access_type`.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
/// `BPF_DEVCG_ACC_*`: the access in `access_type`.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;

/// The opcodes we emit (class | operation | source), from
/// <https://docs.kernel.org/bpf/standardization/instruction-set.html>.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst = (u32)dst & imm
const ALU32_RSH_K: u8 = 0x74; // dst = (u32)dst >> imm
const ALU32_MOV_K: u8 = 0xb4; // dst = (u32)imm
const ALU32_MOV_X: u8 = 0xbc; // dst = (u32)src
const JMP_JEQ_K: u8 = 0x15; // if dst == (s64)imm: pc += off
const JMP_JNE_K: u8 = 0x55; // if dst != (s64)imm: pc += off
const JMP_JNE_X: u8 = 0x5d; // if dst != src: pc += off
const JMP_EXIT: u8 = 0x95; // return r0

/// Registers: r0 the result, r1 the context pointer and then scratch.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// What `bpftool prog` shows as the program's name.
const PROG_NAME: &str = "capsa_devices";

/// One rule, checked and in the program's terms.
struct Matcher {
    allow: bool,
    /// `DEV_*`; `None` for an `a` rule.
    kind: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    /// `ACC_*` bits.
    access: u32,
}

fn matcher(rule: &DeviceRule) -> Result<Matcher, CgroupError> {
    let refuse = |reason: String| CgroupError::ResourceRefused {
        field: "devices".into(),
        reason: format!("rule {:?}: {reason}", rule_line(rule)),
    };
    let kind = match rule.kind {
        'a' => None,
        'b' => Some(DEV_BLOCK),
        'c' => Some(DEV_CHAR),
        other => return Err(refuse(format!("unknown device type {other:?}"))),
    };
    let number = |n: Option<i64>, what: &str| match n {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| refuse(format!("{what} {n} is not a device number"))),
    };
    let mut access = 0;
    for c in rule.access.chars() {
        access |= match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            other => return Err(refuse(format!("unknown access {other:?}"))),
        };
    }
    Ok(Matcher {
        allow: rule.allow,
        kind,
        major: number(rule.major, "major")?,
        minor: number(rule.minor, "minor")?,
        access,
    })
}

const fn insn(code: u8, dst: u8, src: u8, imm: i32) -> Insn {
    Insn::new(code, dst, src, 0, imm)
}

/// Reinterprets a u32 as the i32 immediate carrying the same bits.
const fn imm(value: u32) -> i32 {
    i32::from_ne_bytes(value.to_ne_bytes())
}

/// The device program for `rules` (see the module documentation).
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let rules = rules.iter().map(matcher).collect::<Result<Vec<_>, _>>()?;
    let (default_allow, rules) = match rules.iter().rposition(|r| r.kind.is_none()) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (false, &rules[..]),
    };
    let mut prog = vec![
        Insn::new(LDX_MEM_W, R_TYPE, R1, 0, 0),
        insn(ALU32_AND_K, R_TYPE, 0, 0xffff),
        Insn::new(LDX_MEM_W, R_ACCESS, R1, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 16),
        Insn::new(LDX_MEM_W, R_MAJOR, R1, 4, 0),
        Insn::new(LDX_MEM_W, R_MINOR, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        push_rule(&mut prog, rule);
    }
    prog.push(insn(ALU32_MOV_K, R0, 0, i32::from(default_allow)));
    prog.push(insn(JMP_EXIT, 0, 0, 0));
    Ok(prog)
}

/// Appends one rule's block. Every jump in it goes to the end of the block
/// (the next rule), so offsets stay small whatever the number of rules.
fn push_rule(prog: &mut Vec<Insn>, rule: &Matcher) {
    // (instruction, whether it jumps to the end of the block)
    let mut block: Vec<(Insn, bool)> = Vec::with_capacity(10);
    let mut skip_unless_equal = |reg: u8, value: u32| {
        if let Ok(value) = i32::try_from(value) {
            block.push((insn(JMP_JNE_K, reg, 0, value), true));
        } else {
            // The immediate would be sign-extended to 64 bits and could
            // never equal the zero-extended register: compare registers.
            block.push((insn(ALU32_MOV_K, R1, 0, imm(value)), false));
            block.push((insn(JMP_JNE_X, reg, R1, 0), true));
        }
    };
    if let Some(kind) = rule.kind {
        skip_unless_equal(R_TYPE, kind);
    }
    if let Some(major) = rule.major {
        skip_unless_equal(R_MAJOR, major);
    }
    if let Some(minor) = rule.minor {
        skip_unless_equal(R_MINOR, minor);
    }
    let access = imm(rule.access);
    if rule.allow {
        // Clearing bits the request does not have changes nothing.
        block.push((insn(ALU32_AND_K, R_ACCESS, 0, !access), false));
        block.push((insn(JMP_JNE_K, R_ACCESS, 0, 0), true));
        block.push((insn(ALU32_MOV_K, R0, 0, 1), false));
    } else {
        block.push((insn(ALU32_MOV_X, R1, R_ACCESS, 0), false));
        block.push((insn(ALU32_AND_K, R1, 0, access), false));
        block.push((insn(JMP_JEQ_K, R1, 0, 0), true));
        block.push((insn(ALU32_MOV_K, R0, 0, 0), false));
    }
    block.push((insn(JMP_EXIT, 0, 0, 0), false));
    let len = block.len();
    for (i, (mut insn, to_end)) in block.into_iter().enumerate() {
        if to_end {
            // At most 9 instructions: always fits.
            insn.off = (len - i - 1) as i16;
        }
        prog.push(insn);
    }
}

/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `dir`, replacing the device programs attached there before,
/// without a moment when none is attached:
///
/// - when the cgroup holds programs attached in the exclusive or override
///   mode (not by capsa), attaching ours in that same mode replaces the
///   old one atomically;
/// - otherwise ours is attached with `BPF_F_ALLOW_MULTI` first (while both
///   are attached, an access needs both to allow it), then the old ones
///   are detached.
///
/// Our fd of the program is closed on return: the cgroup keeps the program
/// until it is replaced or the cgroup is removed.
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let insns = program(rules)?;
    let err = |action: &'static str| {
        move |source: io::Error| CgroupError::DeviceProgram {
            action,
            path: dir.to_path_buf(),
            source,
        }
    };
    let cgroup = File::open(dir).map_err(err("open the cgroup directory"))?;
    let cgroup = cgroup.as_fd();
    let prog = load(&insns).map_err(err("load the eBPF device program for"))?;
    let attached = bpf::prog_query_cgroup_device(cgroup)
        .map_err(err("list the eBPF device programs attached to"))?;
    let attach_err = err("attach the eBPF device program to");
    if !attached.ids.is_empty() && attached.mode & bpf::BPF_F_ALLOW_MULTI == 0 {
        return bpf::prog_attach_cgroup_device(cgroup, prog.as_fd(), attached.mode)
            .map_err(attach_err);
    }
    let mut old: Vec<OwnedFd> = Vec::with_capacity(attached.ids.len());
    for id in attached.ids {
        match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => old.push(fd),
            // Detached and freed since the query: nothing to do.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err("open an old eBPF device program of")(e)),
        }
    }
    bpf::prog_attach_cgroup_device(cgroup, prog.as_fd(), bpf::BPF_F_ALLOW_MULTI)
        .map_err(attach_err)?;
    for fd in old {
        match bpf::prog_detach_cgroup_device(cgroup, fd.as_fd()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err("detach an old eBPF device program from")(e)),
        }
    }
    Ok(())
}

/// `BPF_PROG_LOAD`; when the kernel refuses the program, a second try with
/// the verifier's log, which goes into the error (a refusal is a capsa bug
/// or a kernel without `CONFIG_CGROUP_BPF`).
fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let first = match bpf::prog_load_cgroup_device(insns, PROG_NAME, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 64 * 1024];
    match bpf::prog_load_cgroup_device(insns, PROG_NAME, Some(&mut log)) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            let log = log.trim();
            if log.is_empty() {
                Err(first)
            } else {
                Err(io::Error::new(
                    first.kind(),
                    format!("{first}; verifier log: {}", log.replace('\n', "; ")),
                ))
            }
        }
    }
}

#[cfg(test)]
#[path = "bpf_devices_tests.rs"]
mod tests;
