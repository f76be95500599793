//! Property tests of the value translations between cgroup v1 and v2
//! (`cargo test -p capsa-linux proptests`): for any input, the result stays
//! in the kernel's range, keeps the order of its inputs and never panics.

use proptest::prelude::*;

use super::*;

/// The cgroup2 weight range (`cpu.weight`, `io.weight`).
const WEIGHT: std::ops::RangeInclusive<u64> = 1..=10_000;

/// The v1 state a memory update starts from, and the values it writes:
/// `u64::MAX` is "unlimited" (`-1` in the spec).
fn bytes() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), 0..=1u64 << 40]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn shares_land_in_the_weight_range_in_order(a: u64, b: u64) {
        let (lo, hi) = (a.min(b), a.max(b));
        let (wlo, whi) = (shares_to_weight(lo), shares_to_weight(hi));
        // 0 is "not set" and stays so; anything else is a valid weight.
        prop_assert_eq!(wlo == 0, lo == 0);
        if lo != 0 {
            prop_assert!(WEIGHT.contains(&wlo), "{lo} -> {wlo}");
            prop_assert!(WEIGHT.contains(&whi), "{hi} -> {whi}");
        }
        prop_assert!(wlo <= whi, "{lo} -> {wlo} but {hi} -> {whi}");
    }

    #[test]
    fn shares_outside_the_v1_range_act_as_its_bounds(s in 1u64..=MIN_SHARES, t in MAX_SHARES..) {
        prop_assert_eq!(shares_to_weight(s), 1);
        prop_assert_eq!(shares_to_weight(t), 10_000);
    }

    #[test]
    fn blkio_weights_land_in_the_weight_range_in_order(a: u16, b: u16) {
        let (lo, hi) = (a.min(b), a.max(b));
        let (wlo, whi) = (blkio_weight_to_io_weight(lo), blkio_weight_to_io_weight(hi));
        prop_assert!(WEIGHT.contains(&wlo) && WEIGHT.contains(&whi));
        prop_assert!(wlo <= whi, "{lo} -> {wlo} but {hi} -> {whi}");
    }

    /// `memory.swap.max` is the swap part of the spec's memory+swap: what
    /// it writes plus the memory limit gives back the spec's value.
    #[test]
    fn v2_swap_is_the_total_minus_the_limit(swap: Option<i64>, limit: Option<i64>) {
        match v2_swap(swap, limit) {
            Ok(Some(v)) if v == "max" => {
                let s = swap.unwrap_or(0);
                prop_assert!(s < 0 || (s == 0 && limit == Some(-1)), "{swap:?} {limit:?}");
            }
            Ok(Some(v)) => {
                let only_swap: i64 = v.parse().expect("a number or max");
                prop_assert!(only_swap >= 0);
                prop_assert_eq!(Some(only_swap + limit.unwrap()), swap);
            }
            Ok(None) => prop_assert!(swap.unwrap_or(0) == 0 && limit != Some(-1)),
            Err(e) => {
                let s = swap.unwrap();
                prop_assert!(s > 0 && (limit.unwrap_or(0) <= 0 || s < limit.unwrap()));
                prop_assert!(!e.contains('\n'), "{e}");
            }
        }
    }

    /// v1 keeps `limit <= memsw` at every moment: the order `v1_swap_first`
    /// picks never passes through a state the kernel refuses, whatever the
    /// current values (a valid pair: limit <= memsw) and the new ones.
    #[test]
    fn v1_memory_and_swap_order_keeps_the_kernel_invariant(
        cur in (bytes(), bytes()).prop_map(|(a, b)| (a.min(b), a.max(b))),
        new in (bytes(), bytes()).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ) {
        let ((cur_limit, cur_memsw), (limit, memsw)) = (cur, new);
        let spec_swap = if memsw == u64::MAX { -1 } else { memsw as i64 };
        let middle = if v1_swap_first(cur_limit, spec_swap) {
            (cur_limit, memsw)
        } else {
            (limit, cur_memsw)
        };
        prop_assert!(middle.0 <= middle.1, "{cur:?} -> {middle:?} -> {new:?}");
    }
}

#[test]
fn runc_fixed_points() {
    // runc's ConvertCPUSharesToCgroupV2Value and ConvertBlkIOToIOWeightValue.
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(blkio_weight_to_io_weight(10), 1);
    assert_eq!(blkio_weight_to_io_weight(500), 4950);
    assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
}
