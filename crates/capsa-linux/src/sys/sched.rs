//! sched_setattr(2), ioprio_set(2) and personality(2): the scheduling, I/O
//! priority and execution domain of the calling process (`process.scheduler`,
//! `process.ioPriority`, `linux.personality`). libc has no wrapper for the
//! first two; `personality` is here so that its errno is read reliably.

use std::io;

/// `struct sched_attr` of sched_setattr(2), in its first published size
/// (SCHED_ATTR_SIZE_VER0, 48 bytes): the utilization clamps of later versions
/// are not in the OCI spec.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// Size of [`SchedAttr`] as the kernel expects it in `size`.
pub const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// `sched_setattr(0, attr, 0)`: applies to the calling thread, which in the
/// container init is the whole (single-threaded) process.
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    let mut attr = *attr;
    attr.size = SCHED_ATTR_SIZE;
    // SAFETY: `attr` is a live, properly aligned `struct sched_attr` of
    // `attr.size` bytes that the kernel only reads during the call; pid 0 is
    // the caller and flags must be 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::pid_t,
            &attr as *const SchedAttr,
            0 as libc::c_uint,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `IOPRIO_WHO_PROCESS`.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
/// The class is stored above this many bits of the level.
pub const IOPRIO_CLASS_SHIFT: u32 = 13;

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)` for the caller.
pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    let value = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: integer arguments only; `who` 0 is the calling process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_int,
            value as libc::c_int,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `ioprio_get(IOPRIO_WHO_PROCESS, 0)`: the caller's raw I/O priority.
pub fn ioprio_get() -> io::Result<u32> {
    // SAFETY: integer arguments only; `who` 0 is the calling process.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_int) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as u32)
    }
}

/// `personality(persona)`. The call returns the previous persona, which may
/// look like an error value, so failure is told by errno alone.
pub fn set_personality(persona: u32) -> io::Result<()> {
    // SAFETY: integer argument only. errno is cleared first because
    // personality(2) returns the old persona, never a distinct error value
    // other than -1 with errno set.
    let ret = unsafe {
        *libc::__errno_location() = 0;
        libc::personality(persona as libc::c_ulong)
    };
    let err = io::Error::last_os_error();
    if ret == -1 && err.raw_os_error().is_some_and(|e| e != 0) {
        Err(err)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_attr_has_the_kernel_v0_layout() {
        assert_eq!(SCHED_ATTR_SIZE, 48);
    }

    #[test]
    fn ioprio_round_trips_for_the_caller() {
        // Best effort, level 4: allowed to anyone for their own process.
        ioprio_set(2, 4).unwrap();
        assert_eq!(ioprio_get().unwrap(), (2 << IOPRIO_CLASS_SHIFT) | 4);
    }
}
