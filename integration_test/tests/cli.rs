//! The command line as containerd (go-runc), conmon/podman and CRI-O use it: `--version`,
//! `features`, `spec`, the `--log` file, Go-`flag` spellings, refused options, racing
//! creates and the default state root. Every test passes against runc 1.1.5 (the oracle)
//! except for assertions guarded by `runc_deviates` or `capsa_only`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use capsa_integration_test::{
    capsa_only, loud, pid_alive, read_pid_file, runc_deviates, runtime, state_pid, Bundle,
    CmdOutput, Ctx, DEFAULT_TIMEOUT,
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs the runtime with exactly `args` (no `--root` added), in `cwd` if given.
///
/// Output goes to anonymous files, not pipes: a container made by `create` inherits the
/// runtime's stdio and would hold a pipe open.
fn raw(args: &[&str], cwd: Option<&Path>) -> CmdOutput {
    let rt = runtime();
    let describe = format!("`{} {}`", rt.path().display(), args.join(" "));
    let mut out_file = tempfile::tempfile().expect("tempfile");
    let mut err_file = tempfile::tempfile().expect("tempfile");
    let mut cmd = Command::new(rt.path());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().expect("dup"))
        .stderr(err_file.try_clone().expect("dup"));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {describe}: {e}"));
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the runtime") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{describe} did not finish within {DEFAULT_TIMEOUT:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    CmdOutput {
        command: describe,
        status,
        stdout: read_all(&mut out_file),
        stderr: read_all(&mut err_file),
    }
}

fn read_all(f: &mut File) -> String {
    let mut buf = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.read_to_end(&mut buf).expect("read output");
    String::from_utf8_lossy(&buf).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("path is UTF-8")
}

/// `count` ASCII digits at the start of `s`, and the rest.
fn digits(s: &str, count: usize) -> Option<(u32, &str)> {
    let head = s.get(..count)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[count..]))
}

