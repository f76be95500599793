//! `linux.seccomp` observed from inside the container: every action (ERRNO with its
//! value, KILL, KILL_PROCESS, KILL_THREAD, TRAP, TRACE without a tracer, LOG, and
//! ALLOW under a restrictive default) and argument conditions (several arguments
//! ANDed in one entry, MASKED_EQ), and `architectures` (a static i386 program
//! under i386 rules, or killed when SCMP_ARCH_X86 is not listed). NOTIFY has its
//! own file (`seccomp_notify.rs`).
//!
//! The probes: busybox's `mkdir`, `rmdir`, `chmod`, `kill` and `uname` applets make
//! one system call each that matters; ash's `cd` builtin makes `chdir(2)` in the
//! shell itself, so the shell can `trap` the SIGSYS of SCMP_ACT_TRAP.

use capsa_integration_test::fs_fixtures::{add_tmpfs, run, run_ok, value_of};
use capsa_integration_test::{loud, Bundle, Ctx};
use serde_json::{json, Value};

/// Exit status of a process killed by SIGSYS, as the shell reports it.
const SIGSYS_STATUS: &str = "159";

/// glibc's text for `errno`, as busybox (linked against glibc) prints it.
fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    text.split(" (os error").next().unwrap_or(&text).to_string()
}

fn with_seccomp(b: &mut Bundle, default: &str, syscalls: Value) {
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": default,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": syscalls,
        });
        if !cfg!(target_arch = "x86_64") {
            c["linux"]["seccomp"]
                .as_object_mut()
                .expect("seccomp")
                .remove("architectures");
        }
    });
}

fn names(calls: &[&str]) -> Value {
    json!(calls)
}

#[test]
fn errno_kill_trap_and_trace_are_seen_by_the_process() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secacts");
    add_tmpfs(&mut b, "/tmp", &["rw"]);
    with_seccomp(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([
            {"names": names(&["mkdir", "mkdirat"]), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV},
            {"names": names(&["rmdir"]), "action": "SCMP_ACT_KILL"},
            {"names": names(&["unlink", "unlinkat"]), "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": names(&["symlink", "symlinkat"]), "action": "SCMP_ACT_KILL_THREAD"},
            {"names": names(&["link", "linkat"]), "action": "SCMP_ACT_TRACE", "errnoRet": 3},
            {"names": names(&["chdir"]), "action": "SCMP_ACT_TRAP"},
        ]),
    );
    b.sh("mkdir /tmp/d 2>&1; echo mkdir=$?; \
          rmdir /tmp 2>/dev/null; echo rmdir=$?; \
          touch /tmp/x; rm -f /tmp/x; echo unlink=$?; \
          ln -s a /tmp/l; echo symlink=$?; \
          ln /bin/busybox /tmp/h 2>&1; echo link=$?; \
          trap 'echo trapped=SIGSYS' SYS; cd /tmp; echo after_cd=yes");
    let out = run_ok(&ctx, &b, &id);
    assert!(
        out.contains(&strerror(libc::EXDEV)),
        "mkdir should fail with errnoRet {} ({}):\n{out}",
        libc::EXDEV,
        strerror(libc::EXDEV)
    );
    assert_eq!(value_of(&out, "mkdir"), "1", "{out}");
    for (call, action) in [
        ("rmdir", "SCMP_ACT_KILL"),
        ("unlink", "SCMP_ACT_KILL_PROCESS"),
        ("symlink", "SCMP_ACT_KILL_THREAD"),
    ] {
        assert_eq!(
            value_of(&out, call),
            SIGSYS_STATUS,
            "{action} should kill the process with SIGSYS:\n{out}"
        );
    }
    // TRACE with no tracer attached: the call fails with ENOSYS.
    assert!(out.contains(&strerror(libc::ENOSYS)), "TRACE:\n{out}");
    assert_eq!(value_of(&out, "link"), "1", "{out}");
    // TRAP: a SIGSYS the shell catches, and the shell goes on.
    assert_eq!(value_of(&out, "trapped"), "SIGSYS", "TRAP:\n{out}");
    assert_eq!(value_of(&out, "after_cd"), "yes", "{out}");
}

