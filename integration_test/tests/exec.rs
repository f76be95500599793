//! `exec`: a process in a running container, as runc users, containerd (`--process FILE
//! --detach --pid-file`), conmon and CRI-O (foreground, exit status = the process's)
//! drive it. Every test passes against runc 1.1.5 (the oracle) except for assertions
//! guarded by `runc_deviates` or `capsa_only`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capsa_integration_test::{
    cgroup_dirs, ns_of, pid_alive, proc_cgroups, read_pid_file, runtime, state_pid, wait_for_file,
    wait_until, Bundle, CmdOutput, Ctx, CONTAINER_PATH, DEFAULT_TIMEOUT,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// CAP_NET_ADMIN's bit in the capability sets.
const CAP_NET_ADMIN: u32 = 12;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A bundle whose process is `sleep 1000`.
fn sleeper(ctx: &Ctx, prefix: &str) -> (String, Bundle) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    b.args(&["sleep", "1000"]);
    (id, b)
}

/// A running `sleep 1000` container: its id, bundle and init pid.
fn running(ctx: &Ctx, prefix: &str) -> (String, Bundle, u32) {
    let (id, b) = sleeper(ctx, prefix);
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));
    (id, b, pid)
}

/// `exec <id> <args...>` in the foreground.
fn exec(ctx: &Ctx, id: &str, args: &[&str]) -> CmdOutput {
    exec_with(ctx, &[], id, args)
}

/// `exec <flags...> <id> <args...>` in the foreground.
fn exec_with(ctx: &Ctx, flags: &[&str], id: &str, args: &[&str]) -> CmdOutput {
    let mut full = vec!["exec"];
    full.extend_from_slice(flags);
    full.push(id);
    full.extend_from_slice(args);
    ctx.cmd(&full)
}

/// `exec <flags...> <id> sh -c <script>` in the foreground.
fn exec_sh(ctx: &Ctx, id: &str, flags: &[&str], script: &str) -> CmdOutput {
    exec_with(ctx, flags, id, &["sh", "-c", script])
}

/// A foreground exec that must succeed with nothing on stderr; returns its stdout.
fn exec_ok(ctx: &Ctx, id: &str, flags: &[&str], script: &str) -> String {
    let out = exec_sh(ctx, id, flags, script);
    out.assert_success();
    assert!(out.stderr.is_empty(), "exec wrote to stderr:\n{out}");
    out.stdout
}

/// The value of `key=` on a line of `text` (`None` when absent).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
}

