//! `linux.cgroupsPath` in the systemd form `slice:prefix:name`, the unit it
//! names and where systemd puts that unit's cgroup. Pure string work, with
//! runc's rules:
//!
//! - the slice defaults to `system.slice`; `-.slice` is the root slice;
//! - a name ending in `.slice` makes a slice unit of that name, anything
//!   else a scope `prefix-name.scope`;
//! - systemd derives a slice's cgroup from its name, one level per dash:
//!   `a-b.slice` lives at `/a.slice/a-b.slice`.

use super::super::CgroupError;

/// The parent slice when the path leaves it empty.
pub const DEFAULT_SLICE: &str = "system.slice";
/// The scope prefix when `linux.cgroupsPath` is absent.
pub const DEFAULT_PREFIX: &str = "capsa";

/// A parsed `slice:prefix:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPath {
    /// The parent slice, such as `system.slice`.
    pub slice: String,
    /// The unit to start: `prefix-name.scope` or `name.slice`.
    pub unit: String,
    /// The unit's cgroup relative to the hierarchy root, such as
    /// `/system.slice/capsa-ctr.scope`.
    pub cgroup: String,
}

impl UnitPath {
    /// Parses `linux.cgroupsPath` for the systemd driver, or builds
    /// `system.slice:capsa:<id>` when it is absent or empty.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<UnitPath, CgroupError> {
        let path = cgroups_path.unwrap_or_default();
        let invalid = |reason: String| CgroupError::SystemdPath {
            path: path.to_string(),
            reason,
        };
        let (slice, prefix, name) = if path.is_empty() {
            ("", DEFAULT_PREFIX, id)
        } else {
            let parts: Vec<&str> = path.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(invalid(
                    "the systemd cgroup driver needs the form \"slice:prefix:name\"".into(),
                ));
            };
            (slice, prefix, name)
        };
        let slice = if slice.is_empty() {
            DEFAULT_SLICE
        } else {
            slice
        };
        let slice_dir =
            expand_slice(slice).map_err(|r| invalid(format!("slice {slice:?}: {r}")))?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(invalid(format!(
                "name {name:?} must be one non-empty path component"
            )));
        }
        if prefix.contains('/') {
            return Err(invalid(format!("prefix {prefix:?} contains \"/\"")));
        }
        let (unit, cgroup) = if name.ends_with(".slice") {
            // systemd places a slice by its name alone, so a slice unit's
            // cgroup is its own expansion (its parent is only wanted).
            let dir = expand_slice(name).map_err(|r| invalid(format!("slice {name:?}: {r}")))?;
            // `-.slice` is the root: the "container's cgroup" would hold every
            // process on the host (`kill --all`, `delete` act on it).
            if dir == "/" {
                return Err(invalid(format!(
                    "name {name:?} is the root slice, which cannot be a container's unit"
                )));
            }
            (name.to_string(), dir)
        } else {
            let unit = format!("{prefix}-{name}.scope");
            let dir = format!("{}/{unit}", slice_dir.trim_end_matches('/'));
            (unit, dir)
        };
        Ok(UnitPath {
            slice: slice.to_string(),
            unit,
            cgroup,
        })
    }

    /// Whether the unit is a slice (else a scope).
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

/// Whether `path` is in the systemd form (three `:`-separated parts, not an
/// absolute path), for the error that says to pass `--systemd-cgroup`.
pub fn looks_like_systemd(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

/// The cgroup directory of slice `slice`, relative to the hierarchy root:
/// `a-b.slice` → `/a.slice/a-b.slice`, `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(stem) = slice.strip_suffix(".slice").filter(|s| !s.is_empty()) else {
        return Err("a slice name ends in \".slice\" and has a name before it".into());
    };
    if slice.contains('/') {
        return Err("a slice name cannot contain \"/\"".into());
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err("empty component between dashes".into());
        }
        prefix.push_str(component);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> UnitPath {
        UnitPath::parse(Some(path), "ctr").unwrap()
    }

    #[test]
    fn expands_nested_slices() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            ".slice",
            "a",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_under_a_slice() {
        let p = parse("system.slice:docker:abc");
        assert_eq!(p.unit, "docker-abc.scope");
        assert_eq!(p.slice, "system.slice");
        assert_eq!(p.cgroup, "/system.slice/docker-abc.scope");
        assert!(!p.is_slice());
        let p = parse("machine-pod1.slice:crio:x");
        assert_eq!(p.cgroup, "/machine.slice/machine-pod1.slice/crio-x.scope");
        let p = parse("-.slice:p:x");
        assert_eq!(p.cgroup, "/p-x.scope");
    }

    #[test]
    fn empty_slice_is_system_slice_and_absent_path_is_the_default() {
        assert_eq!(parse(":p:x").cgroup, "/system.slice/p-x.scope");
        let p = UnitPath::parse(None, "ctr").unwrap();
        assert_eq!(p.unit, "capsa-ctr.scope");
        assert_eq!(p.cgroup, "/system.slice/capsa-ctr.scope");
        assert_eq!(UnitPath::parse(Some(""), "ctr").unwrap(), p);
    }

    #[test]
    fn a_name_ending_in_slice_makes_a_slice() {
        let p = parse("system.slice:ignored:system-pod7.slice");
        assert_eq!(p.unit, "system-pod7.slice");
        assert!(p.is_slice());
        assert_eq!(p.cgroup, "/system.slice/system-pod7.slice");
        assert_eq!(p.slice, "system.slice");
    }

    #[test]
    fn refuses_other_forms() {
        for bad in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "bad:p:x",
            "system.slice:p:",
            "system.slice:p:a/b",
            "system.slice:a/b:x",
            "x:y:a--b.slice",
            "system.slice:p:-.slice",
        ] {
            let e = UnitPath::parse(Some(bad), "ctr").unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("linux.cgroupsPath {bad:?}")),
                "{e}"
            );
        }
        assert!(looks_like_systemd("system.slice:p:x"));
        assert!(!looks_like_systemd("/a:b:c"));
        assert!(!looks_like_systemd("a/b"));
    }
}

#[cfg(test)]
#[path = "names_proptests.rs"]
mod proptests;
