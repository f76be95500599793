//! `linux.seccomp.architectures`: each filtered ABI gets the profile's rules
//! with its own call numbers, an unlisted one the bad-arch action; checked
//! with `seccomp_eval`, which runs the programs as the kernel would.

use super::*;
use crate::seccomp_eval::{stacked_action, SeccompData};
use arch::{BAD_ARCH_ACTION, X32_SYSCALL_BIT};
use oci_spec::runtime::Arch;

#[path = "seccomp_fixtures/docker_profile.rs"]
mod docker_profile;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn compiled(json: &str) -> Vec<BpfProgram> {
    compile(&serde_json::from_str(json).unwrap()).unwrap()
}

/// The stacked result for call `nr` of audit arch `arch`.
fn verdict(programs: &[BpfProgram], arch: u32, nr: i64) -> u32 {
    let data = SeccompData {
        nr: nr as i32,
        arch,
        args: [0; 6],
    };
    stacked_action(programs, &data).expect("a program seccomp_eval can run")
}

/// The stacked result for `name` as `abi` numbers it.
fn verdict_of(programs: &[BpfProgram], abi: Abi, name: &str) -> u32 {
    let nr = abi
        .number(name)
        .unwrap_or_else(|| panic!("{name} on {abi:?}"));
    verdict(programs, abi.audit_arch(), nr)
}

#[test]
fn the_bad_arch_action_is_libseccomps_default() {
    // SCMP_ACT_KILL (kill the thread): runc never changes it.
    assert_eq!(BAD_ARCH_ACTION, KILL_THREAD);
}

#[test]
fn native_is_always_filtered_and_foreign_arches_need_nothing() {
    let host = Abi::host().unwrap();
    let native = host[0];
    assert_eq!(arch::filtered(&[], host), vec![native]);
    let listed = [Arch::ScmpArchMips, Arch::ScmpArchNative];
    assert_eq!(arch::filtered(&listed, host), vec![native]);
    let all: Vec<Arch> = host.iter().rev().map(|abi| abi.oci()).collect();
    assert_eq!(arch::filtered(&all, host), host.to_vec());
}

#[cfg(target_arch = "x86_64")]
#[test]
fn call_numbers_per_abi() {
    assert_eq!(Abi::X86_64.number("mkdir"), Some(83));
    assert_eq!(Abi::I386.number("mkdir"), Some(39));
    assert_eq!(Abi::I386.number("socketcall"), Some(102));
    assert_eq!(Abi::X86_64.number("socketcall"), None);
    assert_eq!(Abi::I386.number("arch_prctl"), Some(384));
    let x32 = |nr: i64| Some(i64::from(X32_SYSCALL_BIT) | nr);
    assert_eq!(Abi::X32.number("read"), x32(0));
    assert_eq!(Abi::X32.number("mkdir"), x32(83));
    // x32's own entries, and x86_64 calls x32 lacks.
    assert_eq!(Abi::X32.number("rt_sigaction"), x32(512));
    assert_eq!(Abi::X32.number("ioctl"), x32(514));
    assert_eq!(Abi::X32.number("execve"), x32(520));
    assert_eq!(Abi::X32.number("pwritev2"), x32(547));
    assert_eq!(Abi::X32.number("uselib"), None);
    assert_eq!(Abi::X32.number("chown32"), None);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn an_i386_call_gets_the_i386_rule() {
    let p = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["mkdir", "socketcall"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    assert_eq!(p.len(), 1, "{p:#?}");
    // i386 mkdir is 39; 83 is its symlink (and x86_64's mkdir).
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 39), errno(libc::EPERM));
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 83), ALLOW);
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 102), errno(libc::EPERM));
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 83), errno(libc::EPERM));
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 39), ALLOW);
    // x32 is not listed.
    let x32_mkdir = i64::from(X32_SYSCALL_BIT) | 83;
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, x32_mkdir), KILL_THREAD);

    // An allow list: what is listed is allowed with the i386 numbers.
    let p = compiled(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["read", "chown32", "arch_prctl"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    for abi in [Abi::I386, Abi::X86_64] {
        assert_eq!(verdict_of(&p, abi, "read"), ALLOW, "{abi:?}");
        assert_eq!(verdict_of(&p, abi, "arch_prctl"), ALLOW, "{abi:?}");
        assert_eq!(verdict_of(&p, abi, "write"), errno(libc::ENOSYS), "{abi:?}");
    }
    assert_eq!(verdict_of(&p, Abi::I386, "chown32"), ALLOW);
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 0), errno(libc::ENOSYS));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_calls_get_the_x32_rules() {
    let p = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X32"],
            "syscalls": [
              {"names": ["ioctl", "uselib"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
              {"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS",
               "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let x32 = |nr: i64| i64::from(X32_SYSCALL_BIT) | nr;
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, x32(514)), errno(1));
    // 16 is x86_64's ioctl, not x32's.
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, x32(16)), ALLOW);
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 16), errno(1));
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 134), errno(1), "uselib");
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, x32(134)), ALLOW);
    let data = |nr, fd| SeccompData {
        nr: nr as i32,
        arch: AUDIT_ARCH_X86_64,
        args: [fd, 0, 0, 0, 0, 0],
    };
    let kill = Some(libc::SECCOMP_RET_KILL_PROCESS);
    assert_eq!(stacked_action(&p, &data(x32(0), 7)), kill);
    assert_eq!(stacked_action(&p, &data(x32(0), 6)), Some(ALLOW));
    assert_eq!(stacked_action(&p, &data(0, 7)), kill);
    // The native ABI is filtered even though the list leaves it out; i386
    // is not listed.
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 54), KILL_THREAD);
}

