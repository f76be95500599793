//! The generated device programs run in a small eBPF interpreter (only the
//! instructions `program` emits, with the verifier's basic checks) over
//! tables of device accesses, and their answers are compared with a plain
//! evaluation of the same rules. One test, as root, attaches programs to a
//! real cgroup2 directory and opens devices from a process inside it.

use super::*;

const ACCESSES: [u32; 7] = [1, 2, 3, 4, 5, 6, 7];

fn rule(
    allow: bool,
    kind: char,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.into(),
    }
}

fn parse(line: &str) -> DeviceRule {
    // "allow c 1:3 rwm" / "deny a *:* rwm"
    let f: Vec<&str> = line.split([' ', ':']).collect();
    let num = |s: &str| (s != "*").then(|| s.parse().unwrap());
    rule(
        f[0] == "allow",
        f[1].chars().next().unwrap(),
        num(f[2]),
        num(f[3]),
        f[4],
    )
}

fn rules(lines: &[&str]) -> Vec<DeviceRule> {
    lines.iter().map(|l| parse(l)).collect()
}

/// Runs `prog` on `struct bpf_cgroup_dev_ctx`. Panics on what the kernel's
/// verifier would refuse: a read of an unset register, a context read
/// other than an aligned u32 field, a jump out of the program or backwards,
/// falling off the end.
fn run(prog: &[Insn], ctx: [u32; 3]) -> u64 {
    let mut regs: [Option<u64>; 11] = [None; 11];
    regs[1] = Some(u64::MAX); // the context pointer: only loads may use it
    let mut pc = 0;
    loop {
        let at = pc;
        let insn = prog.get(at).expect("ran off the end of the program");
        pc += 1;
        let (dst, src) = (usize::from(insn.dst()), usize::from(insn.src()));
        let k32 = u32::from_ne_bytes(insn.imm.to_ne_bytes());
        let k64 = i64::from(insn.imm) as u64; // sign-extended, as the kernel does
        let get = |r: usize| regs[r].unwrap_or_else(|| panic!("pc {at}: r{r} read before set"));
        let mut jump = |taken: bool| {
            if taken {
                assert!(insn.off >= 0, "backward jump at pc {at}");
                pc += insn.off as usize;
                assert!(pc < prog.len(), "jump out of the program");
            }
        };
        match insn.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "load from something else than the context");
                assert_eq!(
                    regs[1],
                    Some(u64::MAX),
                    "the context pointer was overwritten"
                );
                assert!(matches!(insn.off, 0 | 4 | 8), "context offset {}", insn.off);
                regs[dst] = Some(u64::from(ctx[insn.off as usize / 4]));
            }
            ALU32_AND_K => regs[dst] = Some(u64::from(get(dst) as u32 & k32)),
            ALU32_RSH_K => regs[dst] = Some(u64::from((get(dst) as u32) >> k32)),
            ALU32_MOV_K => regs[dst] = Some(u64::from(k32)),
            ALU32_MOV_X => regs[dst] = Some(u64::from(get(src) as u32)),
            JMP_JEQ_K => jump(get(dst) == k64),
            JMP_JNE_K => jump(get(dst) != k64),
            JMP_JNE_X => jump(get(dst) != get(src)),
            JMP_EXIT => return get(0),
            code => panic!("unexpected opcode {code:#x} at pc {at}"),
        }
    }
}

/// The rules read plainly: deny all, then for each access bit the last
/// rule matching the device and naming the bit decides; an `a` rule sets
/// every bit.
fn reference(rules: &[DeviceRule], kind: char, major: u32, minor: u32, access: u32) -> bool {
    let mut allowed = [false; 3]; // m, r, w
    for r in rules {
        if r.kind == 'a' {
            allowed = [r.allow; 3];
            continue;
        }
        let hits = |n: Option<i64>, v: u32| n.is_none_or(|n| n == i64::from(v));
        if r.kind != kind || !hits(r.major, major) || !hits(r.minor, minor) {
            continue;
        }
        for (bit, c) in "mrw".chars().enumerate() {
            if r.access.contains(c) {
                allowed[bit] = r.allow;
            }
        }
    }
    (0..3).all(|bit| access & (1 << bit) == 0 || allowed[bit])
}

fn allows(prog: &[Insn], kind: char, major: u32, minor: u32, access: u32) -> bool {
    let t = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
    match run(prog, [(access << 16) | t, major, minor]) {
        0 => false,
        1 => true,
        other => panic!("the program returned {other}"),
    }
}

