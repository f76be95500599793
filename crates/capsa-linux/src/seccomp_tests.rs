//! The compiled programs are checked by running them in `seccomp_eval`'s
//! classic-BPF interpreter, which combines the results as the kernel does; one test also
//! installs filters for real, in a re-run of this test binary.

use std::process::Command;
use std::time::Instant;

use super::*;
use crate::seccomp_eval::native_audit_arch;
use arch::X32_SYSCALL_BIT;

const RUNTIME_TOOLS_DEFAULT: &str = include_str!("seccomp_fixtures/runtime_tools_default.json");
const MULTI_ACTION: &str = include_str!("seccomp_fixtures/multi_action.json");

fn config(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

/// The native number of `name`.
fn nr(name: &str) -> u32 {
    Abi::host().unwrap()[0].number(name).unwrap() as u32
}

/// The kernel's result for a call, from `seccomp_eval` (the same
/// interpreter `exe_guard` relies on).
fn verdict_for(programs: &[BpfProgram], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let data = crate::seccomp_eval::SeccompData {
        nr: nr as i32,
        arch,
        args,
    };
    crate::seccomp_eval::stacked_action(programs, &data).expect("a program seccomp_eval can run")
}

fn verdict(programs: &[BpfProgram], name: &str, args: &[u64]) -> u32 {
    let mut all = [0u64; 6];
    all[..args.len()].copy_from_slice(args);
    verdict_for(programs, native_audit_arch(), nr(name), all)
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

#[test]
fn runtime_tools_default_profile() {
    let cfg = config(RUNTIME_TOOLS_DEFAULT);
    // Measured on the 2-core dev machine: about 1.6 ms per compile in a
    // debug build; on x86_64 the three x86 ABIs it lists make two programs
    // of the default filter (1397 instructions per ABI, 4096 at most per
    // program).
    let start = Instant::now();
    let programs = compile(&cfg).unwrap();
    let first = start.elapsed();
    let rounds = 100;
    let start = Instant::now();
    for _ in 0..rounds {
        compile(&cfg).unwrap();
    }
    let sizes: Vec<usize> = programs.iter().map(|p| p.instructions.len()).collect();
    eprintln!(
        "compile(runtime-tools default profile): first {first:?}, mean of {rounds} {:?}, instructions {sizes:?}",
        start.elapsed() / rounds,
    );

    // Every entry is ALLOW against an ERRNO default: the default filter only.
    let split = if cfg!(target_arch = "x86_64") { 2 } else { 1 };
    assert_eq!(programs.len(), split, "{programs:#?}");
    assert!(
        programs
            .iter()
            .all(|p| p.summary.starts_with("default SCMP_ACT_ERRNO(1)")),
        "{}",
        programs[0].summary
    );
    assert!(sizes.iter().all(|&n| n <= MAX_INSTRUCTIONS), "{sizes:?}");
    assert_eq!(verdict(&programs, "read", &[]), ALLOW);
    assert_eq!(verdict(&programs, "getcwd", &[]), ALLOW);
    assert_eq!(verdict(&programs, "unshare", &[]), errno(libc::EPERM));
    assert_eq!(verdict(&programs, "mount", &[]), errno(libc::EPERM));
    // clone: allowed only without namespace flags (MASKED_EQ 0x7E020000 == 0).
    assert_eq!(verdict(&programs, "clone", &[libc::SIGCHLD as u64]), ALLOW);
    assert_eq!(
        verdict(&programs, "clone", &[libc::CLONE_NEWNS as u64]),
        errno(libc::EPERM)
    );
    assert_eq!(
        verdict(&programs, "clone", &[libc::CLONE_NEWUSER as u64 | 17]),
        errno(libc::EPERM)
    );
    // personality: 0, 8 and 0xffffffff only, compared on 64 bits.
    assert_eq!(verdict(&programs, "personality", &[8]), ALLOW);
    assert_eq!(verdict(&programs, "personality", &[0xffff_ffff]), ALLOW);
    assert_eq!(
        verdict(&programs, "personality", &[0x1_ffff_ffff]),
        errno(libc::EPERM)
    );
    assert_eq!(
        verdict(&programs, "personality", &[0x0040_0000]),
        errno(libc::EPERM)
    );
    // The other ABIs it lists get their own numbers' rules; an unlisted
    // arch gets the bad-arch action.
    if cfg!(target_arch = "x86_64") {
        let (i386, x86_64) = (0x4000_0003, native_audit_arch());
        assert_eq!(verdict_for(&programs, i386, 3, [0; 6]), ALLOW, "i386 read");
        assert_eq!(
            verdict_for(&programs, i386, 26, [0; 6]),
            errno(libc::EPERM),
            "i386 ptrace"
        );
        let x32_read = nr("read") | X32_SYSCALL_BIT;
        assert_eq!(verdict_for(&programs, x86_64, x32_read, [0; 6]), ALLOW);
        let x32_mount = nr("mount") | X32_SYSCALL_BIT;
        assert_eq!(
            verdict_for(&programs, x86_64, x32_mount, [0; 6]),
            errno(libc::EPERM)
        );
    }
    let foreign = 0x4000_00b7; // no host's audit arch
    assert_eq!(
        verdict_for(&programs, foreign, nr("read"), [0; 6]),
        libc::SECCOMP_RET_KILL_THREAD
    );
}

#[test]
fn multi_action_profile() {
    let programs = compile(&config(MULTI_ACTION)).unwrap();
    // default ERRNO(1); ERRNO(38); KILL_PROCESS; TRAP; LOG. The ERRNO(1)
    // entry equals the default action and adds no filter.
    let summaries: Vec<&str> = programs.iter().map(|p| p.summary.as_str()).collect();
    assert_eq!(programs.len(), 5, "{summaries:#?}");
    assert!(summaries[0].starts_with("default SCMP_ACT_ERRNO(1)"));
    assert!(summaries.contains(&"SCMP_ACT_ERRNO(38) for 1 syscalls"));
    assert!(summaries.contains(&"SCMP_ACT_KILL_PROCESS for 2 syscalls"));

    assert_eq!(verdict(&programs, "write", &[]), ALLOW);
    assert_eq!(verdict(&programs, "clone3", &[]), errno(libc::ENOSYS));
    assert_eq!(verdict(&programs, "mount", &[]), errno(libc::EPERM));
    assert_eq!(verdict(&programs, "kexec_load", &[]), KILL_PROCESS);
    assert_eq!(verdict(&programs, "ptrace", &[]), libc::SECCOMP_RET_TRAP);
    assert_eq!(verdict(&programs, "syslog", &[]), libc::SECCOMP_RET_LOG);
    assert_eq!(verdict(&programs, "reboot", &[]), errno(libc::EPERM));
    // socket: anything but AF_VSOCK (40).
    assert_eq!(verdict(&programs, "socket", &[libc::AF_UNIX as u64]), ALLOW);
    assert_eq!(verdict(&programs, "socket", &[40]), errno(libc::EPERM));
    // prctl: arg0 == 15 AND arg1 != 0.
    assert_eq!(verdict(&programs, "prctl", &[15, 1]), ALLOW);
    assert_eq!(verdict(&programs, "prctl", &[15, 0]), errno(libc::EPERM));
    assert_eq!(verdict(&programs, "prctl", &[16, 1]), errno(libc::EPERM));
    // fcntl: two conditions on arg1 are ORed, as runc does.
    assert_eq!(verdict(&programs, "fcntl", &[0, 1]), ALLOW);
    assert_eq!(verdict(&programs, "fcntl", &[0, 3]), ALLOW);
    assert_eq!(verdict(&programs, "fcntl", &[0, 2]), errno(libc::EPERM));
    // A number no entry names.
    assert_eq!(
        verdict_for(&programs, native_audit_arch(), 4000, [0; 6]),
        errno(libc::EPERM)
    );
}

#[test]
fn default_allow_needs_no_default_filter() {
    // The shape of runtime-tools' linux_seccomp validation test.
    let programs = compile(&config(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    assert_eq!(programs.len(), 1);
    assert_eq!(verdict(&programs, "getcwd", &[]), errno(libc::EPERM));
    assert_eq!(verdict(&programs, "read", &[]), ALLOW);
    assert_eq!(verdict(&programs, "mount", &[]), ALLOW);

    // Nothing left to filter: no program at all.
    let none = compile(&config(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["no_such_call"], "action": "SCMP_ACT_KILL"}]}"#,
    ))
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn default_filter_without_entries_denies_everything() {
    let programs = compile(&config(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13}"#,
    ))
    .unwrap();
    assert_eq!(programs.len(), 1);
    assert_eq!(verdict(&programs, "read", &[]), errno(libc::EACCES));
}

#[test]
fn conflicting_actions_take_the_more_restrictive() {
    let programs = compile(&config(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
    assert_eq!(verdict(&programs, "getcwd", &[]), KILL_PROCESS);
    assert_eq!(verdict(&programs, "uname", &[0]), errno(libc::EACCES));
    assert_eq!(verdict(&programs, "uname", &[1]), ALLOW);
}

#[test]
fn conditional_entry_falls_back_to_the_default() {
    let programs = compile(&config(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    ))
    .unwrap();
    assert_eq!(verdict(&programs, "kill", &[1, 0]), errno(libc::EDOM));
    assert_eq!(verdict(&programs, "kill", &[1, 9]), errno(libc::EPERM));
    // valueTwo has bits outside the mask: the entry never matches.
    assert_eq!(verdict(&programs, "clone", &[1]), errno(libc::EPERM));
    assert_eq!(verdict(&programs, "clone", &[3]), errno(libc::EPERM));
}

#[test]
fn filters_restricting_seccomp_go_last() {
    let mut cfg = config(RUNTIME_TOOLS_DEFAULT);
    let mut entries = cfg.syscalls().clone().unwrap();
    let mut names = entries[0].names().clone();
    names.retain(|name| name != "seccomp");
    entries[0].set_names(names);
    entries.push(config_entry(
        r#"{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#,
    ));
    cfg.set_syscalls(Some(entries.clone()));
    let programs = compile(&cfg).unwrap();
    let summaries: Vec<&str> = programs.iter().map(|p| p.summary.as_str()).collect();
    // On x86_64 the default filter takes two programs for its three ABIs;
    // the one with the native section is the one that restricts seccomp(2).
    let split = if cfg!(target_arch = "x86_64") { 1 } else { 0 };
    assert_eq!(summaries.len(), 2 + split, "{summaries:?}");
    assert!(
        summaries[0].starts_with("SCMP_ACT_ERRNO(38)"),
        "{summaries:?}"
    );
    let last = summaries.last().unwrap();
    assert!(last.starts_with("default"), "{summaries:?}");
    if split == 1 {
        assert!(last.contains("on SCMP_ARCH_X86_64"), "{summaries:?}");
    }
    assert_eq!(verdict(&programs, "unshare", &[]), errno(libc::ENOSYS));
    assert_eq!(verdict(&programs, "seccomp", &[]), errno(libc::EPERM));

    // Two filters that would both restrict seccomp(2) cannot be installed:
    // here the default filter allows it only when arg0 == 1, and the
    // ERRNO(38) filter refuses it when arg1 == 5.
    entries.push(config_entry(
        r#"{"names": ["seccomp"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}"#,
    ));
    entries.push(config_entry(
        r#"{"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
            "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}"#,
    ));
    cfg.set_syscalls(Some(entries));
    match compile(&cfg) {
        Err(SeccompError::SeccompRestrictedTwice { count: 2 }) => {}
        other => panic!("{:?}", other.map(|programs| programs.len())),
    }
}

fn config_entry(json: &str) -> oci_spec::runtime::LinuxSyscall {
    serde_json::from_str(json).unwrap()
}

#[test]
fn errors_name_the_json_path() {
    let message = |json: &str| compile(&config(json)).unwrap_err().to_string();
    let err = message(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
              {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        err.starts_with("linux.seccomp.syscalls[1].args[1].index: "),
        "{err}"
    );

    let err = message(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
    );
    assert!(
        err.starts_with("linux.seccomp.syscalls[0].errnoRet: 70000"),
        "{err}"
    );
}

// The real thing: a re-run of this test binary installs filters and checks
// what the system calls return. Each scenario runs in its own process,
// because filters cannot be removed.

const CHILD_SCENARIO: &str = "CAPSA_SECCOMP_TEST_SCENARIO";
const CHILD_DIR: &str = "CAPSA_SECCOMP_TEST_DIR";

#[test]
fn installed_filters_act_in_a_child() {
    if let Ok(scenario) = std::env::var(CHILD_SCENARIO) {
        child(&scenario);
    }
    let test_name = format!(
        "{}::installed_filters_act_in_a_child",
        module_path!().split_once("::").unwrap().1
    );
    for scenario in ["actions", "default-profile"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                test_name.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SCENARIO, scenario)
            .env(CHILD_DIR, dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scenario {scenario}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !dir.path().join("made").exists(),
            "scenario {scenario}: mkdir went through"
        );
    }
}

/// Runs in the re-run binary: installs, checks, and exits 0 or 1.
fn child(scenario: &str) -> ! {
    use nix::errno::Errno;
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::getpid;

    let cfg = match scenario {
        "actions" => config(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                 "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95,
                 "args": [{"index": 1, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["acct"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        ),
        _ => {
            // runtime-tools' default without seccomp(2) in its allow list:
            // installs only because the default filter goes last.
            let mut cfg = config(RUNTIME_TOOLS_DEFAULT);
            let mut entries = cfg.syscalls().clone().unwrap();
            let mut names = entries[0].names().clone();
            names.retain(|name| name != "seccomp");
            entries[0].set_names(names);
            entries.push(config_entry(
                r#"{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}"#,
            ));
            cfg.set_syscalls(Some(entries));
            cfg
        }
    };
    let dir = std::path::PathBuf::from(std::env::var_os(CHILD_DIR).unwrap());
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let programs = compile(&cfg).unwrap();
    nix::sys::prctl::set_no_new_privs().unwrap();
    install(&programs).unwrap();

    let mut failures = Vec::new();
    let mut check = |what: &str, got: Result<(), Errno>, want: Result<(), Errno>| {
        if got != want {
            failures.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };
    if scenario == "actions" {
        let mkdir = std::fs::create_dir(dir.join("made"))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap()));
        check("mkdir", mkdir, Err(Errno::EACCES));
        check("kill(self, 0)", kill(getpid(), None), Err(Errno::EDOM));
        check(
            "kill(self, SIGWINCH)",
            kill(getpid(), Signal::SIGWINCH),
            Ok(()),
        );
        let fcntl = |arg| nix::fcntl::fcntl(&devnull, arg).map(drop);
        check(
            "fcntl(F_GETFL)",
            fcntl(nix::fcntl::FcntlArg::F_GETFL),
            Err(Errno::EOPNOTSUPP),
        );
        check(
            "fcntl(F_GETFD)",
            fcntl(nix::fcntl::FcntlArg::F_GETFD),
            Ok(()),
        );
    } else {
        check(
            "unshare(0)",
            nix::sched::unshare(nix::sched::CloneFlags::empty()),
            Err(Errno::ENOSYS),
        );
        check("getcwd", nix::unistd::getcwd().map(drop), Ok(()));
        let again = match install(&programs) {
            Err(SeccompError::Install { source, .. }) => {
                Err(Errno::from_raw(source.raw_os_error().unwrap_or(0)))
            }
            other => other.map(drop).map_err(|_| Errno::UnknownErrno),
        };
        check("seccomp(2) once installed", again, Err(Errno::EPERM));
    }
    for failure in &failures {
        eprintln!("{failure}");
    }
    std::process::exit(i32::from(!failures.is_empty()))
}

#[path = "seccomp_notify_tests.rs"]
mod notify;

#[path = "seccomp_arch_tests.rs"]
mod arch_tests;
