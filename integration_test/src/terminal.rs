//! Terminals for tests: a console-socket receiver that is as strict as runc's
//! `recvtty`, go-runc and conmon, and a reader that collects what a pty master shows.

use std::fs::File;
use std::io::{ErrorKind, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// A listening `AF_UNIX` stream socket for `--console-socket`.
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// What the runtime sent over the console socket.
pub struct ReceivedMaster {
    /// The pty master.
    pub master: File,
    /// The payload of the message (runc sends the pty's name, e.g. `/dev/ptmx`).
    pub payload: Vec<u8>,
}

impl ConsoleSocket {
    /// Listens at `path`, which must not exist yet.
    pub fn bind(path: PathBuf) -> ConsoleSocket {
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("listen on {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("make the console socket non-blocking");
        ConsoleSocket { listener, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a `&str`, for command lines.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("console socket path is UTF-8")
    }

    /// Accepts one connection within `timeout`; `None` when nobody connected.
    pub fn try_accept(&self, timeout: Duration) -> Option<UnixStream> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on {}: {e}", self.path.display()),
            }
        }
    }

    /// Accepts one connection and receives the pty master as the strict receivers do:
    /// one message with a non-empty payload shorter than 4096 bytes and exactly one
    /// `SCM_RIGHTS` control message carrying exactly one fd. Panics otherwise.
    pub fn recv_master(&self, timeout: Duration) -> ReceivedMaster {
        let stream = self.try_accept(timeout).unwrap_or_else(|| {
            panic!(
                "nobody connected to the console socket {} within {timeout:?}",
                self.path.display()
            )
        });
        stream
            .set_nonblocking(false)
            .expect("make the console connection blocking");
        stream
            .set_read_timeout(Some(timeout))
            .expect("set a receive timeout");
        let mut payload = vec![0u8; 4096];
        // Room for more than one fd, so that extra fds arrive (and are counted) instead
        // of being cut off.
        let mut space = nix::cmsg_space!([RawFd; 8]);
        let (bytes, fds, cmsg_count) = {
            let mut iov = [IoSliceMut::new(&mut payload)];
            let msg = recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .unwrap_or_else(|e| panic!("recvmsg on the console connection: {e}"));
            let cmsgs: Vec<ControlMessageOwned> = msg
                .cmsgs()
                .unwrap_or_else(|e| panic!("control messages were truncated: {e}"))
                .collect();
            let count = cmsgs.len();
            let mut fds = Vec::new();
            let mut other = Vec::new();
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmRights(raw) => {
                        fds.extend(raw.into_iter().map(own_received_fd));
                    }
                    c => other.push(format!("{c:?}")),
                }
            }
            assert!(
                other.is_empty(),
                "unexpected control messages besides SCM_RIGHTS: {other:?}"
            );
            (msg.bytes, fds, count)
        };
        payload.truncate(bytes);
        assert_eq!(
            cmsg_count, 1,
            "expected exactly one SCM_RIGHTS control message, got {cmsg_count}"
        );
        assert_eq!(
            fds.len(),
            1,
            "expected exactly one fd in the SCM_RIGHTS message, got {}",
            fds.len()
        );
        assert!(
            !payload.is_empty(),
            "the console message must carry a non-empty payload (runc sends the pty name)"
        );
        assert!(
            payload.len() < 4096,
            "payload too long: {} bytes",
            payload.len()
        );
        let master = File::from(fds.into_iter().next().expect("one fd"));
        ReceivedMaster { master, payload }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes ownership of an fd that `recvmsg` just installed in our fd table.
#[allow(unsafe_code)]
fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process's fd table for this recvmsg
    // call (SCM_RIGHTS); nothing else knows the number yet, so this OwnedFd is its
    // only owner and closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[derive(Default)]
struct Transcript {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    transcript: Mutex<Transcript>,
    changed: Condvar,
}

/// Collects everything a pty master shows (a thread reads it until EOF or `EIO`,
/// i.e. until no slave is open any more) and writes input to it.
pub struct PtyReader {
    writer: File,
    shared: Arc<Shared>,
}

impl PtyReader {
    pub fn new(master: File) -> PtyReader {
        let mut reader = master.try_clone().expect("dup the pty master");
        let shared = Arc::new(Shared {
            transcript: Mutex::new(Transcript::default()),
            changed: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut t = theirs.transcript.lock().unwrap_or_else(|e| e.into_inner());
                        t.bytes.extend_from_slice(&buf[..n]);
                        theirs.changed.notify_all();
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // EIO: the last slave was closed.
                    Err(_) => break,
                }
            }
            let mut t = theirs.transcript.lock().unwrap_or_else(|e| e.into_inner());
            t.closed = true;
            theirs.changed.notify_all();
        });
        PtyReader {
            writer: master,
            shared,
        }
    }

    /// Types `text` into the terminal.
    pub fn send(&self, text: &str) {
        (&self.writer)
            .write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("write {text:?} to the pty master: {e}"));
    }

    /// Everything shown so far, with carriage returns removed.
    pub fn text(&self) -> String {
        let t = self.lock();
        clean(&t.bytes)
    }

    /// True once the reader saw EOF or `EIO`.
    pub fn closed(&self) -> bool {
        self.lock().closed
    }

    /// Waits until the transcript contains `needle`; `false` after `timeout`.
    pub fn try_wait_for(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_while(timeout, |t| !clean(&t.bytes).contains(needle))
            .is_some()
    }

    /// Waits until the transcript contains `needle` and returns it; panics with the
    /// transcript after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        if !self.try_wait_for(needle, timeout) {
            panic!(
                "the terminal did not show {needle:?} within {timeout:?}; it showed:\n{:?}",
                self.text()
            );
        }
        self.text()
    }

    /// Waits until the last slave is closed and returns the whole transcript; panics
    /// after `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> String {
        if self.wait_while(timeout, |t| !t.closed).is_none() {
            panic!(
                "the terminal was still open after {timeout:?}; it showed:\n{:?}",
                self.text()
            );
        }
        self.text()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Transcript> {
        self.shared
            .transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while `cond` holds and the reader is running; `None` on timeout.
    fn wait_while(&self, timeout: Duration, cond: impl Fn(&Transcript) -> bool) -> Option<()> {
        let deadline = Instant::now() + timeout;
        let mut t = self.lock();
        while cond(&t) {
            let now = Instant::now();
            // A closed terminal shows nothing more.
            if t.closed || now >= deadline {
                return None;
            }
            t = self
                .shared
                .changed
                .wait_timeout(t, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Some(())
    }
}

fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\r', "")
}