/// The pids in the container's cgroup, over every hierarchy.
fn cgroup_procs(b: &Bundle) -> BTreeSet<u32> {
    cgroup_dirs(b.cgroup_path())
        .into_iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Waits until the container's cgroup holds only its init (a finished or failed exec
/// leaves nothing running).
fn assert_only_init_runs(b: &Bundle, init: u32) {
    let want = BTreeSet::from([init]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = cgroup_procs(b);
    while now != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        now = cgroup_procs(b);
    }
    assert_eq!(
        now, want,
        "the container's cgroup should hold only the init {init}"
    );
}

/// One capability bit of a `Cap*:` line of /proc/<pid>/status text.
fn cap_bit(status: &str, set: &str, bit: u32) -> bool {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{set}:")))
        .unwrap_or_else(|| panic!("no {set} line in:\n{status}"))
        .trim();
    let mask = u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{set} {hex:?}: {e}"));
    mask & (1 << bit) != 0
}

/// Runs `sh -c script sh args...` with stdin from /dev/null, stdout and stderr into
/// files (not pipes: a leftover process would hold a pipe open), within the default
/// timeout.
fn shell(script: &str, args: &[&str]) -> CmdOutput {
    let describe = format!("`sh -c {script:?} sh {}`", args.join(" "));
    let mut out_file = tempfile::tempfile().expect("tempfile");
    let mut err_file = tempfile::tempfile().expect("tempfile");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().expect("dup"))
        .stderr(err_file.try_clone().expect("dup"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {describe}: {e}"));
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for sh") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{describe} did not finish within {DEFAULT_TIMEOUT:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read_all = |f: &mut File| {
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        f.read_to_end(&mut buf).expect("read output");
        String::from_utf8_lossy(&buf).into_owned()
    };
    CmdOutput {
        command: describe,
        status,
        stdout: read_all(&mut out_file),
        stderr: read_all(&mut err_file),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("path is UTF-8")
}

/// `delete --force`, then nothing of the container may remain.
fn finish(ctx: &Ctx, id: &str, b: &Bundle) {
    ctx.delete_force(id).assert_silent_success();
    ctx.assert_nothing_left(id, b);
}

// ---------------------------------------------------------------------------------------
// Output and exit status
// ---------------------------------------------------------------------------------------

#[test]
fn exec_prints_output_and_exits_with_the_process_status() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-status");

    let out = exec(&ctx, &id, &["echo", "hello", "from exec"]);
    out.assert_success();
    assert_eq!(out.stdout, "hello from exec\n", "{out}");
    assert!(out.stderr.is_empty(), "{out}");

    // The process's stderr is the runtime's stderr.
    let out = exec_sh(&ctx, &id, &[], "echo to-stderr >&2; exit 7");
    assert_eq!(
        out.code(),
        Some(7),
        "exec must exit with the process's status:\n{out}"
    );
    assert_eq!(out.stderr, "to-stderr\n", "{out}");

    let out = exec_sh(&ctx, &id, &[], "kill -9 $$");
    assert_eq!(
        out.code(),
        Some(128 + 9),
        "a process killed by SIGKILL gives exit status 128+9:\n{out}"
    );

    assert_only_init_runs(&b, init);
    assert_eq!(ctx.status(&id), "running");
    finish(&ctx, &id, &b);
}

// ---------------------------------------------------------------------------------------
// What the process gets: --process, -e, --cwd, -u, -g, --cap, --no-new-privs
// ---------------------------------------------------------------------------------------

#[test]
fn exec_process_file_gives_args_env_cwd_and_user() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-procfile");
    let process = json!({
        "terminal": false,
        "user": { "uid": 1000, "gid": 1000, "additionalGids": [5] },
        "args": ["sh", "-c",
                 "echo args=$0:$1; echo foo=$FOO; echo cwd=$(pwd); echo uid=$(id -u); \
                  echo gid=$(id -g); echo groups=$(id -G)", "first", "second"],
        "env": [format!("PATH={CONTAINER_PATH}"), "FOO=from-the-file", b.marker_env()],
        "cwd": "/tmp",
        "noNewPrivileges": true
    });
    let file = ctx.base().join("process.json");
    fs::write(&file, process.to_string()).expect("write process.json");

    let out = ctx.cmd(&["exec", "--process", path_str(&file), &id]);
    out.assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    let text = &out.stdout;
    assert_eq!(field(text, "args"), Some("first:second"), "{out}");
    assert_eq!(field(text, "foo"), Some("from-the-file"), "{out}");
    assert_eq!(field(text, "cwd"), Some("/tmp"), "{out}");
    assert_eq!(field(text, "uid"), Some("1000"), "{out}");
    assert_eq!(field(text, "gid"), Some("1000"), "{out}");
    let groups: BTreeSet<&str> = field(text, "groups")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(groups.contains("5"), "additionalGids 5 missing:\n{out}");

    // containerd's form: --process with --detach and --pid-file.
    let pid_file = ctx.base().join("exec.pid");
    let mut detached = process.clone();
    detached["args"] = json!(["sleep", "1000"]);
    fs::write(&file, detached.to_string()).expect("write process.json");
    ctx.cmd(&[
        "exec",
        "--process",
        path_str(&file),
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the detached process {pid} is not running");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("1000")),
        "the --process user is not applied:\n{status}"
    );
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    finish(&ctx, &id, &b);
    assert!(
        !pid_alive(pid),
        "delete --force left the exec'd process {pid}"
    );
}

#[test]
fn exec_env_cwd_user_and_groups_flags() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-flags");

    // -e adds a variable and replaces one of the container's; the rest of the container's
    // environment stays.
    let text = exec_ok(
        &ctx,
        &id,
        &["-e", "FOO=bar", "-e", "PATH=/bin"],
        "echo foo=$FOO; echo path=$PATH; echo marker=$CAPSA_TEST_MARKER",
    );
    assert_eq!(field(&text, "foo"), Some("bar"), "{text}");
    assert_eq!(field(&text, "path"), Some("/bin"), "{text}");
    assert_eq!(field(&text, "marker"), Some(b.marker()), "{text}");

    // Default: the container's cwd and user.
    let text = exec_ok(&ctx, &id, &[], "echo cwd=$(pwd); echo id=$(id -u):$(id -g)");
    assert_eq!(field(&text, "cwd"), Some("/"), "{text}");
    assert_eq!(field(&text, "id"), Some("0:0"), "{text}");

    let text = exec_ok(&ctx, &id, &["--cwd", "/tmp"], "echo cwd=$(pwd)");
    assert_eq!(field(&text, "cwd"), Some("/tmp"), "{text}");

    let text = exec_ok(
        &ctx,
        &id,
        &["-u", "1000:1000", "-g", "5", "-g", "6"],
        "echo id=$(id -u):$(id -g); echo groups=$(id -G)",
    );
    assert_eq!(field(&text, "id"), Some("1000:1000"), "{text}");
    let groups: BTreeSet<&str> = field(&text, "groups")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        groups.contains("5") && groups.contains("6"),
        "-g 5 -g 6 should be supplementary groups:\n{text}"
    );

    // -u uid alone.
    let text = exec_ok(&ctx, &id, &["--user", "1000"], "echo uid=$(id -u)");
    assert_eq!(field(&text, "uid"), Some("1000"), "{text}");

    finish(&ctx, &id, &b);
}