/// Compares program and reference on every (type, major, minor, access)
/// from the given numbers.
fn check(rules: &[DeviceRule], majors: &[u32], minors: &[u32]) {
    let prog = program(rules).unwrap();
    for kind in ['b', 'c'] {
        for &major in majors {
            for &minor in minors {
                for access in ACCESSES {
                    assert_eq!(
                        allows(&prog, kind, major, minor, access),
                        reference(rules, kind, major, minor, access),
                        "{kind} {major}:{minor} access {access:#b} with rules {:?}",
                        rules.iter().map(rule_line).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
}

const MAJORS: &[u32] = &[0, 1, 4, 5, 7, 8, 10, 136, 3_000_000_000, u32::MAX];
const MINORS: &[u32] = &[0, 1, 2, 3, 5, 7, 9, 200, 2_200_000_000, u32::MAX];

fn with_defaults(lines: &[&str]) -> Vec<DeviceRule> {
    let mut r = rules(lines);
    r.extend(crate::cgroups::devices::default_allowed());
    r
}

#[test]
fn the_default_config_allows_only_the_default_devices() {
    // What `capsa spec` writes: deny everything.
    let rules = with_defaults(&["deny a *:* rwm"]);
    check(&rules, MAJORS, MINORS);
    let prog = program(&rules).unwrap();
    let rw = ACC_READ | ACC_WRITE;
    assert!(allows(&prog, 'c', 1, 3, rw)); // /dev/null
    assert!(allows(&prog, 'c', 1, 7, ACC_READ)); // /dev/full
    assert!(allows(&prog, 'c', 136, 4, rw | ACC_MKNOD)); // a pty
    assert!(!allows(&prog, 'b', 7, 0, ACC_READ)); // loop0
    assert!(!allows(&prog, 'b', 1, 3, ACC_READ)); // a block device 1:3
    assert!(!allows(&prog, 'c', 10, 200, ACC_READ)); // tun
}

#[test]
fn an_a_rule_resets_everything_before_it() {
    // runc's "weird" case: 8:1 allowed, 8:2 not.
    let weird = rules(&["deny b 8:1 rwm", "allow a *:* rwm", "deny b 8:2 rwm"]);
    check(&weird, MAJORS, MINORS);
    let prog = program(&weird).unwrap();
    assert!(allows(&prog, 'b', 8, 1, ACC_READ));
    assert!(!allows(&prog, 'b', 8, 2, ACC_READ));
    // Only the rule after the last `a` is in the program.
    assert_eq!(prog.len(), 6 + 8 + 2);

    check(&rules(&["allow a *:* rwm"]), MAJORS, MINORS);
    check(&rules(&["allow a *:* r", "deny a 1:3 m"]), MAJORS, MINORS);
    assert_eq!(program(&[]).unwrap().len(), 8); // deny all
}

#[test]
fn each_access_is_decided_by_the_last_rule_naming_it() {
    let rules = rules(&[
        "allow c 1:3 r",
        "allow c 1:3 w", // with the one above: rw
        "allow c *:* m", // mknod of any char device
        "deny c 1:* m",  // but not of major 1
        "allow b 8:* rw",
        "deny b 8:0 r", // 8:0 write-only
        "allow c 10:* rwm",
        "deny c 10:200 w", // O_RDWR on tun is refused, O_RDONLY is not
        "allow c 3000000000:5 rw",
        "allow c 7:2200000000 r",
        "deny c 3000000000:* w",
    ]);
    check(&rules, MAJORS, MINORS);
    let prog = program(&rules).unwrap();
    assert!(allows(&prog, 'c', 1, 3, ACC_READ | ACC_WRITE));
    assert!(!allows(&prog, 'c', 1, 3, ACC_MKNOD));
    assert!(allows(&prog, 'c', 4, 0, ACC_MKNOD));
    assert!(allows(&prog, 'b', 8, 0, ACC_WRITE));
    assert!(!allows(&prog, 'b', 8, 0, ACC_READ | ACC_WRITE));
    assert!(allows(&prog, 'c', 10, 200, ACC_READ));
    assert!(!allows(&prog, 'c', 10, 200, ACC_READ | ACC_WRITE));
    assert!(allows(&prog, 'c', 3_000_000_000, 5, ACC_READ));
    assert!(!allows(&prog, 'c', 3_000_000_000, 5, ACC_WRITE));
    assert!(allows(&prog, 'c', 7, 2_200_000_000, ACC_READ));
}

#[test]
fn random_rule_lists_agree_with_the_reference() {
    // A small deterministic generator (xorshift) over a small space of
    // numbers, so that rules often overlap.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn number(&mut self, numbers: &[u32]) -> Option<i64> {
            (self.next(3) != 0)
                .then(|| i64::from(numbers[self.next(numbers.len() as u64) as usize]))
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let numbers = [0u32, 1, 2, 3, 3_000_000_000];
    for _ in 0..300 {
        let count = rng.next(8);
        let list: Vec<DeviceRule> = (0..count)
            .map(|_| {
                let access: String = "rwm".chars().filter(|_| rng.next(2) == 0).collect();
                DeviceRule {
                    allow: rng.next(2) == 0,
                    kind: ['a', 'b', 'c', 'c', 'b'][rng.next(5) as usize],
                    major: rng.number(&numbers),
                    minor: rng.number(&numbers),
                    access: if access.is_empty() {
                        "r".into()
                    } else {
                        access
                    },
                }
            })
            .collect();
        check(&list, &numbers, &numbers);
    }
}

#[test]
fn numbers_that_are_not_device_numbers_are_refused() {
    for line in ["allow c -1:3 rwm", "deny b 1:4294967296 r"] {
        let err = program(&rules(&[line])).unwrap_err().to_string();
        assert!(
            err.contains("linux.resources.devices") && err.contains("not a device number"),
            "{err}"
        );
    }
}

#[test]
fn instructions_encode_as_the_kernel_reads_them() {
    let insn = Insn::new(JMP_JNE_X, R_MAJOR, R1, 3, -1);
    assert_eq!((insn.dst(), insn.src(), insn.off, insn.imm), (4, 1, 3, -1));
    assert_eq!(std::mem::size_of::<Insn>(), 8);
}

// ---- on the real kernel ------------------------------------------------------

mod real {
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    /// A cgroup2 mount point: /sys/fs/cgroup on a pure v2 host, or the
    /// unified hierarchy of a hybrid one.
    fn cgroup2_root() -> PathBuf {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        mounts
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && f[2] == "cgroup2")
            .map(|f| PathBuf::from(f[1]))
            .expect("no cgroup2 filesystem is mounted")
    }

    /// Removes the test cgroup (which detaches its programs) even when an
    /// assertion fails.
    struct TestCgroup(PathBuf);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// Runs `script` with sh in the cgroup `dir`: the shell waits on its
    /// stdin until it has been moved there, so it opens nothing before.
    fn run_in(dir: &Path, script: &str) -> (String, String) {
        let mut child = Command::new("sh")
            .args(["-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn attached(dir: &Path) -> bpf::Attached {
        let fd = File::open(dir).unwrap();
        bpf::prog_query_cgroup_device(fd.as_fd()).unwrap()
    }

    const SCRIPT: &str = "head -c1 /dev/null && echo null-ok; \
                          head -c1 /dev/full >/dev/null && echo full-ok";

    #[test]
    #[ignore = "needs root and cgroup v2"]
    fn a_program_on_a_real_cgroup_refuses_and_allows_opens() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "this test needs root"
        );
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = cgroup2_root().join(format!("capsa-bpf-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let cg = TestCgroup(dir.clone());

        // /dev/null only: /dev/full (c 1:7) is refused.
        apply(&cg.0, &rules(&["deny a *:* rwm", "allow c 1:3 rwm"])).unwrap();
        let (out, err) = run_in(&cg.0, SCRIPT);
        assert_eq!(out, "null-ok\n", "stderr: {err}");
        assert!(
            err.contains("/dev/full") && err.contains("Operation not permitted"),
            "{err}"
        );
        let first = attached(&cg.0);
        assert_eq!((first.mode, first.ids.len()), (bpf::BPF_F_ALLOW_MULTI, 1));

        // An update: the new program replaces the old one.
        apply(
            &cg.0,
            &rules(&["deny a *:* rwm", "allow c 1:3 rwm", "allow c 1:7 r"]),
        )
        .unwrap();
        let second = attached(&cg.0);
        assert_eq!(second.ids.len(), 1, "{second:?}");
        assert_ne!(second.ids, first.ids);
        let (out, err) = run_in(&cg.0, SCRIPT);
        assert_eq!(out, "null-ok\nfull-ok\n", "stderr: {err}");

        // The container's own defaults: write access to /dev/full too, and
        // nothing else (mknod of a block device is refused).
        let mut defaults = rules(&["deny a *:* rwm"]);
        defaults.extend(crate::cgroups::devices::default_allowed());
        apply(&cg.0, &defaults).unwrap();
        let script = format!(
            "echo x >/dev/full; echo \"full:$?\"; mknod {0}/blk b 7 0; echo \"mknod:$?\"; rm -f {0}/blk",
            std::env::temp_dir().display()
        );
        let (out, err) = run_in(&cg.0, &script);
        assert!(out.contains("mknod:1"), "stdout: {out}, stderr: {err}");
        assert!(err.contains("blk: Operation not permitted"), "{err}");
        // /dev/full opened for writing (the write itself fails: ENOSPC).
        assert!(!err.contains("/dev/full"), "{err}");
        assert_eq!(attached(&cg.0).ids.len(), 1);
    }

    #[test]
    #[ignore = "needs root and cgroup v2"]
    fn a_refused_program_reports_the_verifier_log() {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "this test needs root"
        );
        // No exit: the verifier refuses it.
        let err = load(&[insn(ALU32_MOV_K, R0, 0, 1)]).unwrap_err();
        assert!(err.to_string().contains("verifier log"), "{err}");
    }
}
