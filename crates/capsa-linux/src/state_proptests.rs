//! Property tests of container id validation (`cargo test -p capsa-linux
//! proptests`): the id becomes a directory name under the state root and a
//! cgroup name, so nothing that could leave the state root gets through.

use proptest::prelude::*;

use super::*;

/// The rule in `validate_id`'s error message, written independently.
fn by_the_rule(id: &str) -> bool {
    (1..=1024).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ids_in_the_alphabet_are_accepted(id in "[A-Za-z0-9._+-]{1,64}") {
        prop_assume!(id != "." && id != "..");
        prop_assert!(validate_id(&id).is_ok(), "{id:?}");
    }

    /// Arbitrary text, and ids built from the alphabet plus the characters
    /// that matter (`/`, NUL, newline, space, non-ASCII): accepted exactly
    /// when the rule says so, and then never a path with more than one
    /// component; refused with one line naming the id.
    #[test]
    fn accepted_exactly_by_the_rule(
        id in prop_oneof![any::<String>(), "[a.+_/\0\n é-]{0,8}", Just(".".into()), Just("..".into())],
    ) {
        match validate_id(&id) {
            Ok(()) => {
                prop_assert!(by_the_rule(&id), "{id:?} accepted");
                prop_assert!(!id.contains('/') && !id.contains('\0'));
                let path = std::path::Path::new(&id);
                prop_assert_eq!(path.components().count(), 1);
                prop_assert!(matches!(
                    path.components().next(),
                    Some(std::path::Component::Normal(_))
                ));
            }
            Err(e) => {
                prop_assert!(!by_the_rule(&id), "{id:?} refused");
                let msg = e.to_string();
                prop_assert!(msg.starts_with(&format!("container id {id:?} ")), "{msg}");
                prop_assert!(!msg.contains('\n'), "{msg}");
            }
        }
    }
}

#[test]
fn length_bound() {
    assert!(validate_id(&"a".repeat(1024)).is_ok());
    assert!(validate_id(&"a".repeat(1025)).is_err());
}