#[test]
fn exec_cap_adds_a_capability() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-cap");

    let plain = exec(&ctx, &id, &["cat", "/proc/self/status"]);
    plain.assert_success();
    assert!(
        !cap_bit(&plain.stdout, "CapEff", CAP_NET_ADMIN),
        "the container's process has no CAP_NET_ADMIN, nor should a plain exec:\n{plain}"
    );

    let out = exec_with(
        &ctx,
        &["--cap", "CAP_NET_ADMIN"],
        &id,
        &["cat", "/proc/self/status"],
    );
    out.assert_success();
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            cap_bit(&out.stdout, set, CAP_NET_ADMIN),
            "--cap CAP_NET_ADMIN should be in {set}:\n{out}"
        );
    }
    // What the default config grants stays (CAP_KILL is bit 5).
    assert!(cap_bit(&out.stdout, "CapEff", 5), "{out}");

    finish(&ctx, &id, &b);
}

#[test]
fn exec_no_new_privs_flag() {
    let ctx = Ctx::new();
    let (id, mut b) = sleeper(&ctx, "exec-nnp");
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    ctx.create_and_start(&b, &id);

    let nnp = |flags: &[&str]| {
        let out = exec_with(
            &ctx,
            flags,
            &id,
            &["grep", "NoNewPrivs", "/proc/self/status"],
        );
        out.assert_success();
        out.stdout
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no NoNewPrivs line:\n{out}"))
            .to_string()
    };
    assert_eq!(
        nnp(&[]),
        "0",
        "the container has noNewPrivileges false, so a plain exec has no_new_privs off"
    );
    assert_eq!(nnp(&["--no-new-privs"]), "1", "--no-new-privs sets it");

    finish(&ctx, &id, &b);
}

// ---------------------------------------------------------------------------------------
// Namespaces, cgroup, --detach and the pid file
// ---------------------------------------------------------------------------------------

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-ns");

    // The pid namespace, from inside: the container's sleep is pid 1, we are not.
    let text = exec_ok(&ctx, &id, &[], "echo self=$$; ps");
    let self_pid: u32 = field(&text, "self")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no self= line:\n{text}"));
    assert!(self_pid > 1, "the exec'd process cannot be pid 1:\n{text}");
    assert!(
        text.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("1") && l.contains("sleep 1000")
        }),
        "ps in the exec'd process should show the container's `sleep 1000` as pid 1:\n{text}"
    );

    // From the host: a detached process shares every namespace and the cgroup of the init.
    let pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "sleep",
        "1000",
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the detached process {pid} is not running");
    let (p, i) = (pid.to_string(), init.to_string());
    for ns in ["pid", "net", "uts", "ipc", "mnt", "cgroup"] {
        assert_eq!(
            ns_of(&p, ns),
            ns_of(&i, ns),
            "the exec'd process {pid} is not in the init's {ns} namespace"
        );
    }
    assert_ne!(
        ns_of(&p, "pid"),
        ns_of("self", "pid"),
        "the exec'd process is in the host's pid namespace"
    );
    assert_eq!(
        proc_cgroups(pid),
        proc_cgroups(init),
        "the exec'd process is not in the init's cgroups"
    );
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    finish(&ctx, &id, &b);
}

