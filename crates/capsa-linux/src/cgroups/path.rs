//! Validation and resolution of `linux.cgroupsPath`. Pure string work.

use super::CgroupError;

/// The parent of every container cgroup when `linux.cgroupsPath` is absent.
const DEFAULT_PARENT: &str = "capsa";

/// A validated cgroup path: normalised components, either absolute (inside
/// every hierarchy) or relative to the runtime's own cgroup in each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupPath {
    absolute: bool,
    components: Vec<String>,
}

impl CgroupPath {
    /// Validates `linux.cgroupsPath`, or builds `/capsa/<id>` when absent.
    pub(super) fn requested(cgroups_path: Option<&str>, id: &str) -> Result<Self, CgroupError> {
        match cgroups_path {
            Some(path) => Self::parse(path),
            None => Self::default_for(id),
        }
    }

    fn parse(path: &str) -> Result<Self, CgroupError> {
        let invalid = |reason| CgroupError::InvalidPath {
            path: path.to_string(),
            reason,
        };
        let absolute = path.starts_with('/');
        // runc's systemd driver takes `slice:prefix:name`; treating it as a
        // directory name would silently put the container somewhere odd.
        if super::systemd::looks_like_systemd(path) {
            return Err(CgroupError::SystemdPath {
                path: path.to_string(),
                reason: "this is the systemd form slice:prefix:name, which needs --systemd-cgroup"
                    .into(),
            });
        }
        let mut components = Vec::new();
        for component in path.split('/') {
            match component {
                "" | "." => {}
                // A cgroup outside the one asked for could escape a parent's
                // limits, or make `remove` delete someone else's cgroup.
                ".." => return Err(invalid("\"..\" components are not allowed")),
                name => components.push(name.to_string()),
            }
        }
        if components.is_empty() {
            return Err(invalid("names no cgroup (it is empty after normalising)"));
        }
        Ok(Self {
            absolute,
            components,
        })
    }

    fn default_for(id: &str) -> Result<Self, CgroupError> {
        if id.is_empty() || id == "." || id == ".." || id.contains('/') {
            return Err(CgroupError::InvalidId(id.to_string()));
        }
        Ok(Self {
            absolute: true,
            components: vec![DEFAULT_PARENT.to_string(), id.to_string()],
        })
    }

    /// The path inside a hierarchy where our own cgroup is `own` (relative
    /// to the mount point, starting with `/`). `None` when the path is
    /// relative and we have no own cgroup in that hierarchy.
    pub(super) fn resolve(&self, own: Option<&str>) -> Option<String> {
        let base = if self.absolute { "" } else { own? };
        let mut resolved: String = base.trim_end_matches('/').to_string();
        for component in &self.components {
            resolved.push('/');
            resolved.push_str(component);
        }
        Some(resolved)
    }

    /// The normalised form: `/a/b` or `a/b`.
    pub(super) fn display(&self) -> String {
        let joined = self.components.join("/");
        if self.absolute {
            format!("/{joined}")
        } else {
            joined
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(path: Option<&str>, own: Option<&str>) -> Option<String> {
        CgroupPath::requested(path, "ctr").unwrap().resolve(own)
    }

    #[test]
    fn default_is_capsa_id_in_every_hierarchy() {
        let path = CgroupPath::requested(None, "ctr").unwrap();
        assert_eq!(path.display(), "/capsa/ctr");
        assert_eq!(path.resolve(Some("/user.slice")).unwrap(), "/capsa/ctr");
        assert_eq!(path.resolve(None).unwrap(), "/capsa/ctr");
    }

    #[test]
    fn absolute_path_ignores_own_cgroup() {
        let own = Some("/process_api/8e3d");
        assert_eq!(resolve(Some("/a/b"), own).unwrap(), "/a/b");
    }

    #[test]
    fn relative_path_is_below_own_cgroup() {
        assert_eq!(
            resolve(Some("a/b"), Some("/process_api/8e3d")).unwrap(),
            "/process_api/8e3d/a/b"
        );
        assert_eq!(resolve(Some("a/b"), Some("/")).unwrap(), "/a/b");
        assert_eq!(resolve(Some("a"), None), None);
    }

    #[test]
    fn normalises_redundant_separators_and_dots() {
        let path = CgroupPath::requested(Some("//a/./b//"), "ctr").unwrap();
        assert_eq!(path.display(), "/a/b");
        let path = CgroupPath::requested(Some("./a/b/"), "ctr").unwrap();
        assert_eq!(path.display(), "a/b");
    }

    #[test]
    fn rejects_dot_dot_and_empty_paths() {
        for bad in ["/a/../b", "..", "a/..", "", "/", ".", "//./"] {
            let err = CgroupPath::requested(Some(bad), "ctr").unwrap_err();
            assert!(matches!(err, CgroupError::InvalidPath { .. }), "{bad}");
            assert!(err.to_string().starts_with("linux.cgroupsPath"), "{err}");
        }
        let err = CgroupPath::requested(Some("/a/../b"), "ctr").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"linux.cgroupsPath "/a/../b": ".." components are not allowed"#
        );
    }

    #[test]
    fn rejects_systemd_form() {
        let err = CgroupPath::requested(Some("system.slice:capsa:ctr"), "ctr").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"linux.cgroupsPath "system.slice:capsa:ctr": this is the systemd form slice:prefix:name, which needs --systemd-cgroup"#
        );
        // An absolute path with colons is a plain (if odd) directory name.
        assert!(CgroupPath::requested(Some("/a:b:c"), "ctr").is_ok());
    }

    #[test]
    fn rejects_ids_that_are_not_one_component() {
        for bad in ["", ".", "..", "a/b"] {
            let err = CgroupPath::requested(None, bad).unwrap_err();
            assert!(matches!(err, CgroupError::InvalidId(_)), "{bad}");
        }
    }
}

#[cfg(test)]
#[path = "path_proptests.rs"]
mod proptests;
