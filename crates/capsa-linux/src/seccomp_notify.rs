//! `SCMP_ACT_NOTIFY`: seccomp user notification, the one OCI action
//! seccompiler cannot express.
//!
//! seccompiler (0.5) has no `SECCOMP_RET_USER_NOTIF` action and no way to
//! install with `SECCOMP_FILTER_FLAG_NEW_LISTENER`, so this module adds the
//! three missing pieces around it:
//!
//! * **building**: the filter whose action is NOTIFY is built by seccompiler
//!   like every other one (argument conditions included), with [`NOTIFY`]
//!   standing in for the action: a TRACE whose value no config can give
//!   (configured values fit in 16 bits, this one does not). seccompiler
//!   encodes it as `SECCOMP_RET_TRACE` with data 0, and [`to_user_notif`]
//!   rewrites exactly those return instructions of that one program into
//!   `SECCOMP_RET_USER_NOTIF`. No other action of that filter can be TRACE
//!   (its other result is ALLOW, or the KILL of the arch checks).
//! * **loading**: that program is installed with NEW_LISTENER
//!   (`sys::seccomp::install_filter_with_listener`), which returns the
//!   listener fd; the kernel allows one listener per filter chain, and
//!   [`crate::seccomp::compile`] makes at most one such filter.
//! * **delivering**: the init hands the listener to the parent over the init
//!   pipe (`Msg::SeccompListener`, with the fd as SCM_RIGHTS) right after the
//!   filters are in, and the parent sends it on to `linux.seccomp.listenerPath`
//!   ([`hand_over`]) in one message with the container process state, as the
//!   runtime spec's "The Container Process State" says.
//!
//! # Precedence across the stacked filters
//!
//! The NOTIFY filter returns USER_NOTIF for the calls of the NOTIFY entries
//! and ALLOW for everything else; the default filter ALLOWs those same calls
//! (they are named by an entry). The kernel takes the most restrictive result
//! of all filters: KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > USER_NOTIF >
//! TRACE > LOG > ALLOW. So a call of a NOTIFY entry gets USER_NOTIF (ALLOW
//! everywhere else); a call of no entry gets `defaultAction` (USER_NOTIF when
//! that is NOTIFY: then the default filter is the notifying one); and a call
//! that matches a NOTIFY entry and an entry with a stronger action (ERRNO,
//! KILL) gets the stronger one, weaker ones (TRACE, LOG) lose to NOTIFY.
//!
//! # Calls that must not notify
//!
//! Between loading the filter and handing the listener over the init calls
//! `sendmsg(2)`: a notified `sendmsg` would wait for a supervisor that can
//! never get the listener. After the hand-over the init writes the `0` of the
//! exec fifo with `write(2)`; like runc, capsa refuses NOTIFY for `write`, so
//! that no agent decides whether `start` succeeds. Both are refused when the
//! config is compiled, naming the entry.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use seccompiler::{sock_filter, SeccompAction};

/// Stands in for NOTIFY while seccompiler builds the program: no configured
/// TRACE value can equal it (they are at most 16 bits).
pub(crate) const NOTIFY: SeccompAction = SeccompAction::Trace(0x1_0000);

/// The system calls NOTIFY may not apply to, and why (see the header).
pub(crate) const MUST_NOT_NOTIFY: [(&str, &str); 2] = [
    (
        "sendmsg",
        "the container init hands the listener over with sendmsg(2), before anyone can answer",
    ),
    (
        "write",
        "the container init writes to the exec fifo with write(2) after the filter is loaded",
    ),
];

/// Rewrites the returns of [`NOTIFY`] (as seccompiler encodes it) into
/// `SECCOMP_RET_USER_NOTIF`. Only for the program built with [`NOTIFY`] as
/// one of its two actions. Returns how many returns were rewritten.
pub(crate) fn to_user_notif(program: &mut [sock_filter]) -> usize {
    const BPF_RET_K: u16 = 0x06;
    let marker = u32::from(NOTIFY);
    let mut count = 0;
    for insn in program
        .iter_mut()
        .filter(|i| i.code == BPF_RET_K && i.k == marker)
    {
        insn.k = libc::SECCOMP_RET_USER_NOTIF;
        count += 1;
    }
    count
}

/// Errors of the hand-over to `listenerPath`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("linux.seccomp.listenerPath: connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("linux.seccomp.listenerPath: send the seccomp listener to {path}: {source}")]
    Send { path: String, source: nix::Error },
    #[error("linux.seccomp.listenerPath: the container init sent no seccomp listener fd")]
    NoFd,
    #[error("linux.seccomp.listenerPath: not set, but the container init made a listener")]
    NoPath,
    #[error("the container process state for the seccomp agent: {0}")]
    State(#[from] serde_json::Error),
}