#[test]
fn exec_detach_returns_at_once_and_writes_the_pid_file() {
    let ctx = Ctx::new();
    let (id, mut b) = sleeper(&ctx, "exec-detach");
    let out_dir = b.with_out_dir();
    ctx.create_and_start(&b, &id);
    let init = state_pid(&ctx.state(&id));

    let pid_file = ctx.base().join("exec.pid");
    let started = Instant::now();
    let out = exec_sh(
        &ctx,
        &id,
        &["--detach", "--pid-file", path_str(&pid_file)],
        "sleep 2; echo $$ > /out/done",
    );
    let took = started.elapsed();
    out.assert_silent_success();
    assert!(
        took < Duration::from_millis(1500),
        "exec --detach must return once the process started, not when it ends (took {took:?})"
    );
    let pid = read_pid_file(&pid_file);
    assert!(
        pid_alive(pid),
        "the pid file names {pid}, which is not running"
    );
    assert_eq!(
        ns_of(&pid.to_string(), "pid"),
        ns_of(&init.to_string(), "pid"),
        "the detached process is not in the container"
    );
    assert!(
        !out_dir.join("done").exists(),
        "the process finished before exec returned"
    );

    // The caller waits for it by polling /proc.
    wait_until("the detached exec'd process to end", WAIT, || {
        !pid_alive(pid)
    });
    wait_for_file(&out_dir.join("done"), WAIT);
    let inner_pid = fs::read_to_string(out_dir.join("done")).expect("read done");
    assert!(
        inner_pid.trim().parse::<u32>().is_ok_and(|p| p > 1),
        "the process ran in the container's pid namespace: {inner_pid:?}"
    );
    assert_only_init_runs(&b, init);
    assert_eq!(ctx.status(&id), "running");
    finish(&ctx, &id, &b);
}

// ---------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------

#[test]
fn exec_of_a_missing_program_fails_with_one_line() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-nosuch");

    let out = exec(&ctx, &id, &["nosuchcmd"]);
    out.assert_error_mentions("executable file not found in $PATH");
    assert_only_init_runs(&b, init);

    // Detached, as containerd and conmon run it: no pid file on failure.
    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "nosuchcmd",
    ]);
    out.assert_error_mentions("executable file not found in $PATH");
    assert!(!pid_file.exists(), "a failed exec wrote the pid file");
    assert_only_init_runs(&b, init);

    assert_eq!(ctx.status(&id), "running");
    finish(&ctx, &id, &b);
}

#[test]
fn exec_into_a_stopped_container_fails() {
    let ctx = Ctx::new();
    let (id, b) = ctx.id_and_bundle("exec-stopped");
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");

    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "true",
    ]);
    let line = out.assert_error_line().to_lowercase();
    assert!(
        line.contains("stopped") || line.contains("not running"),
        "the error should say the container is stopped / not running:\n{out}"
    );
    assert!(!pid_file.exists(), "a failed exec wrote the pid file");
    assert_eq!(ctx.status(&id), "stopped");

    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn exec_into_an_unknown_container_fails() {
    let ctx = Ctx::new();
    let id = ctx.new_id("exec-unknown");
    let out = exec(&ctx, &id, &["true"]);
    out.assert_error_mentions("does not exist");
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

// ---------------------------------------------------------------------------------------
// File descriptors
// ---------------------------------------------------------------------------------------

/// The entries of `ls /proc/self/fd` output.
fn fd_list(text: &str) -> BTreeSet<u32> {
    text.split_whitespace()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("not an fd number {f:?} in {text:?}"))
        })
        .collect()
}

