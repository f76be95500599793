//! Property tests of `kill`'s signal argument (`cargo test -p capsa-linux
//! proptests`): every spelling runc's callers use parses, anything else is
//! one error line, nothing panics.

use nix::sys::signal::Signal;
use proptest::prelude::*;

use super::*;

fn any_named_signal() -> impl Strategy<Value = Signal> {
    proptest::sample::select(Signal::iterator().collect::<Vec<_>>())
}

/// `name` with each letter's case flipped where `flips` has a set bit.
fn recase(name: &str, flips: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if flips >> (i % 64) & 1 == 1 {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_name_parses_with_or_without_sig_in_any_case(
        sig in any_named_signal(),
        flips: u64,
        prefixed: bool,
        pad in "[ \t]{0,2}",
    ) {
        let full = sig.as_str();
        let name = if prefixed { full } else { full.strip_prefix("SIG").unwrap() };
        let text = format!("{pad}{}{pad}", recase(name, flips));
        prop_assert_eq!(parse_signal(&text), Ok(sig as i32), "{:?}", text);
    }

    /// Numbers round-trip, the real-time signals too (podman stops a
    /// systemd container with SIGRTMIN+3, which containerd and podman pass
    /// to the runtime as a number).
    #[test]
    fn every_signal_number_parses_to_itself(n in 1..=SIGNAL_MAX) {
        prop_assert_eq!(parse_signal(&n.to_string()), Ok(n));
        if let Ok(sig) = Signal::try_from(n) {
            prop_assert_eq!(parse_signal(sig.as_str()), Ok(n));
        }
    }

    #[test]
    fn other_numbers_are_refused(n in any::<i64>().prop_filter("a signal", |n| !(1..=64).contains(n))) {
        let e = parse_signal(&n.to_string()).unwrap_err();
        prop_assert!(e.starts_with("invalid signal"), "{e}");
    }

    /// Anything at all: a signal or one error line naming the input.
    #[test]
    fn arbitrary_text_is_a_signal_or_one_error_line(text in any::<String>()) {
        match parse_signal(&text) {
            Ok(n) => prop_assert!((1..=SIGNAL_MAX).contains(&n)),
            Err(e) => {
                prop_assert!(e.starts_with("invalid signal"), "{e}");
                prop_assert!(!e.contains('\n'), "{e}");
            }
        }
    }
}
