//! Property tests of the systemd `slice:prefix:name` form (`cargo test -p
//! capsa-linux proptests`): slices expand one level per dash, every unit
//! name ends in `.slice` or `.scope`, its cgroup is its own directory, and
//! anything else is one error line.

use proptest::prelude::*;

use super::*;

/// Slice names from dash-separated parts, with the odd empty part.
fn slice_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec("[a-z0-9@_]{0,5}", 1..5)
            .prop_map(|parts| format!("{}.slice", parts.join("-"))),
        1 => Just("-.slice".to_string()),
        1 => any::<String>(),
    ]
}

fn systemd_path() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            slice_name(),
            "[a-z/]{0,5}",
            prop_oneof![slice_name(), "[a-z0-9./]{0,8}"]
        )
            .prop_map(|(s, p, n)| format!("{s}:{p}:{n}")),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn slices_expand_one_level_per_dash(slice in slice_name()) {
        match expand_slice(&slice) {
            Ok(dir) if slice == "-.slice" => prop_assert_eq!(dir, "/"),
            Ok(dir) => {
                let stem = slice.strip_suffix(".slice").unwrap();
                let parts: Vec<&str> = stem.split('-').collect();
                let levels: Vec<&str> = dir.split('/').skip(1).collect();
                prop_assert_eq!(levels.len(), parts.len(), "{}", dir);
                for (i, level) in levels.iter().enumerate() {
                    prop_assert_eq!(level.to_string(), format!("{}.slice", parts[..=i].join("-")));
                }
                prop_assert!(dir.starts_with('/') && dir.ends_with(&format!("/{slice}")), "{}", dir);
            }
            Err(e) => {
                let stem = slice.strip_suffix(".slice").unwrap_or("");
                prop_assert!(
                    stem.is_empty() || slice.contains('/') || stem.split('-').any(str::is_empty),
                    "{slice:?} refused: {e}"
                );
            }
        }
    }

    #[test]
    fn a_unit_is_a_scope_or_slice_in_its_own_cgroup(path in systemd_path(), id in "[a-z0-9]{1,8}") {
        match UnitPath::parse(Some(&path), &id) {
            Ok(u) => {
                prop_assert!(u.slice.ends_with(".slice"));
                prop_assert!(u.unit.ends_with(".slice") || u.unit.ends_with(".scope"));
                prop_assert_eq!(u.is_slice(), u.unit.ends_with(".slice"));
                // Never the root or a parent: the unit's cgroup is its own.
                prop_assert!(u.cgroup.ends_with(&format!("/{}", u.unit)), "{:?}", u);
                prop_assert!(!u.unit.contains('/'));
                if !u.is_slice() {
                    prop_assert!(u.cgroup.starts_with(&expand_slice(&u.slice).unwrap()));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with(&format!("linux.cgroupsPath {path:?}")), "{msg}");
                prop_assert!(!msg.contains('\n'), "{msg}");
            }
        }
    }
}