/// True for an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z`
/// or `+HH:MM` / `-HH:MM` (what Go's `time.Parse(time.RFC3339, …)` accepts).
fn is_rfc3339(s: &str) -> bool {
    fn parse(s: &str) -> Option<()> {
        let (_year, s) = digits(s, 4)?;
        let s = s.strip_prefix('-')?;
        let (month, s) = digits(s, 2)?;
        let s = s.strip_prefix('-')?;
        let (day, s) = digits(s, 2)?;
        let s = s.strip_prefix('T')?;
        let (hour, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (min, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (sec, mut s) = digits(s, 2)?;
        if !((1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && min < 60
            && sec <= 60)
        {
            return None;
        }
        if let Some(frac) = s.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            s = &frac[n..];
        }
        if s == "Z" {
            return Some(());
        }
        let s = s.strip_prefix('+').or_else(|| s.strip_prefix('-'))?;
        let (oh, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (om, s) = digits(s, 2)?;
        (s.is_empty() && oh < 24 && om < 60).then_some(())
    }
    parse(s).is_some()
}

#[test]
fn rfc3339_shape_checker() {
    for good in [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.123456789Z",
        "2024-01-02T03:04:05+01:00",
        "2024-01-02T03:04:05.5-07:30",
    ] {
        assert!(is_rfc3339(good), "{good}");
    }
    for bad in [
        "",
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.Z",
        "2024-13-02T03:04:05Z",
        "2024-01-02T03:04:05+0100",
        "1700000000",
        "2024-01-02T03:04:05Zjunk",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
}

/// A bundle for a fresh id whose process sleeps for a long time.
fn sleeper(ctx: &Ctx, prefix: &str) -> (String, Bundle) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    b.args(&["sleep", "1000"]);
    (id, b)
}

/// The first line of the `--log` file, checked to be the only line.
fn single_log_line(log: &Path, out: &CmdOutput) -> String {
    let text = fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("read log file {}: {e}\n{out}", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "the --log file must hold exactly one line, got {text:?}\n{out}"
    );
    assert!(
        text.ends_with('\n'),
        "the log line must end with a newline: {text:?}"
    );
    lines[0].to_string()
}

/// Parses one JSON log line and checks `level`, `msg` and `time`; returns `msg`.
fn check_json_error_line(line: &str, needle: &str) -> String {
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
    assert!(v.is_object(), "log line is not a JSON object: {line}");
    assert_eq!(v["level"], "error", "log level: {line}");
    let msg = v["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("log line has no string msg: {line}"))
        .to_string();
    assert!(
        msg.contains(needle),
        "msg should mention {needle:?}: {line}"
    );
    let time = v["time"]
        .as_str()
        .unwrap_or_else(|| panic!("log line has no string time: {line}"));
    assert!(
        is_rfc3339(time),
        "time must be RFC 3339 (containerd parses it): {time:?}"
    );
    msg
}

// ---------------------------------------------------------------------------------------
// --version, features, spec
// ---------------------------------------------------------------------------------------

#[test]
fn version_first_line() {
    let rt = runtime();
    let out = raw(&["--version"], None);
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    // go-runc parses `runc version <v>`; the same shape with capsa's own name.
    let want = format!("{} version ", rt.name());
    assert!(
        first.starts_with(&want) && first.len() > want.len(),
        "first line must start with {want:?} and carry a version:\n{out}"
    );
}

#[test]
fn features_is_valid_json_on_stdout_only() {
    let out = raw(&["features"], None);
    out.assert_success();
    // CRI-O reads it with CombinedOutput: anything on stderr breaks the JSON.
    assert!(out.stderr.is_empty(), "features wrote to stderr:\n{out}");
    let f: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("features output is not JSON ({e}):\n{out}"));
    for key in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            f[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} must be a non-empty string: {f}"
        );
    }
    // containerd dereferences `linux` without a nil check.
    assert!(f["linux"].is_object(), "linux must be an object: {f}");
    let ns: BTreeSet<&str> = f["linux"]["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("linux.namespaces must be an array: {f}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] {
        assert!(ns.contains(want), "linux.namespaces lacks {want}: {ns:?}");
    }
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap_or_else(|| panic!("mountOptions must be an array: {f}"))
        .iter()
        .map(|o| {
            o.as_str()
                .unwrap_or_else(|| panic!("mountOptions holds a non-string: {f}"))
        })
        .collect();
    if capsa_only("capsa advertises rro (mount_setattr) and idmapped mounts (idmap, ridmap)") {
        for want in ["rro", "idmap", "ridmap"] {
            assert!(opts.contains(&want), "mountOptions lacks {want}: {opts:?}");
        }
        // containerd reads this to decide whether it may ask for idmapped mounts.
        assert_eq!(
            f.pointer("/linux/mountExtensions/idmap/enabled"),
            Some(&Value::Bool(true)),
            "linux.mountExtensions.idmap.enabled must be true: {f}"
        );
    }
}

/// Checks a `spec`-generated config: process.args ["sh"], root.path "rootfs", and the
/// six default namespaces. Returns the parsed config.
fn check_default_spec(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("spec did not write {}: {e}", path.display()));
    let c: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()));
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]), "{c}");
    assert_eq!(c["root"]["path"], "rootfs", "{c}");
    let ns: BTreeSet<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("linux.namespaces must be an array: {c}"))
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(want), "default namespaces lack {want}: {ns:?}");
    }
    // runc 1.2 added the cgroup namespace to the default spec; runc 1.1.5 has five.
    if capsa_only("the default spec has the six namespaces of runc 1.2, cgroup included") {
        assert!(
            ns.contains("cgroup"),
            "default namespaces lack cgroup: {ns:?}"
        );
        assert_eq!(ns.len(), 6, "default namespaces: {ns:?}");
    }
    c
}

