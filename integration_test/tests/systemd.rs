//! What capsa does for systemd services: sd_notify proxying through
//! `NOTIFY_SOCKET` and socket activation through `LISTEN_FDS`, as runc.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use capsa_integration_test::{capsa_only, runtime, Ctx};

/// A static sd_notify client for the container (busybox has none): sends
/// each argument as one datagram to `$NOTIFY_SOCKET`.
const NOTIFY_C: &str = r#"
#include <sys/socket.h>
#include <sys/un.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  const char *p = getenv("NOTIFY_SOCKET"); if (!p) return 2;
  int s = socket(AF_UNIX, SOCK_DGRAM, 0); struct sockaddr_un a = {0}; a.sun_family = AF_UNIX;
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  for (int i = 1; i < argc; i++)
    if (sendto(s, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&a, sizeof a) < 0) return 1;
  return 0;
}
"#;

fn build_notify(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("notify.c");
    let bin = dir.join("notify");
    std::fs::write(&src, NOTIFY_C).expect("write notify.c");
    let ok = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status();
    match ok {
        Ok(s) if s.success() => bin,
        other => panic!("building the static sd_notify client needs `cc` with a static libc (Debian: gcc, libc6-dev): {other:?}"),
    }
}

#[test]
fn notify_socket_is_proxied_and_run_detach_waits_for_ready() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("notify");
    let notify = build_notify(ctx.base());
    std::fs::copy(&notify, b.rootfs().join("bin/notify")).expect("copy notify into the rootfs");
    b.sh("sleep 0.3; notify STATUS=warming-up; sleep 0.3; notify READY=1; exec sleep 100");
    let host_sock = ctx.base().join("host-notify.sock");
    let listener = UnixDatagram::bind(&host_sock).expect("bind the host's notify socket");
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");

    // The container inherits capsa's stdio: files, not pipes that would stay
    // open (and keep us waiting) for as long as the container runs.
    let err_path = ctx.base().join("run.stderr");
    let err_file = std::fs::File::create(&err_path).expect("stderr file");
    let started = Instant::now();
    let status = Command::new(runtime().path())
        .args(["--root", ctx.root().to_str().expect("utf-8")])
        .args(["run", "--detach", "--bundle", b.path_str(), &id])
        .env("NOTIFY_SOCKET", &host_sock)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err_file)
        .status()
        .expect("run capsa");
    let waited = started.elapsed();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "run --detach failed: {stderr}");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = listener.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if got.last().is_some_and(|m| m.contains("READY=1")) {
            break;
        }
    }
    let st = ctx.state(&id);
    let pid = st["pid"].as_i64().expect("pid");
    if capsa_only(
        "other notifications (STATUS=) and MAINPID are forwarded (runc 1.1.5 passes READY=1 only)",
    ) {
        assert_eq!(
            got.first().map(String::as_str),
            Some("STATUS=warming-up"),
            "messages: {got:?}"
        );
        assert!(
            got.iter().any(|m| m.trim() == format!("MAINPID={pid}")),
            "MAINPID of the init expected: {got:?}"
        );
    }
    assert_eq!(
        got.last().map(|m| m.trim()),
        Some("READY=1"),
        "messages: {got:?}"
    );
    // `run --detach` returned only once the container was ready (runc does too).
    assert!(
        waited >= Duration::from_millis(500),
        "returned after {waited:?}, before READY=1"
    );
    ctx.delete_force(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}

#[test]
fn listen_fds_pass_the_activation_sockets() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("listenfds");
    b.sh("echo \"$LISTEN_FDS $LISTEN_PID\"; cat <&3");
    let data = ctx.base().join("socket-data");
    std::fs::write(&data, "activation-data\n").expect("write");
    let script = format!(
        "exec 3<{data}; LISTEN_FDS=1 LISTEN_PID=$$ exec {rt} --root {root} run --bundle {bundle} {id}",
        data = data.display(),
        rt = runtime().path().display(),
        root = ctx.root().display(),
        bundle = b.path_str(),
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 1"),
        "LISTEN_FDS=1 and LISTEN_PID=1 expected inside: {stdout}"
    );
    assert!(
        stdout.contains("activation-data"),
        "fd 3 must reach the container: {stdout}"
    );
    ctx.assert_nothing_left(&id, &b);
}
