//! The terminal ioctls nix leaves to `unsafe` macros.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `ioctl(TIOCSCTTY)`: makes the terminal behind `fd` the controlling
/// terminal of this process, which must be a session leader.
pub fn set_controlling_terminal(fd: &impl AsFd) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal a terminal
    // another session owns) and no pointer; the fd is valid while borrowed.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(TIOCGWINSZ)`: a terminal's (rows, columns).
pub fn window_size(fd: &impl AsFd) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points to a live, properly aligned local of that type.
    let ret = unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// `ioctl(TIOCSWINSZ)`: sets a terminal's (rows, columns).
pub fn set_window_size(fd: &impl AsFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which
    // points to a live local of that type for the whole call.
    let ret = unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