#[test]
fn without_architectures_only_native_calls_pass() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#;
    let p = compiled(json);
    assert_eq!(p.len(), 1);
    let native = Abi::host().unwrap()[0];
    assert_eq!(verdict_of(&p, native, "getcwd"), errno(libc::EACCES));
    assert_eq!(verdict_of(&p, native, "read"), ALLOW);
    for foreign in [
        AUDIT_ARCH_I386,
        AUDIT_ARCH_ARM,
        AUDIT_ARCH_AARCH64,
        AUDIT_ARCH_X86_64,
    ] {
        if foreign != native.audit_arch() {
            assert_eq!(verdict(&p, foreign, 0), KILL_THREAD, "{foreign:#x}");
        }
    }
    if native == Abi::X86_64 {
        let x32_read = i64::from(X32_SYSCALL_BIT);
        assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, x32_read), KILL_THREAD);
    }
    // Listing only the native arch changes nothing.
    let listed = json.replacen(
        '{',
        &format!(r#"{{"architectures": ["{}"], "#, native.oci()),
        1,
    );
    assert_eq!(compiled(&listed), p);
}

/// Every x86_64 call name: the default filter of an allow list of all of
/// them needs more than one program for the three x86 ABIs.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_filter_too_large_for_one_program_is_split() {
    let names: Vec<&str> = syscalls::x86_64::Sysno::iter().map(|s| s.name()).collect();
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
        ],
    });
    let p = compile(&serde_json::from_value(profile).unwrap()).unwrap();
    let sizes: Vec<usize> = p.iter().map(|p| p.instructions.len()).collect();
    assert!(p.len() > 2, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= MAX_INSTRUCTIONS), "{sizes:?}");
    // Of the default filter's programs, the one with the native section
    // comes last; each says which ABIs it checks.
    let default: Vec<&str> = p
        .iter()
        .map(|p| p.summary.as_str())
        .filter(|s| s.starts_with("default"))
        .collect();
    assert!(default.len() > 1, "{default:?}");
    let (last, others) = default.split_last().unwrap();
    assert!(last.contains(", on SCMP_ARCH_X86_64"), "{default:?}");
    assert!(others
        .iter()
        .all(|s| s.contains(", on ") && !s.contains("X86_64")));
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        for name in &names {
            let Some(nr) = abi.number(name) else { continue };
            let want = if *name == "mkdir" { errno(18) } else { ALLOW };
            assert_eq!(verdict(&p, abi.audit_arch(), nr), want, "{abi:?} {name}");
        }
    }
    assert_eq!(verdict_of(&p, Abi::I386, "socketcall"), errno(libc::EPERM));
    assert_eq!(verdict(&p, AUDIT_ARCH_ARM, 3), KILL_THREAD);

    // The NOTIFY filter must be one program (one listener per process).
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}],
    });
    let mut profile: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let mut entries = profile.syscalls().clone().unwrap();
    let mut names = entries[0].names().clone();
    names.retain(|n| n != "write" && n != "sendmsg");
    entries[0].set_names(names);
    profile.set_syscalls(Some(entries));
    match compile(&profile) {
        Err(e @ SeccompError::NotifyTooLarge { .. }) => {
            assert!(e.to_string().contains("SCMP_ACT_NOTIFY"), "{e}")
        }
        other => panic!("{:?}", other.map(|p| p.len())),
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn notify_applies_to_every_listed_abi() {
    let p = compiled(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].listener);
    let notif = libc::SECCOMP_RET_USER_NOTIF;
    for abi in [Abi::X86_64, Abi::I386, Abi::X32] {
        assert_eq!(verdict_of(&p, abi, "mkdir"), notif, "{abi:?}");
        assert_eq!(verdict_of(&p, abi, "read"), ALLOW, "{abi:?}");
    }
}

