//! Terminals: `process.terminal` with `--console-socket` for `create` and `exec` (the pty
//! master sent as runc's `recvtty`, go-runc and conmon expect it), `/dev/console`, and a
//! foreground `run` relaying its own terminal (what CRI-O relies on). Every test passes
//! against runc 1.1.5 (the oracle) except for assertions guarded by `runc_deviates` or
//! `capsa_only`.

use std::fs;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capsa_integration_test::{
    path_str, pid_alive, read_pid_file, runtime, state_pid, wait_until, Bundle, ConsoleSocket, Ctx,
    PtyReader,
};
use nix::pty::{openpty, Winsize};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Links busybox applets the default rootfs lacks (`tty`, `stty`) into its /bin.
fn link_applets(b: &Bundle, applets: &[&str]) {
    for a in applets {
        let link = b.rootfs().join("bin").join(a);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("link {}: {e}", link.display()));
        }
    }
}

/// A console socket in the test's private directory.
fn console_socket(ctx: &Ctx) -> ConsoleSocket {
    ConsoleSocket::bind(ctx.base().join("console.sock"))
}

/// The lines of a terminal transcript, trimmed.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

/// The value of the first `key=` word of `text`.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// Asks the shell on `term` for its window size (`stty size`) and returns it as
/// `ROWSxCOLS`; `None` when no answer came within `timeout`. `round` makes the answer's
/// marker unique.
fn ask_size(term: &PtyReader, round: u32, timeout: Duration) -> Option<String> {
    // The typed line is echoed with `$((…))`; only the answer has the computed marker.
    let marker = format!("answer-{}", round + 1000);
    term.send(&format!(
        "echo size=$(stty size | tr ' ' x) answer-$(({round}+1000))\n"
    ));
    if !term.try_wait_for(&marker, timeout) {
        return None;
    }
    let text = term.text();
    let line = text
        .lines()
        .find(|l| l.contains(&marker) && !l.contains("$(("))?;
    field(line, "size").map(str::to_string)
}

// ---------------------------------------------------------------------------------------
// create --console-socket
// ---------------------------------------------------------------------------------------

#[test]
fn create_sends_the_pty_master_over_the_console_socket() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("tty-create");
    link_applets(&b, &["tty", "stty"]);
    b.sh("tty; stty size; \
         echo console=$(stat -c %t:%T /dev/console) pty=$(stat -c %t:%T $(tty)); \
         echo done");
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({ "height": 40, "width": 120 });
    });
    let sock = console_socket(&ctx);
    let pid_file = ctx.base().join("init.pid");

    ctx.cmd(&[
        "create",
        "--bundle",
        b.path_str(),
        "--console-socket",
        sock.path_str(),
        "--pid-file",
        path_str(&pid_file),
        &id,
    ])
    .assert_silent_success();
    let got = sock.recv_master(WAIT);
    let init = read_pid_file(&pid_file);
    assert!(pid_alive(init), "the created init {init} is not alive");
    assert_eq!(ctx.status(&id), "created");
    let term = PtyReader::new(got.master);

    ctx.start(&id).assert_silent_success();
    let text = term.wait_closed(WAIT);
    let l = lines(&text);
    assert!(
        l.iter().any(|l| l
            .strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))),
        "`tty` should name a /dev/pts/N device:\n{text}"
    );
    assert!(
        l.contains(&"40 120"),
        "`stty size` should report consoleSize 40x120:\n{text}"
    );
    assert!(l.contains(&"done"), "{text}");
    let console = field(&text, "console").unwrap_or_default();
    let pty = field(&text, "pty").unwrap_or_default();
    assert!(
        !pty.is_empty() && console == pty,
        "/dev/console must be the pty (same major:minor): console={console:?} pty={pty:?}\n{text}"
    );

    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn console_socket_without_terminal_is_refused() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("tty-noterm");
    b.args(&["sleep", "1000"]);
    let sock = console_socket(&ctx);
    let pid_file = ctx.base().join("init.pid");

    let out = ctx.cmd(&[
        "create",
        "--bundle",
        b.path_str(),
        "--console-socket",
        sock.path_str(),
        "--pid-file",
        path_str(&pid_file),
        &id,
    ]);
    out.assert_error_mentions("cannot use console socket");
    assert!(!pid_file.exists(), "a refused create wrote the pid file");
    assert!(
        sock.try_accept(Duration::from_millis(200)).is_none(),
        "a refused create connected to the console socket"
    );
    ctx.assert_nothing_left(&id, &b);
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

