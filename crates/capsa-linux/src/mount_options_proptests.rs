//! Property tests of `mounts[].options` parsing (`cargo test -p capsa-linux
//! proptests`): any list parses without panicking, each known option has its
//! effect wherever it stands (the last one touching a flag wins), and every
//! other option reaches the filesystem as data, in order.

use proptest::prelude::*;

use super::*;
use crate::sys::mount_attr::MOUNT_ATTR_ATIME_MASK;

/// A known option (one `supported()` lists) or arbitrary text, which is
/// sometimes a known option too.
fn option() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(supported()).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "[a-z=,0-9]{0,12}",
    ]
}

fn known(opt: &str) -> bool {
    supported().contains(&opt)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unknown_options_are_data_in_order(opts in proptest::collection::vec(option(), 0..24)) {
        let parsed = parse(&opts);
        let data: Vec<&str> = opts
            .iter()
            .map(String::as_str)
            .filter(|o| !o.is_empty() && !known(o))
            .collect();
        prop_assert_eq!(parsed.data, data.join(","));
    }

    /// Each `MS_*` flag ends as the last option touching it left it, and
    /// propagation changes keep their order.
    #[test]
    fn last_flag_option_wins(opts in proptest::collection::vec(option(), 0..24)) {
        let parsed = parse(&opts);
        // On raw bits: `!` on MsFlags would drop the bits nix does not
        // name (MS_NOSYMFOLLOW).
        let mut flags: libc::c_ulong = 0;
        let mut propagation = Vec::new();
        for o in &opts {
            match flag_option(o) {
                Some(Effect::Set(f)) => flags |= f.bits(),
                Some(Effect::Clear(f)) => flags &= !f.bits(),
                None => propagation.extend(propagation_option(o)),
            }
        }
        prop_assert_eq!(parsed.flags.bits(), flags);
        prop_assert_eq!(parsed.propagation, propagation);
        prop_assert_eq!(parsed.bind, opts.iter().any(|o| o == "bind" || o == "rbind"));
        prop_assert_eq!(parsed.recursive, opts.iter().any(|o| o == "rbind"));
        prop_assert_eq!(parsed.tmpcopyup, opts.iter().any(|o| o == "tmpcopyup"));
        let idmap = opts.iter().rev().find_map(|o| match o.as_str() {
            "idmap" => Some(Idmap::Top),
            "ridmap" => Some(Idmap::Recursive),
            _ => None,
        });
        prop_assert_eq!(parsed.idmap, idmap.unwrap_or_default());
    }

    /// A known option, put anywhere among data options, has its own effect.
    #[test]
    fn a_known_option_works_in_any_position(
        opt in proptest::sample::select(supported()),
        data in proptest::collection::vec("[a-z]{1,6}=[0-9]{1,4}", 0..6),
        at in any::<proptest::sample::Index>(),
    ) {
        let mut opts: Vec<String> = data.clone();
        opts.insert(at.index(opts.len() + 1), opt.to_string());
        let alone = parse(&[opt.to_string()]);
        let parsed = parse(&opts);
        prop_assert_eq!(&parsed.data, &data.join(","));
        prop_assert_eq!(ParsedOptions { data: String::new(), ..parsed }, alone);
    }

    /// The recursive (`mount_setattr`) attributes: the last option touching
    /// a bit wins and a bit is never both set and cleared, except the atime
    /// mode, whose whole mask the kernel wants cleared when one is set.
    #[test]
    fn recursive_attributes_last_wins(
        opts in proptest::collection::vec(proptest::sample::select(RECURSIVE), 0..12),
    ) {
        let owned: Vec<String> = opts.iter().map(|o| o.to_string()).collect();
        let a = parse(&owned).recursive_attr;
        prop_assert_eq!(a.attr_set & a.attr_clr & !MOUNT_ATTR_ATIME_MASK, 0);
        for bit in (0..64).map(|b| 1u64 << b).filter(|b| b & MOUNT_ATTR_ATIME_MASK == 0) {
            let last = opts.iter().rev().find_map(|o| {
                let (set, clr) = recursive_option(o).unwrap();
                (set & bit != 0).then_some(true).or((clr & bit != 0).then_some(false))
            });
            prop_assert_eq!(last.map(|_| a.attr_set & bit != 0), last, "bit {:#x}", bit);
            prop_assert_eq!(last.map(|_| a.attr_clr & bit != 0), last.map(|s| !s));
        }
        let atime = opts.iter().rev().find_map(|o| {
            let (set, clr) = recursive_option(o).unwrap();
            (clr == MOUNT_ATTR_ATIME_MASK).then_some(set)
        });
        if let Some(mode) = atime {
            prop_assert_eq!(a.attr_set & MOUNT_ATTR_ATIME_MASK, mode);
            prop_assert_eq!(a.attr_clr & MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_ATIME_MASK);
        }
    }
}

#[test]
fn every_supported_option_is_understood() {
    for opt in supported() {
        assert_eq!(parse(&[opt.to_string()]).data, "", "{opt} went to data");
    }
}