/// SCMP_ACT_LOG lets the call through and the kernel logs it (audit type 1326 in
/// the kernel log, when `log` is in /proc/sys/kernel/seccomp/actions_logged).
#[test]
fn log_allows_the_call_and_the_kernel_logs_it() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("seclog");
    with_seccomp(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([{"names": names(&["uname"]), "action": "SCMP_ACT_LOG"}]),
    );
    b.sh("echo machine=$(uname -m)");
    let out = run_ok(&ctx, &b, &id);
    assert_eq!(value_of(&out, "machine"), std::env::consts::ARCH, "{out}");

    let logged =
        std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_logged").unwrap_or_default();
    let dmesg = std::process::Command::new("dmesg").output();
    match dmesg {
        Ok(d) if d.status.success() && logged.split_whitespace().any(|a| a == "log") => {
            let text = String::from_utf8_lossy(&d.stdout);
            let uname_nr = format!("syscall={}", libc::SYS_uname);
            assert!(
                text.lines().any(|l| l.contains("type=1326")
                    && l.contains(&uname_nr)
                    && l.contains("comm=\"uname\"")
                    && l.contains("code=0x7ffc0000")),
                "no seccomp LOG record of uname in the kernel log"
            );
        }
        _ => loud("SKIPPED: the LOG record check (no dmesg, or `log` not in actions_logged)"),
    }
}

