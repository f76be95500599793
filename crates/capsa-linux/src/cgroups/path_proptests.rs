//! Property tests of `linux.cgroupsPath` (`cargo test -p capsa-linux
//! proptests`): any text is a path below the hierarchy (or below our own
//! cgroup) or one error line; it never climbs out with `..`.

use proptest::prelude::*;

use super::*;

/// Paths made of the pieces that matter: separators, dots, colons, names.
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just(":".to_string()),
        "[a-z0-9.-]{1,6}",
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..10).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_valid_path_stays_below_its_base(path in path_like(), own in "(/[a-z.]{1,5}){0,3}") {
        match CgroupPath::requested(Some(&path), "ctr") {
            Ok(p) => {
                for c in &p.components {
                    prop_assert!(!c.is_empty() && c != "." && c != ".." && !c.contains('/'));
                }
                let resolved = p.resolve(Some(&own)).unwrap();
                let base = if path.starts_with('/') { "" } else { own.as_str() };
                let below = resolved.strip_prefix(base).map(|r| r.starts_with('/'));
                prop_assert_eq!(below, Some(true), "{:?} in {:?}: {:?}", path, own, resolved);
                // The normalised form names the same cgroup.
                prop_assert_eq!(CgroupPath::requested(Some(&p.display()), "x").unwrap(), p);
            }
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{e}"),
        }
    }

    /// Without `linux.cgroupsPath` the id is one component below `/capsa`.
    #[test]
    fn the_default_is_the_id_below_capsa(id in any::<String>()) {
        if let Ok(p) = CgroupPath::requested(None, &id) {
            prop_assert_eq!(p.resolve(None), Some(format!("/{DEFAULT_PARENT}/{id}")));
            prop_assert!(!id.contains('/') && id != "." && id != ".." && !id.is_empty());
        }
    }
}
