//! `bpf(2)`, the few commands a cgroup v2 device filter needs: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup directory,
//! list and open the programs already attached there, and detach them.
//! <https://man7.org/linux/man-pages/man2/bpf.2.html>; the attach modes
//! are described above `BPF_F_ALLOW_OVERRIDE` in `<linux/bpf.h>`.
//!
//! Each command fills its own `#[repr(C)]` prefix of the kernel's
//! `union bpf_attr`: the kernel accepts a shorter `size` and treats the
//! missing tail as zero, so these work on every kernel since 4.15.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `BPF_F_ALLOW_OVERRIDE`: an attach mode where a child cgroup's program
/// replaces this one.
pub const BPF_F_ALLOW_OVERRIDE: u32 = 1 << 0;
/// `BPF_F_ALLOW_MULTI`: an attach mode where several programs are attached
/// at once, and every program of the cgroup and its ancestors must allow.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// One eBPF instruction, `struct bpf_insn` from `<linux/bpf.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// The opcode: class, operation and source bits.
    pub code: u8,
    /// `dst_reg:4, src_reg:4` as a C bit field: on a little-endian machine
    /// the destination is the low nibble.
    regs: u8,
    /// The jump offset (in instructions, from the next one) or the memory
    /// offset.
    pub off: i16,
    /// The immediate operand.
    pub imm: i32,
}

impl Insn {
    /// An instruction; `dst` and `src` are register numbers 0 to 10.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        let regs = if cfg!(target_endian = "little") {
            (dst & 0xf) | (src << 4)
        } else {
            (dst << 4) | (src & 0xf)
        };
        Self {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    pub const fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub const fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` part of `union bpf_attr`.
/// (These structs have no implicit padding, whose bytes would be undefined.)
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The `BPF_PROG_QUERY` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    /// Explicit, so that it is zero: older kernels refuse a non-zero byte
    /// after the last field they know.
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `bpf(cmd, attr, sizeof *attr)`; the returned value (an fd for some
/// commands) on success.
///
/// # Safety
///
/// `attr` must be the part of `union bpf_attr` that `cmd` reads, and every
/// pointer stored in it must be valid for what the kernel does with it
/// (read `insn_cnt` instructions, write `log_size` bytes, ...) during the
/// call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` value of the size
    // passed; its embedded pointers are valid per this function's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program. `name` (at
/// most 15 bytes of `[A-Za-z0-9_.]`) is what `bpftool prog` shows. With
/// `log`, the verifier writes its log there (NUL-terminated); pass one
/// after a first failure to learn why the program was refused.
///
/// The license string only matters for GPL-only helpers, which a device
/// program does not call, so it is the project's own.
pub fn prog_load_cgroup_device(
    insns: &[Insn],
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<OwnedFd> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let insn_cnt =
        u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let mut prog_name = [0u8; 16];
    let n = name.len().min(prog_name.len() - 1);
    prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `insns` points at `insn_cnt` instructions laid out as the
    // kernel's `struct bpf_insn`, `LICENSE` is NUL-terminated, and the log
    // buffer (if any) is writable for `log_size` bytes; all outlive the call
    // and the kernel copies what it keeps.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: on success BPF_PROG_LOAD returns a new fd owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `BPF_PROG_ATTACH` of a device program to the cgroup directory `cgroup`
/// (an `O_RDONLY` fd of it), in the attach mode `flags` (0,
/// [`BPF_F_ALLOW_OVERRIDE`] or [`BPF_F_ALLOW_MULTI`]).
///
/// In mode 0 or override, attaching to a cgroup that already has a program
/// in that same mode replaces it atomically. The cgroup keeps its own
/// reference to the program: it stays attached after `prog` is closed,
/// until it is detached or the cgroup is removed.
pub fn prog_attach_cgroup_device(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    // SAFETY: `attr` holds only integers (two fds we borrow for the call).
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr)? };
    Ok(())
}

/// `BPF_PROG_DETACH` of the device program `prog` from `cgroup`.
pub fn prog_detach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: `attr` holds only integers (two fds we borrow for the call).
    unsafe { bpf(BPF_PROG_DETACH, &mut attr)? };
    Ok(())
}

/// The device programs attached to one cgroup directory itself (not those
/// inherited from its ancestors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    /// The attach mode the cgroup is in: 0, [`BPF_F_ALLOW_OVERRIDE`] or
    /// [`BPF_F_ALLOW_MULTI`].
    pub mode: u32,
    /// The kernel's ids of the programs.
    pub ids: Vec<u32>,
}

/// `BPF_PROG_QUERY` of the device programs attached to `cgroup`.
pub fn prog_query_cgroup_device(cgroup: BorrowedFd<'_>) -> io::Result<Attached> {
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: if ids.is_empty() {
                0
            } else {
                ids.as_mut_ptr() as u64
            },
            prog_cnt: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            ..Default::default()
        };
        // SAFETY: `prog_ids` is null with a count of 0, or points at `ids`,
        // writable for `prog_cnt` u32 values, for the whole call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) if attr.prog_cnt as usize <= ids.len() => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(Attached {
                    mode: attr.attach_flags,
                    ids,
                });
            }
            // More programs than room: the kernel told us how many; ask
            // again with room for them (and more, in case of a race).
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {}
            Err(e) => return Err(e),
        }
        ids = vec![0; attr.prog_cnt as usize + 4];
    }
}

/// `BPF_PROG_GET_FD_BY_ID`: an fd of the loaded program `id`.
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: `attr` holds only integers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: on success the kernel returns a new fd owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
