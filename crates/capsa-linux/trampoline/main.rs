//! capsa's exec trampoline: a tiny static program (no libc, about 1 KiB)
//! that the container process execs from a sealed memfd just before it
//! execs the user's program. It exists for CVE-2019-5736: when the user's
//! program is a script whose interpreter is `/proc/self/exe`, the kernel
//! resolves that name to the *current* executable at exec time. Without the
//! trampoline that would be capsa's binary on the host; with it, it is this
//! sealed copy, which nobody can write. capsa only takes this path where the
//! rest of the defence holds (`capsa_linux::exe_guard` says when); otherwise
//! it re-executes itself from a sealed copy, which costs a copy of its whole
//! binary per command.
//!
//! Built by `build.rs` with rustc alone (no_std, no_main, static, no start
//! files) and embedded in capsa with `include_bytes!`.
//!
//! Arguments: `REPORT_FD PREFIX SUFFIX PATH ARGV0 ARGV1 ...`. It marks
//! REPORT_FD close-on-exec, then `execve(PATH, [ARGV0, ...], envp)`. If that
//! fails, it writes `PREFIX <errno in decimal> SUFFIX` to REPORT_FD in one
//! write (one packet on a SEQPACKET socket) and exits with status 127.
//! The caller keeps the syscalls it makes (fcntl, execve, write, exit_group)
//! allowed by the container's seccomp filter, or does not use it.
#![no_std]
#![no_main]

use core::arch::global_asm;

const EXIT_NOT_RUN: usize = 127;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const FCNTL: usize = 72;
    pub const EXECVE: usize = 59;
    pub const EXIT_GROUP: usize = 231;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const FCNTL: usize = 25;
    pub const EXECVE: usize = 221;
    pub const EXIT_GROUP: usize = 94;
}

const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;

// The kernel starts us with the stack pointer at argc, followed by the argv
// pointers, a null, the envp pointers and a null. Hand that address to
// `entry` on an aligned stack.
#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "bl {entry}",
    "brk #0",
    entry = sym entry,
);

/// A raw system call with three arguments; returns the kernel's value
/// (a negative errno on failure).
#[cfg(target_arch = "x86_64")]
fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the syscall instruction with the Linux x86_64 convention; the
    // kernel clobbers rcx and r11 only. The callers pass pointers that are
    // valid for the call (the kernel's own argv/envp, or a stack buffer).
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c,
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: `svc 0` with the Linux aarch64 convention (number in x8,
    // result in x0). The callers pass pointers valid for the call.
    unsafe {
        core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a as isize => ret,
            in("x1") b, in("x2") c, options(nostack));
    }
    ret
}

fn exit(code: usize) -> ! {
    loop {
        syscall3(nr::EXIT_GROUP, code, 0, 0);
    }
}

/// Length of a NUL-terminated string.
fn c_len(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: `s` is one of the kernel's argv strings, NUL-terminated. The
    // volatile read keeps LLVM from turning the loop into a call to `strlen`,
    // which does not exist here (no libc).
    while unsafe { core::ptr::read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}

fn parse_fd(s: *const u8) -> Option<usize> {
    let len = c_len(s);
    if len == 0 || len > 9 {
        return None;
    }
    let mut v = 0usize;
    for i in 0..len {
        // SAFETY: i < len, within the string.
        let d = unsafe { *s.add(i) };
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + usize::from(d - b'0');
    }
    Some(v)
}

/// Appends `bytes` (a NUL-terminated string, or the digits of a number) to
/// `buf` at `*at`, as far as it fits.
fn push(buf: &mut [u8], at: &mut usize, byte: u8) {
    if *at < buf.len() {
        buf[*at] = byte;
        *at += 1;
    }
}

fn push_c(buf: &mut [u8], at: &mut usize, s: *const u8) {
    for i in 0..c_len(s) {
        // SAFETY: i is within the NUL-terminated string.
        push(buf, at, unsafe { *s.add(i) });
    }
}

fn push_decimal(buf: &mut [u8], at: &mut usize, mut v: usize) {
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while n > 0 {
        n -= 1;
        push(buf, at, digits[n]);
    }
}

/// The failure report, in .bss: the kernel zeroes it, so no `memset` (there
/// is no libc to provide one) is needed.
static mut REPORT: [u8; 4096] = [0; 4096];

extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: the process's initial stack, laid out by the kernel as above.
    let argc = unsafe { *sp };
    if argc < 5 {
        exit(EXIT_NOT_RUN);
    }
    // SAFETY: argv[0..argc] follow argc; envp follows argv's null.
    let argv = unsafe { sp.add(1) } as *const *const u8;
    let envp = unsafe { argv.add(argc + 1) };
    let arg = |i: usize| -> *const u8 {
        // SAFETY: callers pass i < argc.
        unsafe { *argv.add(i) }
    };
    let Some(fd) = parse_fd(arg(0)) else {
        exit(EXIT_NOT_RUN)
    };
    let errno = if syscall3(nr::FCNTL, fd, F_SETFD, FD_CLOEXEC) < 0 {
        // Without close-on-exec the report fd would leak into the program
        // and hold its reader up: refuse instead (EBADF-like report).
        9
    } else {
        // SAFETY: argv + 4 is the user's argv, null-terminated by the kernel.
        let user_argv = unsafe { argv.add(4) } as usize;
        (-syscall3(nr::EXECVE, arg(3) as usize, user_argv, envp as usize)) as usize
    };
    // SAFETY: the only reference to REPORT, in a single-threaded program.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(REPORT) };
    let mut at = 0;
    push_c(buf, &mut at, arg(1));
    push_decimal(buf, &mut at, errno);
    push_c(buf, &mut at, arg(2));
    syscall3(nr::WRITE, fd, buf.as_ptr() as usize, at);
    exit(EXIT_NOT_RUN)
}

/// core is built with unwinding tables that name this symbol; with
/// panic=abort it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(EXIT_NOT_RUN)
}
