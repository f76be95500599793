//! Bounds on values that decode to the right type but that no kernel or capsa
//! can honour: they are refused here, by JSON path, before anything is made,
//! rather than failing later with a kernel errno (or, worse, doing something
//! else than asked: uid 4294967295 is `(uid_t)-1`, which `setresuid` reads as
//! "leave unchanged", so the process would keep running as root).

use std::collections::BTreeMap;

use crate::error::SpecError;
use crate::types::User;

/// The most bytes the annotations may take as JSON. They travel to the hooks in
/// the state capsa sends over its init pipe (a SOCK_SEQPACKET socket: one
/// message must fit its send buffer, 208 KiB by default).
pub(crate) const MAX_ANNOTATIONS_JSON: usize = 128 * 1024;

/// The largest major and minor numbers of a `dev_t` (12 and 20 bits):
/// larger ones would be cut to other numbers by `makedev`.
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// The kernel's limit on a time namespace offset (`KTIME_SEC_MAX / 2`).
const MAX_TIME_OFFSET_SECS: i64 = 4_611_686_018;

pub(crate) fn annotations(map: &BTreeMap<String, String>) -> Result<(), SpecError> {
    let size = serde_json::to_string(map).map_or(usize::MAX, |s| s.len());
    if size > MAX_ANNOTATIONS_JSON {
        return Err(SpecError::invalid(
            "annotations",
            format!(
                "{size} bytes of JSON; capsa passes annotations to hooks through its init pipe \
                 and accepts at most {MAX_ANNOTATIONS_JSON}"
            ),
        ));
    }
    Ok(())
}

/// No path, argument or variable can hold a NUL byte: the kernel would see
/// it end there.
pub(crate) fn no_nul(value: &str, at: &str) -> Result<(), SpecError> {
    if value.contains('\0') {
        return Err(SpecError::invalid(
            at,
            format!("{value:?} contains a NUL byte"),
        ));
    }
    Ok(())
}

pub(crate) fn user(u: &User) -> Result<(), SpecError> {
    let minus_one = |id: u32, at: &str| {
        if id == u32::MAX {
            Err(SpecError::invalid(
                at,
                "4294967295 is not an id: it is (uid_t)-1, which setresuid/setresgid read as \
                 \"leave unchanged\"",
            ))
        } else {
            Ok(())
        }
    };
    minus_one(u.uid, "process.user.uid")?;
    minus_one(u.gid, "process.user.gid")?;
    for (i, g) in u.additional_gids.iter().enumerate() {
        minus_one(*g, &format!("process.user.additionalGids[{i}]"))?;
    }
    if let Some(umask) = u.umask.filter(|m| *m > 0o777) {
        return Err(SpecError::invalid(
            "process.user.umask",
            format!("{umask:#o} has bits outside 0777"),
        ));
    }
    Ok(())
}

pub(crate) fn oom_score_adj(value: Option<i32>) -> Result<(), SpecError> {
    match value {
        Some(v) if !(-1000..=1000).contains(&v) => Err(SpecError::invalid(
            "process.oomScoreAdj",
            format!("{v} is outside -1000..=1000"),
        )),
        _ => Ok(()),
    }
}

/// A device's numbers; `wildcard` allows -1 (a cgroup rule's `*`).
pub(crate) fn device_numbers(
    major: Option<i64>,
    minor: Option<i64>,
    at: &str,
    wildcard: bool,
) -> Result<(), SpecError> {
    for (value, max, field) in [(major, MAX_MAJOR, "major"), (minor, MAX_MINOR, "minor")] {
        match value {
            Some(-1) if wildcard => {}
            Some(v) if !(0..=max).contains(&v) => {
                return Err(SpecError::invalid(
                    format!("{at}.{field}"),
                    format!("{v} is not a device {field} number (0 to {max})"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn time_offset(secs: i64, nanosecs: u32, at: &str) -> Result<(), SpecError> {
    if secs.unsigned_abs() > MAX_TIME_OFFSET_SECS.unsigned_abs() {
        return Err(SpecError::invalid(
            format!("{at}.secs"),
            format!("{secs} is beyond the kernel's limit of ±{MAX_TIME_OFFSET_SECS} seconds"),
        ));
    }
    if nanosecs >= 1_000_000_000 {
        return Err(SpecError::invalid(
            format!("{at}.nanosecs"),
            format!("{nanosecs} is not below one second"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with(uid: u32, gids: Vec<u32>, umask: Option<u32>) -> User {
        User {
            uid,
            gid: 0,
            umask,
            additional_gids: gids,
        }
    }

    #[test]
    fn ids_of_minus_one_and_wide_umasks_are_refused_by_path() {
        assert!(user(&user_with(1000, vec![5], Some(0o022))).is_ok());
        let e = user(&user_with(u32::MAX, vec![], None)).unwrap_err();
        assert!(
            e.to_string().starts_with("config.json: process.user.uid: "),
            "{e}"
        );
        let e = user(&user_with(0, vec![1, u32::MAX], None)).unwrap_err();
        assert!(
            e.to_string().contains("process.user.additionalGids[1]"),
            "{e}"
        );
        let e = user(&user_with(0, vec![], Some(0o1777))).unwrap_err();
        assert!(e.to_string().contains("process.user.umask"), "{e}");
    }

    #[test]
    fn oom_score_adj_stays_in_the_kernels_range() {
        for ok in [None, Some(-1000), Some(0), Some(1000)] {
            assert!(oom_score_adj(ok).is_ok(), "{ok:?}");
        }
        for bad in [-1001, 1001, i32::MIN, i32::MAX] {
            assert!(oom_score_adj(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_numbers_fit_a_dev_t() {
        assert!(device_numbers(Some(4095), Some(MAX_MINOR), "d", false).is_ok());
        assert!(device_numbers(Some(-1), None, "r", true).is_ok());
        let e = device_numbers(Some(-1), Some(1), "linux.devices[0]", false).unwrap_err();
        assert!(e.to_string().contains("linux.devices[0].major"), "{e}");
        let e = device_numbers(Some(1), Some(1 << 40), "d", true).unwrap_err();
        assert!(e.to_string().contains("d.minor"), "{e}");
    }

    #[test]
    fn time_offsets_stay_within_the_kernels_limit() {
        assert!(time_offset(-MAX_TIME_OFFSET_SECS, 999_999_999, "t").is_ok());
        assert!(time_offset(i64::MIN, 0, "t").is_err());
        assert!(time_offset(i64::MAX, 0, "t").is_err());
        assert!(time_offset(0, 1_000_000_000, "t").is_err());
    }

    #[test]
    fn annotations_are_bounded_and_nul_is_refused() {
        let small: BTreeMap<String, String> = [("a".to_string(), "b".to_string())].into();
        assert!(annotations(&small).is_ok());
        let big: BTreeMap<String, String> =
            [("a".to_string(), "x".repeat(MAX_ANNOTATIONS_JSON))].into();
        let e = annotations(&big).unwrap_err();
        assert!(
            e.to_string().starts_with("config.json: annotations: "),
            "{e}"
        );
        assert!(no_nul("/a/b", "p").is_ok());
        assert!(no_nul("/a\0b", "process.cwd").is_err());
    }
}