/// The parent's part of step 7a (E4 for `exec`): sends the listener that
/// came with `Msg::SeccompListener` to `linux.seccomp.listenerPath`, with the
/// container process state for `pid` built from `state_json` (the state as
/// hooks get it).
pub(crate) fn forward(
    spec: &capsa_spec::ValidSpec,
    state_json: &str,
    pid: i32,
    listener: Option<OwnedFd>,
) -> Result<(), NotifyError> {
    let listener = listener.ok_or(NotifyError::NoFd)?;
    let seccomp = spec.linux.seccomp.as_ref();
    let path = seccomp
        .and_then(|s| s.listener_path().as_deref())
        .ok_or(NotifyError::NoPath)?;
    let metadata = seccomp.and_then(|s| s.listener_metadata().as_deref());
    let message = process_state(&spec.oci_version, pid, metadata, state_json)?;
    hand_over(path, &message, &listener)
}

/// The container process state of the runtime spec: one JSON object naming
/// the fds passed with it (`seccompFd`, the listener), the process's pid (as
/// the runtime sees it), `listenerMetadata` (left out when the config has
/// none) and the container's state (`state_json`, as hooks get it).
pub fn process_state(
    oci_version: &str,
    pid: i32,
    metadata: Option<&str>,
    state_json: &str,
) -> Result<String, serde_json::Error> {
    let state: serde_json::Value = serde_json::from_str(state_json)?;
    let mut msg = serde_json::json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(metadata) = metadata {
        msg["metadata"] = serde_json::Value::from(metadata);
    }
    serde_json::to_string(&msg)
}

/// Sends `listener` and `message` (from [`process_state`]) to the agent at
/// `path`: one connection, one `sendmsg` carrying the whole JSON and the fd,
/// then the connection is closed, as the spec says.
pub fn hand_over(path: &Path, message: &str, listener: &impl AsFd) -> Result<(), NotifyError> {
    let shown = || path.display().to_string();
    let sock = UnixStream::connect(path).map_err(|source| NotifyError::Connect {
        path: shown(),
        source,
    })?;
    let fds = [listener.as_fd().as_raw_fd()];
    let mut sent = 0;
    let bytes = message.as_bytes();
    while sent < bytes.len() {
        // The fd goes with the first call only, as the spec requires when a
        // message takes several.
        let cmsgs = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 { &cmsgs } else { &[] };
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(&bytes[sent..])],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(source) => {
                return Err(NotifyError::Send {
                    path: shown(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fdpass::recv_fd;

    #[test]
    fn the_state_message_has_the_spec_fields() {
        let state = r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"k":"v"}}"#;
        let msg = process_state("1.2.0", 42, Some("MKDIR=1"), state).unwrap();
        let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(v["ociVersion"], "1.2.0");
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(v["pid"], 42);
        assert_eq!(v["metadata"], "MKDIR=1");
        assert_eq!(v["state"]["id"], "c1");
        assert_eq!(v["state"]["status"], "creating");
        assert_eq!(v["state"]["annotations"]["k"], "v");

        let v: serde_json::Value =
            serde_json::from_str(&process_state("1.2.0", 42, None, state).unwrap()).unwrap();
        assert!(v.get("metadata").is_none(), "no metadata key: {v}");
        assert!(process_state("1.2.0", 1, None, "not json").is_err());
    }

    #[test]
    fn only_the_marker_returns_become_user_notif() {
        let ret = |k| sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k,
        };
        let load = sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: u32::from(NOTIFY),
        };
        let mut prog = vec![
            load,
            ret(u32::from(NOTIFY)),
            ret(libc::SECCOMP_RET_ALLOW),
            ret(u32::from(NOTIFY)),
        ];
        assert_eq!(to_user_notif(&mut prog), 2);
        assert_eq!(prog[0].k, u32::from(NOTIFY), "a load is not a return");
        assert_eq!(prog[1].k, libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(prog[2].k, libc::SECCOMP_RET_ALLOW);
        assert_eq!(prog[3].k, libc::SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn the_hand_over_is_one_message_with_the_fd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let msg = process_state("1.2.0", 7, None, r#"{"id":"x"}"#).unwrap();
        hand_over(&path, &msg, &file).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let (payload, fd) = recv_fd(&conn, true).unwrap().expect("an fd");
        assert_eq!(String::from_utf8(payload).unwrap(), msg);
        let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(target, Path::new("/dev/null"));

        let gone = dir.path().join("nobody.sock");
        let e = hand_over(&gone, &msg, &file).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.seccomp.listenerPath: connect to "),
            "{e}"
        );
    }
}