#[test]
fn terminal_without_console_socket_is_refused_by_create() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("tty-nosock");
    b.args(&["sleep", "1000"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let pid_file = ctx.base().join("init.pid");

    let out = ctx.cmd(&[
        "create",
        "--bundle",
        b.path_str(),
        "--pid-file",
        path_str(&pid_file),
        &id,
    ]);
    out.assert_error_mentions("cannot allocate tty");
    assert!(!pid_file.exists(), "a refused create wrote the pid file");
    ctx.assert_nothing_left(&id, &b);
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

// ---------------------------------------------------------------------------------------
// exec -t --console-socket
// ---------------------------------------------------------------------------------------

#[test]
fn exec_tty_sends_the_pty_master_over_the_console_socket() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("tty-exec");
    link_applets(&b, &["tty"]);
    b.args(&["sleep", "1000"]);
    ctx.create_and_start(&b, &id);
    let init = state_pid(&ctx.state(&id));
    let sock = console_socket(&ctx);
    let pid_file = ctx.base().join("exec.pid");

    let started = Instant::now();
    ctx.cmd(&[
        "exec",
        "-t",
        "--console-socket",
        sock.path_str(),
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "sh",
    ])
    .assert_silent_success();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exec --detach must return once the shell started"
    );
    let got = sock.recv_master(WAIT);
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the exec'd shell {pid} is not running");
    let term = PtyReader::new(got.master);

    // The arithmetic shows the shell ran the line (the echo of the typed line has
    // `$((6*7))`, not 42).
    term.send("echo hi-from-$((6*7))\n");
    term.wait_for("hi-from-42", WAIT);
    term.send("tty\n");
    term.wait_for("/dev/pts/", WAIT);
    term.send("exit 3\n");
    wait_until("the exec'd shell to end", WAIT, || !pid_alive(pid));
    term.wait_closed(WAIT);

    assert!(
        pid_alive(init),
        "the container's init died with the exec'd shell"
    );
    assert_eq!(ctx.status(&id), "running");
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

// ---------------------------------------------------------------------------------------
// Foreground run: the runtime relays its own terminal
// ---------------------------------------------------------------------------------------

#[test]
fn foreground_run_relays_a_terminal_and_window_size() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("tty-run");
    link_applets(&b, &["tty", "stty"]);
    b.args(&["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));

    let size = Winsize {
        ws_row: 20,
        ws_col: 70,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(&size, None).expect("openpty");
    let slave_path = fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
        .expect("readlink the pty slave");
    let rt = runtime();
    // `setsid -c`: a session of its own with the pty as its controlling terminal, so
    // that resizing the pty sends the runtime SIGWINCH, as in an interactive shell.
    let mut child = {
        let dup = |what: &str| {
            pty.slave
                .try_clone()
                .unwrap_or_else(|e| panic!("dup the pty slave for {what}: {e}"))
        };
        Command::new("setsid")
            .arg("-c")
            .arg(rt.path())
            .args(["--root", path_str(ctx.root()), "run", "--bundle"])
            .args([b.path_str(), &id])
            .stdin(Stdio::from(dup("stdin")))
            .stdout(Stdio::from(dup("stdout")))
            .stderr(Stdio::from(dup("stderr")))
            .spawn()
            .expect("spawn setsid -c <runtime> run")
    };
    drop(pty.slave);
    let term = PtyReader::new(fs::File::from(pty.master));

    // The shell's prompt: the relay is up.
    term.wait_for("# ", WAIT);
    term.send("echo typed-$((1+2))\n");
    term.wait_for("typed-3", WAIT);

    let first = ask_size(&term, 1, WAIT);
    assert_eq!(
        first.as_deref(),
        Some("20x70"),
        "the container's terminal should start with the runtime's size 20x70; the \
         terminal showed:\n{}",
        term.text()
    );

    // Resize the outer terminal; the runtime gets SIGWINCH and resizes the inner one.
    let stty = Command::new("stty")
        .args(["-F", path_str(&slave_path), "rows", "30", "cols", "90"])
        .status()
        .expect("run stty -F");
    assert!(stty.success(), "stty -F {} failed", slave_path.display());
    let deadline = Instant::now() + WAIT;
    let mut round = 2;
    let mut seen = None;
    while seen.as_deref() != Some("30x90") && Instant::now() < deadline {
        seen = ask_size(&term, round, WAIT);
        round += 1;
        if seen.as_deref() != Some("30x90") {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(
        seen.as_deref(),
        Some("30x90"),
        "after resizing the outer terminal to 30x90 the container should see it \
         (SIGWINCH forwarded); the terminal showed:\n{}",
        term.text()
    );

    term.send("exit 5\n");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the runtime") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the foreground run did not end after `exit 5`; the terminal showed:\n{}",
                term.text()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(5),
        "a foreground run exits with the container process's status; the terminal \
         showed:\n{}",
        term.text()
    );
    term.wait_closed(WAIT);
    ctx.assert_nothing_left(&id, &b);
}