#[test]
fn exec_leaks_no_fds_into_the_process() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-fds");

    let out = exec(&ctx, &id, &["ls", "/proc/self/fd"]);
    out.assert_success();
    let fds = fd_list(&out.stdout);
    // 0, 1, 2 and the directory ls itself opened.
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2])) && fds.len() <= 4,
        "the exec'd process should have only fds 0 1 2 (and the one ls opens), got {fds:?}:\n{out}"
    );
    // The runtime's own descriptors (sockets, the state dir, the binary) did not leak.
    // (0 1 2 may be pipes: runc relays a foreground process's stdio through pipes.)
    let out = exec(&ctx, &id, &["ls", "-l", "/proc/self/fd"]);
    out.assert_success();
    for word in ["socket:", "anon_inode:", "/run/", "capsa", "runc"] {
        assert!(
            !out.stdout.contains(word),
            "an fd of the runtime leaked into the exec'd process ({word}):\n{out}"
        );
    }

    finish(&ctx, &id, &b);
}

#[test]
fn exec_preserve_fds_passes_fd_3() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-preserve");
    let extra = ctx.base().join("extra-fd.txt");
    fs::write(&extra, "content-of-fd-3\n").expect("write the extra fd's file");

    let script = "exec 3<\"$4\"; \
                  exec \"$1\" --root \"$2\" exec --preserve-fds 1 \"$3\" \
                  sh -c 'ls /proc/self/fd; echo ---; cat <&3'";
    let rt = runtime();
    let out = shell(
        script,
        &[
            path_str(rt.path()),
            path_str(ctx.root()),
            &id,
            path_str(&extra),
        ],
    );
    out.assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    let (list, content) = out
        .stdout
        .split_once("---\n")
        .unwrap_or_else(|| panic!("no --- separator:\n{out}"));
    let fds = fd_list(list);
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2, 3])) && fds.len() <= 5,
        "with --preserve-fds 1 the process should have fds 0 1 2 3 (and the one ls \
         opens), got {fds:?}:\n{out}"
    );
    assert_eq!(
        content, "content-of-fd-3\n",
        "fd 3 should read the file:\n{out}"
    );

    // Without --preserve-fds the inherited fd 3 is not passed on.
    let script = "exec 3<\"$4\"; exec \"$1\" --root \"$2\" exec \"$3\" ls /proc/self/fd";
    let out = shell(
        script,
        &[
            path_str(rt.path()),
            path_str(ctx.root()),
            &id,
            path_str(&extra),
        ],
    );
    out.assert_success();
    let fds = fd_list(&out.stdout);
    assert!(
        fds.len() <= 4,
        "without --preserve-fds an inherited fd 3 must not reach the process, got {fds:?}:\n{out}"
    );

    finish(&ctx, &id, &b);
}

// ---------------------------------------------------------------------------------------
// delete --force
// ---------------------------------------------------------------------------------------

#[test]
fn delete_force_kills_exec_processes_too() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-delete");

    let pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "sleep",
        "1000",
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the exec'd process {pid} is not running");
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    ctx.delete_force(&id).assert_silent_success();
    wait_until("the exec'd process to die", WAIT, || !pid_alive(pid));
    assert!(!pid_alive(init), "delete --force left the init {init}");
    ctx.assert_nothing_left(&id, &b);
}

/// `exec --cgroup sub`: the process runs in an existing sub-cgroup of the
/// container's cgroup (runc's flag; `controller:path` limits it to one v1
/// controller).
#[test]
fn exec_into_a_sub_cgroup() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("execcg");
    b.sh("exec sleep 1000");
    ctx.create_and_start(&b, &id);
    let init = ctx.state(&id)["pid"].as_i64().expect("pid");
    // The container's cgroup as the host sees it, in every hierarchy.
    let own = std::fs::read_to_string(format!("/proc/{init}/cgroup")).expect("init's cgroup");
    let mut made = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let mount = if ctrl.is_empty() {
            "/sys/fs/cgroup/unified".to_string()
        } else {
            format!("/sys/fs/cgroup/{}", ctrl.trim_start_matches("name="))
        };
        let dir = std::path::Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("sub");
        if std::fs::create_dir_all(&dir).is_ok() {
            // A new v1 cpuset cgroup takes no task until it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(dir.parent().expect("parent").join(f)) {
                    let _ = std::fs::write(dir.join(f), v.trim());
                }
            }
            made.push(dir);
        }
    }
    let out = ctx.cmd(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    out.assert_success();
    assert!(
        out.stdout.lines().any(|l| l.ends_with("/sub")),
        "not in the sub-cgroup:\n{out}"
    );
    ctx.delete_force(&id).assert_silent_success();
    for dir in made.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    ctx.assert_nothing_left(&id, &b);
}
