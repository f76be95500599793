//! sd_notify proxying, as runc does it: when capsa runs under systemd with
//! `NOTIFY_SOCKET` set, the container's own notifications must reach systemd,
//! and its `READY=1` only once the container really is ready.
//!
//! * `create` binds the directory `<state>/<id>/notify` read-only at
//!   `/run/notify` in the container and sets `NOTIFY_SOCKET` to
//!   `/run/notify/notify.sock` in the process's environment;
//! * `start` binds a datagram socket there, releases the init, and forwards
//!   what the container sends to the host's socket until `READY=1`, which it
//!   passes on after `MAINPID=<the init's host pid>` (systemd then watches
//!   the container's init), or until the container exits.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use capsa_spec::{Mount, ValidSpec};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::Error;

/// Where the container sees the notify socket.
const IN_CONTAINER_DIR: &str = "/run/notify";
const SOCKET_NAME: &str = "notify.sock";

/// Adds the bind mount and the environment variable to the spec.
pub(crate) fn add_to_spec(spec: &mut ValidSpec, notify_dir: &Path) {
    spec.mounts.push(Mount {
        destination: PathBuf::from(IN_CONTAINER_DIR),
        kind: "bind".into(),
        source: Some(notify_dir.to_path_buf()),
        options: ["bind", "nosuid", "noexec", "nodev", "ro"]
            .map(String::from)
            .to_vec(),
        uid_mappings: Vec::new(),
        gid_mappings: Vec::new(),
    });
    if let Some(p) = spec.process.as_mut() {
        p.env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        p.env
            .push(format!("NOTIFY_SOCKET={IN_CONTAINER_DIR}/{SOCKET_NAME}"));
    }
}

/// The listening socket `start` binds before it releases the init.
pub(crate) struct Listener {
    sock: UnixDatagram,
}

pub(crate) fn listen(notify_dir: &Path) -> Result<Listener, Error> {
    let path = notify_dir.join(SOCKET_NAME);
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).map_err(Error::sys(format!(
        "bind the notify socket {}",
        path.display()
    )))?;
    // Any user of the container may notify (sendto needs write access).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
        .map_err(Error::sys(format!("chmod {}", path.display())))?;
    Ok(Listener { sock })
}

/// Forwards notifications to `host` until the container is ready or gone.
pub(crate) fn forward_until_ready(
    l: &Listener,
    host: &Path,
    pidfd: &OwnedFd,
    init_pid: i32,
) -> Result<(), Error> {
    let out = UnixDatagram::unbound().map_err(Error::sys("socket for NOTIFY_SOCKET"))?;
    let send = |msg: &[u8]| {
        out.send_to(msg, host)
            .map(|_| ())
            .map_err(Error::sys(format!(
                "send to NOTIFY_SOCKET {}",
                host.display()
            )))
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(l.sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll the notify socket")(e.into())),
            Ok(_) => {}
        }
        let msg_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if msg_ready {
            let n = l
                .sock
                .recv(&mut buf)
                .map_err(Error::sys("read the notify socket"))?;
            let msg = &buf[..n];
            if msg.split(|b| *b == b'\n').any(|line| line == b"READY=1") {
                send(format!("MAINPID={init_pid}\n").as_bytes())?;
                return send(b"READY=1\n");
            }
            send(msg)?;
        } else if gone {
            return Ok(());
        }
    }
}