#[test]
fn spec_writes_config_into_the_bundle_or_the_cwd() {
    let dir = tempfile::Builder::new()
        .prefix("capsa-it-spec-")
        .tempdir()
        .expect("temp dir");
    let bundle = dir.path().join("bundle");
    let cwd = dir.path().join("cwd");
    fs::create_dir(&bundle).expect("mkdir bundle");
    fs::create_dir(&cwd).expect("mkdir cwd");

    // --bundle DIR, run from another directory: only DIR gets a config.json.
    raw(&["spec", "--bundle", path_str(&bundle)], Some(&cwd)).assert_silent_success();
    let cfg = bundle.join("config.json");
    check_default_spec(&cfg);
    assert!(
        !cwd.join("config.json").exists(),
        "spec --bundle also wrote into the cwd"
    );

    // A second spec refuses to overwrite and leaves the file as it was.
    fs::write(&cfg, "{\"marker\": true}\n").expect("rewrite config.json");
    let out = raw(&["spec", "--bundle", path_str(&bundle)], Some(&cwd));
    out.assert_error_line();
    assert_eq!(
        fs::read_to_string(&cfg).expect("config.json"),
        "{\"marker\": true}\n",
        "a refused spec changed config.json"
    );

    // No --bundle: the cwd.
    raw(&["spec"], Some(&cwd)).assert_silent_success();
    let before = fs::read_to_string(cwd.join("config.json")).expect("config.json in cwd");
    check_default_spec(&cwd.join("config.json"));
    raw(&["spec"], Some(&cwd)).assert_error_line();
    assert_eq!(
        fs::read_to_string(cwd.join("config.json")).expect("config.json in cwd"),
        before,
        "a refused spec changed config.json"
    );
}

/// The real uid (`Uid:`) or gid (`Gid:`) of this process, from /proc/self/status.
fn own_id(field: &str) -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"))
}

