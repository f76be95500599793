//! A foreground `run` or `exec` whose process has a terminal and no
//! `--console-socket`: capsa receives the pty master itself and relays
//! between its own stdio and the pty (CRI-O's streaming exec relies on this),
//! with stdin in raw mode when it is a terminal, and window-size changes
//! passed on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use super::run::reap_until;
use super::CommandError;

/// Our end of the console socket, and the end the runtime gets.
pub fn console_pair() -> Result<(UnixStream, capsa_linux::Console), CommandError> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| CommandError::Io {
        what: "socketpair for the console".into(),
        source: e,
    })?;
    Ok((
        ours,
        capsa_linux::Console::Connected(Arc::new(theirs.into())),
    ))
}

/// The pty master, if the process got a terminal (the runtime sent it before
/// returning, so it is already queued; nothing queued means no terminal).
pub fn take_master(sock: &UnixStream) -> Result<Option<OwnedFd>, CommandError> {
    capsa_linux::sys::fdpass::recv_fd(sock, false)
        .map(|got| got.map(|(_, fd)| fd))
        .map_err(|e| CommandError::Io {
            what: "receive the pty master".into(),
            source: e,
        })
}

/// Restores the terminal's mode when dropped.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn copy_window_size(master: &impl AsFd) {
    // A terminal that reports 0x0 knows no size: keep consoleSize then.
    if let Ok((rows, cols)) = capsa_linux::sys::tty::window_size(&std::io::stdin()) {
        if rows > 0 && cols > 0 {
            let _ = capsa_linux::sys::tty::set_window_size(master, rows, cols);
        }
    }
}

/// Relays until the process `pid` exits; returns its exit status.
pub fn relay(master: OwnedFd, pid: i32, sfd: &SignalFd) -> Result<u8, CommandError> {
    let _raw = RawMode::enter();
    copy_window_size(&master);
    let mut master = std::fs::File::from(master);
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(CommandError::Io {
                    what: "poll the terminal".into(),
                    source: e.into(),
                })
            }
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (master_ready, signal_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        drop(fds);
        if master_ready {
            match master.read(&mut buf) {
                // EIO: every slave fd is closed, the process is gone.
                Ok(0) | Err(_) => {}
                Ok(n) => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
                }
            }
        }
        if stdin_ready {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = master.write_all(&buf[..n]);
                }
            }
        }
        if signal_ready {
            if let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if let Some(code) = reap_until(pid)? {
                            drain(&mut master, &mut buf);
                            return Ok(code);
                        }
                    }
                    Ok(Signal::SIGWINCH) => copy_window_size(&master),
                    Ok(s) => {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// What the process wrote just before it exited.
fn drain(master: &mut std::fs::File, buf: &mut [u8]) {
    let _ = nix::fcntl::fcntl(
        &*master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = master.read(buf) {
        if n == 0 {
            break;
        }
        let _ = std::io::stdout().write_all(&buf[..n]);
    }
    let _ = std::io::stdout().flush();
}