#[test]
fn argument_conditions_select_the_calls() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secargs");
    add_tmpfs(&mut b, "/tmp", &["rw"]);
    with_seccomp(
        &mut b,
        "SCMP_ACT_ALLOW",
        json!([
            // kill(pid <= 1, SIGUSR1): both arguments must match. The shell is
            // pid 1 in its pid namespace; its background child is not.
            {"names": names(&["kill"]), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EDOM,
             "args": [{"index": 1, "value": libc::SIGUSR1, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 1, "op": "SCMP_CMP_LE"}]},
            // chmod with the setuid bit: (mode & 07000) == 04000.
            {"names": names(&["chmod"]), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS,
             "args": [{"index": 1, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": names(&["fchmodat"]), "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EROFS,
             "args": [{"index": 2, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
        ]),
    );
    b.sh("trap 'echo got=USR2' USR2; \
          kill -USR1 $$ 2>&1; echo usr1=$?; \
          sleep 1000 & kill -USR1 $!; echo child=$?; wait $!; echo child_status=$?; \
          kill -USR2 $$; echo usr2=$?; \
          touch /tmp/f; chmod 4755 /tmp/f 2>&1; echo setuid=$?; \
          chmod 755 /tmp/f; echo plain=$?");
    let out = run_ok(&ctx, &b, &id);
    assert!(out.contains(&strerror(libc::EDOM)), "kill(SIGUSR1):\n{out}");
    assert_eq!(value_of(&out, "usr1"), "1", "{out}");
    // The child's pid is not <= 1: its SIGUSR1 is sent and kills it.
    assert_eq!(value_of(&out, "child"), "0", "{out}");
    assert_eq!(value_of(&out, "child_status"), "138", "{out}");
    assert_eq!(value_of(&out, "usr2"), "0", "{out}");
    assert_eq!(value_of(&out, "got"), "USR2", "{out}");
    assert!(out.contains(&strerror(libc::EROFS)), "chmod 4755:\n{out}");
    assert_eq!(value_of(&out, "setuid"), "1", "{out}");
    assert_eq!(value_of(&out, "plain"), "0", "{out}");
}

/// A default of ERRNO with an allow list (runtime-tools' shape): what is listed
/// works, the rest gets `defaultErrnoRet`.
#[test]
fn an_allow_list_under_an_errno_default() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("secallow");
    // Everything busybox sh and its applets need, but mkdir and mkdirat.
    let allowed = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlink",
        "readlinkat",
        "mprotect",
        "uname",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "getpid",
        "getppid",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "stat",
        "newfstatat",
        "fstat",
        "lstat",
        "statx",
        "write",
        "writev",
        "read",
        "exit_group",
        "exit",
        "wait4",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "openat",
        "open",
        "close",
        "fcntl",
        "dup2",
        "dup3",
        "getcwd",
        "ioctl",
        "lseek",
        "pipe",
        "pipe2",
        "access",
        "faccessat",
        "faccessat2",
        "mmap",
        "munmap",
        "getrandom",
        "sysinfo",
        "time",
        "gettimeofday",
        "clock_gettime",
        "poll",
        "ppoll",
        "futex",
        "getpgrp",
        "setpgid",
        "getpgid",
        "getsid",
        "chdir",
        "umask",
        "sigaltstack",
        // What runc's Go init calls between loading the filter and exec.
        "fstatfs",
        "statfs",
        "getdents64",
        "close_range",
        "epoll_create1",
        "epoll_ctl",
        "epoll_pwait",
        "nanosleep",
        "sched_yield",
        "gettid",
        "tgkill",
        "madvise",
        "sched_getaffinity",
        "prctl",
        "capget",
        "capset",
        "fchdir",
    ];
    with_seccomp(
        &mut b,
        "SCMP_ACT_ERRNO",
        json!([{"names": names(&allowed), "action": "SCMP_ACT_ALLOW"}]),
    );
    b.edit(|c| c["linux"]["seccomp"]["defaultErrnoRet"] = json!(libc::ENOLINK));
    b.sh("echo hello=world; mkdir /d 2>&1; echo mkdir=$?");
    let res = run(&ctx, &b, &id);
    assert!(res.success(), "the container should run:\n{res}");
    assert_eq!(value_of(&res.stdout, "hello"), "world", "{res}");
    assert!(
        res.stdout.contains(&strerror(libc::ENOLINK)),
        "mkdir gets defaultErrnoRet:\n{res}"
    );
    ctx.assert_nothing_left(&id, &b);
}

/// The i386 program of [`an_i386_program_gets_the_i386_rules`]: makes the
/// i386 mkdir(2) (number 39, where x86_64 has getpid) on its argument and
/// prints `mkdir32=<errno>`, 0 when the directory was made.
const MKDIR32_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
_Static_assert(SYS_mkdir == 39, "the i386 number of mkdir");
int main(int argc, char **argv) {
    long r = syscall(SYS_mkdir, argc > 1 ? argv[1] : "/tmp/d", 0755);
    printf("mkdir32=%d\n", r == 0 ? 0 : errno);
    return 0;
}
"#;

/// Builds [`MKDIR32_C`] with `gcc -m32 -static` into `dir`.
fn build_mkdir32(dir: &std::path::Path) -> std::path::PathBuf {
    let (src, out) = (dir.join("mkdir32.c"), dir.join("mkdir32"));
    std::fs::write(&src, MKDIR32_C).expect("write mkdir32.c");
    let gcc = std::process::Command::new("gcc")
        .args(["-m32", "-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .output();
    match gcc {
        Ok(o) if o.status.success() => out,
        Ok(o) => panic!(
            "gcc -m32 -static cannot build a 32-bit program here: install Debian's gcc-multilib \
             (and so libc6-dev-i386), as scripts/test.sh does:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run gcc ({e}): install gcc and gcc-multilib"),
    }
}

/// `linux.seccomp.architectures`: a 32-bit (i386) program gets the profile's
/// rules with the i386 call numbers when SCMP_ARCH_X86 is listed, and is killed
/// (libseccomp's bad-arch action) on its first call when it is not, as under runc.
#[cfg(target_arch = "x86_64")]
#[test]
fn an_i386_program_gets_the_i386_rules() {
    let ctx = Ctx::new();
    let host = tempfile::tempdir().expect("temp dir");
    let mkdir32 = build_mkdir32(host.path());
    for (listed, want) in [
        (json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]), "mkdir32"),
        (json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]), "status"),
    ] {
        let (id, mut b) = ctx.id_and_bundle("arch-i386");
        add_tmpfs(&mut b, "/tmp", &["rw"]);
        std::fs::copy(&mkdir32, b.rootfs().join("mkdir32")).expect("copy mkdir32");
        b.edit(|c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": listed,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": libc::EPERM}],
            });
        });
        b.sh("/mkdir32 /tmp/d; echo status=$?; if test -d /tmp/d; then echo made=yes; fi");
        let out = run_ok(&ctx, &b, &id);
        if want == "mkdir32" {
            assert_eq!(
                value_of(&out, "mkdir32"),
                libc::EPERM.to_string(),
                "with SCMP_ARCH_X86 listed, i386 mkdir gets the mkdir rule:\n{out}"
            );
            assert_eq!(value_of(&out, "status"), "0", "{out}");
        } else {
            assert!(!out.contains("mkdir32="), "{out}");
            assert_eq!(
                value_of(&out, "status"),
                SIGSYS_STATUS,
                "without SCMP_ARCH_X86, an i386 call is killed with SIGSYS:\n{out}"
            );
        }
        assert!(!out.contains("made=yes"), "{out}");
    }
}
