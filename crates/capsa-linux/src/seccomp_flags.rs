//! `linux.seccomp.flags`: which `SECCOMP_FILTER_FLAG_*` each filter gets
//! (see "NOTIFY and flags" in `seccomp.rs`), and which ones this kernel has.

use oci_spec::runtime::LinuxSeccomp;

/// The `linux.seccomp.flags` capsa knows, for `capsa features`.
pub const KNOWN_FLAGS: [&str; 4] = [
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The known flags this kernel takes: all of them from Linux 5.19 on
/// (WAIT_KILLABLE_RECV is the newest; the others are 4.17 or older).
pub fn supported_flags() -> Vec<&'static str> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let newest = KNOWN_FLAGS.len() - 1;
    let count = if kernel_before(&release, (5, 19)) {
        newest
    } else {
        KNOWN_FLAGS.len()
    };
    KNOWN_FLAGS[..count].to_vec()
}

/// `linux.seccomp.flags` as `SECCOMP_FILTER_FLAG_*`: (for every filter, for
/// the NOTIFY filter).
pub(super) fn filter_flags(config: &LinuxSeccomp) -> (u32, u32) {
    use oci_spec::runtime::LinuxSeccompFilterFlag as F;
    let (mut all, mut listener_only) = (0, 0);
    for flag in config.flags().iter().flatten() {
        match flag {
            F::SeccompFilterFlagLog => all |= libc::SECCOMP_FILTER_FLAG_LOG as u32,
            F::SeccompFilterFlagSpecAllow => all |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
            F::SeccompFilterFlagWaitKillableRecv => {
                listener_only |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32
            }
            F::SeccompFilterFlagTsync => {
                tracing::debug!("seccomp: SECCOMP_FILTER_FLAG_TSYNC: the init has one thread, nothing to synchronise")
            }
        }
    }
    (all, all | listener_only)
}

/// Whether a kernel release string (`6.1.0-18-amd64`) is older than
/// `(major, minor)`; an unreadable one counts as older.
pub(super) fn kernel_before(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) < (major, minor),
        _ => true,
    }
}