#[test]
fn spec_rootless_maps_root_to_the_caller() {
    let dir = tempfile::Builder::new()
        .prefix("capsa-it-spec-rootless-")
        .tempdir()
        .expect("temp dir");
    raw(
        &["spec", "--rootless", "--bundle", path_str(dir.path())],
        None,
    )
    .assert_silent_success();
    let text = fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let c: Value = serde_json::from_str(&text).expect("config.json is JSON");
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(ns.contains(&"user"), "no user namespace: {ns:?}");
    let (uid, gid) = (own_id("Uid:"), own_id("Gid:"));
    for (key, host) in [("uidMappings", uid), ("gidMappings", gid)] {
        let maps = c["linux"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no linux.{key}: {c}"));
        assert!(
            maps.iter().any(|m| m["containerID"] == 0
                && m["hostID"] == u64::from(host)
                && m["size"].as_u64().is_some_and(|s| s >= 1)),
            "linux.{key} must map 0 to the caller's id {host}: {maps:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// --log
// ---------------------------------------------------------------------------------------

#[test]
fn log_file_json_holds_one_error_object() {
    let ctx = Ctx::new();
    let id = ctx.new_id("logjson");
    let log = ctx.base().join("log.json");
    let out = ctx.cmd(&[
        "--log",
        path_str(&log),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    let err = out.assert_error_mentions("does not exist");
    let line = single_log_line(&log, &out);
    let msg = check_json_error_line(&line, "does not exist");
    assert!(
        err.contains(&msg),
        "stderr must carry the logged message {msg:?}:\n{out}"
    );
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

#[test]
fn log_file_text_is_logrus_shaped() {
    let ctx = Ctx::new();
    let id = ctx.new_id("logtext");
    let log = ctx.base().join("log.txt");
    let out = ctx.cmd(&[
        "--log",
        path_str(&log),
        "--log-format",
        "text",
        "state",
        &id,
    ]);
    let err = out.assert_error_mentions("does not exist");
    let line = single_log_line(&log, &out);
    // time="2024-01-02T03:04:05Z" level=error msg="container does not exist"
    let rest = line
        .strip_prefix("time=\"")
        .unwrap_or_else(|| panic!("text log line must start with time=\": {line:?}"));
    let (time, rest) = rest
        .split_once('"')
        .unwrap_or_else(|| panic!("unterminated time: {line:?}"));
    assert!(is_rfc3339(time), "time must be RFC 3339: {line:?}");
    let msg = rest
        .strip_prefix(" level=error msg=\"")
        .and_then(|m| m.strip_suffix('"'))
        .unwrap_or_else(|| panic!("expected ` level=error msg=\"…\"`: {line:?}"));
    assert!(msg.contains("does not exist"), "{line:?}");
    assert!(
        err.contains(msg),
        "stderr must carry the logged message {msg:?}:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Go-flag spellings
// ---------------------------------------------------------------------------------------

/// `--root=<dir>`, `-root <dir>`, `--log-format=json`, `create --bundle=… --pid-file=…`,
/// `kill -a <id> 9` and `delete -f <id>`, end to end.
#[test]
fn go_flag_spellings_single_dash_and_equals() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(&ctx, "goflags1");
    let root = path_str(ctx.root()).to_string();
    let root_eq = format!("--root={root}");
    let pid_file = ctx.base().join("init.pid");
    let log = ctx.base().join("log.json");
    let log_eq = format!("--log={}", path_str(&log));

    // containerd/conmon: create --bundle=<b> --pid-file=<p> <id>, here with -root <dir>.
    let bundle_eq = format!("--bundle={}", b.path_str());
    let pid_eq = format!("--pid-file={}", path_str(&pid_file));
    raw(&["-root", &root, "create", &bundle_eq, &pid_eq, &id], None).assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "init {pid} is not alive");
    assert_eq!(ctx.status(&id), "created");

    // CRI-O: --root=<dir>; podman: --log-format=json.
    raw(
        &[&root_eq, &log_eq, "--log-format=json", "start", &id],
        None,
    )
    .assert_silent_success();
    let out = raw(&[&root_eq, "--log-format=json", "state", &id], None);
    out.assert_success();
    assert!(out.stderr.is_empty(), "state wrote to stderr:\n{out}");
    let st: Value = serde_json::from_str(&out.stdout).expect("state JSON");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(state_pid(&st), pid);

    // A failing call with --log-format=json still writes one JSON error line.
    let missing = format!("{id}-missing");
    let out = raw(
        &[
            "-root",
            &root,
            &log_eq,
            "--log-format=json",
            "state",
            &missing,
        ],
        None,
    );
    out.assert_error_mentions("does not exist");
    check_json_error_line(&single_log_line(&log, &out), "does not exist");

    // CRI-O: kill -a <id> <signum>.
    raw(&[&root_eq, "kill", "-a", &id, "9"], None).assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    assert!(!pid_alive(pid), "init {pid} survived kill -a 9");

    raw(&[&root_eq, "delete", "-f", &id], None).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

/// `kill --all=true <id> KILL` and `delete --force=true <id>` (of a running container).
#[test]
fn go_flag_spellings_bool_values() {
    let ctx = Ctx::new();
    let root_eq = format!("--root={}", path_str(ctx.root()));

    let (id, b) = sleeper(&ctx, "goflags2");
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));
    raw(&[&root_eq, "kill", "--all=true", &id, "KILL"], None).assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    assert!(!pid_alive(pid), "init {pid} survived kill --all=true KILL");
    raw(&[&root_eq, "delete", "--force=true", &id], None).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);

    // delete --force=true / -f on a running container kills it.
    for force in ["--force=true", "-f"] {
        let (id, b) = sleeper(&ctx, "goflags3");
        ctx.create_and_start(&b, &id);
        let pid = state_pid(&ctx.state(&id));
        raw(&[&root_eq, "delete", force, &id], None).assert_silent_success();
        assert!(!pid_alive(pid), "init {pid} survived delete {force}");
        ctx.assert_nothing_left(&id, &b);
    }
}

// ---------------------------------------------------------------------------------------
// Refused options (capsa only)
// ---------------------------------------------------------------------------------------

#[test]
fn checkpoint_help_says_unsupported() {
    if !capsa_only("`checkpoint --help` exits non-zero (podman's probe; capsa has no checkpoint)") {
        return;
    }
    let out = raw(&["checkpoint", "--help"], None);
    assert!(
        !out.success() && out.code().is_some(),
        "podman probes checkpoint support with `checkpoint --help`: it must fail:\n{out}"
    );
}

#[test]
fn exec_refuses_unsupported_flags_by_name() {
    let ctx = Ctx::new();
    let (id, b) = sleeper(&ctx, "exec");
    ctx.create_and_start(&b, &id);
    let pid = state_pid(&ctx.state(&id));

    // What containerd and conmon send, plus a sub-cgroup that does not exist: every
    // runtime fails (neither finds such a sub-cgroup), and a failed exec writes no pid
    // file and leaves the container as it was.
    let process = ctx.base().join("process.json");
    fs::write(
        &process,
        serde_json::to_string(&b.config()["process"]).expect("process JSON"),
    )
    .expect("write process.json");
    let pid_file = ctx.base().join("exec.pid");
    let out = ctx.cmd(&[
        "exec",
        "--cgroup",
        "no-such-sub-cgroup",
        "--process",
        path_str(&process),
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
    ]);
    let line = out.assert_error_line();
    if capsa_only("capsa's error names the missing sub-cgroup") {
        assert!(
            line.contains("no-such-sub-cgroup"),
            "the error should name the sub-cgroup:\n{out}"
        );
    }
    assert!(!pid_file.exists(), "a refused exec wrote the pid file");

    // The other exec flags capsa does not implement are refused by name, not ignored.
    if capsa_only("exec --apparmor and --process-label are refused by name") {
        for (flag, value) in [
            ("--apparmor", "unconfined"),
            ("--process-label", "system_u:system_r:container_t:s0"),
        ] {
            let out = ctx.cmd(&["exec", flag, value, &id, "true"]);
            let line = out.assert_error_line();
            assert!(line.contains(flag), "the error should name {flag}:\n{out}");
        }
    }
    // --pidfd-socket (runc 1.2; capsa has it): one message with one fd, a pidfd of
    // the exec'd process.
    if capsa_only("exec --pidfd-socket sends a pidfd (runc 1.1.5 has no such flag)") {
        let socket = capsa_integration_test::ConsoleSocket::bind(ctx.base().join("pidfd.sock"));
        let out = ctx.cmd(&[
            "exec",
            "--detach",
            "--pidfd-socket",
            socket.path_str(),
            &id,
            "sleep",
            "1",
        ]);
        out.assert_silent_success();
        let got = socket.recv_master(std::time::Duration::from_secs(10));
        let link = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&got.master)
        ))
        .expect("readlink of the received fd");
        assert!(
            link.to_string_lossy().contains("pidfd"),
            "not a pidfd: {link:?}"
        );
    }

    // Nothing ran: the exec that works still does, and only the init is left.
    let ok = ctx.cmd(&["exec", &id, "true"]);
    ok.assert_success();
    let st = ctx.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(state_pid(&st), pid);
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

// ---------------------------------------------------------------------------------------
// Racing creates, default root
// ---------------------------------------------------------------------------------------

/// What is wrong with the outcome of racing creates (empty when all is well): exactly
/// one silent winner whose container is intact in state `created`; every loser fails with
/// one error line mentioning "exists" and writes no pid file.
fn race_problems(ctx: &Ctx, id: &str, results: &[(CmdOutput, PathBuf)]) -> Vec<String> {
    let mut problems = Vec::new();
    let winners: Vec<&(CmdOutput, PathBuf)> = results.iter().filter(|(o, _)| o.success()).collect();
    if winners.len() != 1 {
        problems.push(format!("{} creates succeeded, not 1", winners.len()));
    }
    for (out, pid_file) in results {
        if out.success() {
            if !out.stdout.is_empty() || !out.stderr.is_empty() {
                problems.push(format!("the winner was not silent: {out}"));
            }
            continue;
        }
        // runc: "runc create failed: container with given ID already exists";
        // capsa: "container <id> already exists".
        let err = out.stderr.trim();
        if out.code().is_none()
            || !out.stdout.is_empty()
            || err.lines().count() != 1
            || !err.contains("exists")
        {
            problems.push(format!(
                "a loser did not fail with one line mentioning \"exists\": {out}"
            ));
        }
        if pid_file.exists() {
            problems.push(format!("a loser wrote its pid file: {out}"));
        }
    }
    if let [(_, pid_file)] = winners[..] {
        let pid = read_pid_file(pid_file);
        if !pid_alive(pid) {
            problems.push(format!("the winner's init {pid} is gone"));
        }
        let out = ctx.cmd(&["state", id]);
        match serde_json::from_str::<Value>(&out.stdout) {
            Ok(st) if out.success() && out.stderr.is_empty() => {
                if st["status"] != "created" || st["pid"] != u64::from(pid) {
                    problems.push(format!(
                        "the winner's state is not `created` with pid {pid}: {st}"
                    ));
                }
            }
            _ => problems.push(format!("state of the winner failed: {out}")),
        }
    }
    problems
}

#[test]
fn racing_creates_of_one_id() {
    const RACERS: usize = 8;
    let ctx = Ctx::new();
    let (id, b) = sleeper(&ctx, "race");
    let root = path_str(ctx.root()).to_string();
    let barrier = Arc::new(Barrier::new(RACERS));
    let threads: Vec<_> = (0..RACERS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let root = root.clone();
            let id = id.clone();
            let bundle = b.path_str().to_string();
            let pid_file = ctx.base().join(format!("init-{i}.pid"));
            std::thread::spawn(move || {
                barrier.wait();
                let out = raw(
                    &[
                        "--root",
                        &root,
                        "create",
                        "--bundle",
                        &bundle,
                        "--pid-file",
                        path_str(&pid_file),
                        &id,
                    ],
                    None,
                );
                (out, pid_file)
            })
        })
        .collect();
    let results: Vec<(CmdOutput, PathBuf)> = threads
        .into_iter()
        .map(|t| t.join().expect("racer thread"))
        .collect();

    let problems = race_problems(&ctx, &id, &results);
    if !problems.is_empty() {
        let report: Vec<String> = results.iter().map(|(o, _)| o.to_string()).collect();
        let detail = format!(
            "racing creates of one id:\n  - {}\nall outputs:\n{}",
            problems.join("\n  - "),
            report.join("\n")
        );
        if runc_deviates(
            "racing creates of one id: runc 1.1.5 checks for an existing id without a lock, \
             so a loser can pass the check, collide on exec.fifo, print several lines and \
             tear down the winner's cgroup or state",
        ) {
            loud(&format!("runc's race outcome this time: {detail}"));
            let _ = ctx.delete_force(&id);
            return; // Ctx's drop reaps the cgroup
        }
        panic!("{detail}");
    }
    let pid = results
        .iter()
        .find(|(o, _)| o.success())
        .map(|(_, pf)| read_pid_file(pf))
        .expect("one winner");
    ctx.start(&id).assert_silent_success();
    ctx.wait_for_status(&id, "running");

    ctx.delete_force(&id).assert_silent_success();
    assert!(!pid_alive(pid), "init {pid} survived delete --force");
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn default_root_state_of_an_unknown_id() {
    let rt = runtime();
    // capsa: /run/capsa; runc: /run/runc (both as real root).
    let default_root = PathBuf::from(format!("/run/{}", rt.name()));
    let ctx = Ctx::new();
    let id = ctx.new_id("defroot");
    let existed = default_root.exists();
    let out = raw(&["state", &id], None);
    out.assert_error_mentions("does not exist");
    assert!(
        !default_root.join(&id).exists(),
        "state of an unknown id created {}",
        default_root.join(&id).display()
    );
    if default_root.exists() {
        let meta = fs::symlink_metadata(&default_root).expect("stat default root");
        assert!(
            meta.is_dir(),
            "{} is not a directory",
            default_root.display()
        );
        if !existed {
            assert_eq!(
                fs::read_dir(&default_root)
                    .expect("read default root")
                    .count(),
                0,
                "state created entries in the new default root {}",
                default_root.display()
            );
        }
    }
    // Nothing under this test's own root either.
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
    // And --root still defaults there for delete --force of an unknown id (exit 0).
    let out = raw(&["delete", "--force", &id], None);
    out.assert_silent_success();
    assert!(!default_root.join(&id).exists());
}