/// Docker's and podman's default profile, as Docker hands it to a runtime
/// on this host: three ABIs on x86_64, each within the limit.
#[test]
fn docker_default_profile_compiles_for_every_listed_abi() {
    let path = docker_profile::DEFAULT_PATH;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}: this test needs Docker's default seccomp profile from Debian's golang-github-containers-common (scripts/test.sh installs it)")
    });
    let oci = docker_profile::to_oci(&serde_json::from_str(&text).unwrap());
    let profile: LinuxSeccomp = serde_json::from_value(oci).unwrap();
    let host = Abi::host().unwrap();
    let listed = profile.architectures().clone().unwrap();
    assert_eq!(arch::filtered(&listed, host), host.to_vec(), "{listed:?}");

    let start = std::time::Instant::now();
    let p = compile(&profile).unwrap();
    let took = start.elapsed();
    let sizes: Vec<(usize, &str)> = p
        .iter()
        .map(|p| (p.instructions.len(), p.summary.as_str()))
        .collect();
    eprintln!("Docker's default profile: {took:?} (debug build), programs {sizes:#?}");
    assert!(
        sizes.iter().all(|&(n, _)| n <= MAX_INSTRUCTIONS),
        "{sizes:?}"
    );
    let total: usize = p.iter().map(|p| p.instructions.len() + 4).sum();
    // The kernel's MAX_INSNS_PER_PATH for a whole stack of filters.
    assert!(total <= 32_768, "{total}");

    for &abi in host {
        assert_eq!(verdict_of(&p, abi, "read"), ALLOW, "{abi:?}");
        assert_eq!(verdict_of(&p, abi, "mkdirat"), ALLOW, "{abi:?}");
        // Not allowed without CAP_SYS_BOOT; x32 has its own number for it.
        let kexec = verdict_of(&p, abi, "kexec_load");
        assert_ne!(
            kexec & libc::SECCOMP_RET_ACTION_FULL,
            ALLOW,
            "{abi:?} kexec_load"
        );
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(verdict_of(&p, Abi::I386, "socketcall"), ALLOW);
        assert_eq!(verdict_of(&p, Abi::I386, "mkdir"), ALLOW);
    }
    assert_eq!(verdict(&p, 0x8000_0016, 0), KILL_THREAD, "s390x");
}
