//! One entry's `args` → seccompiler rules: ANDed conditions, split into
//! ORed rules when two name the same argument (see `seccomp.rs`).

use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

use super::{SeccompError, When};

/// When entry `i` matches, from its `args`; `None` when it never can.
pub(super) fn entry_rules(
    args: &[LinuxSeccompArg],
    i: usize,
) -> Result<Option<When>, SeccompError> {
    if args.is_empty() {
        return Ok(Some(When::Always));
    }
    let mut conditions = Vec::with_capacity(args.len());
    for (j, arg) in args.iter().enumerate() {
        conditions.push(condition(arg, || {
            format!("linux.seccomp.syscalls[{i}].args[{j}]")
        })?);
    }
    let mut indexes: Vec<usize> = args.iter().map(LinuxSeccompArg::index).collect();
    indexes.sort_unstable();
    let same_index_twice = indexes.windows(2).any(|pair| pair[0] == pair[1]);

    let rule = |conditions: Vec<SeccompCondition>| {
        SeccompRule::new(conditions).map_err(|source| SeccompError::Rule {
            path: format!("linux.seccomp.syscalls[{i}].args"),
            source,
        })
    };
    let rules = if same_index_twice {
        // runc's rule: one rule per condition, ORed.
        conditions
            .into_iter()
            .flatten()
            .map(|c| rule(vec![c]))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        match conditions.into_iter().collect::<Option<Vec<_>>>() {
            Some(all) => vec![rule(all)?],
            None => Vec::new(),
        }
    };
    Ok((!rules.is_empty()).then_some(When::Any(rules)))
}

/// One 64-bit argument comparison; `None` when it can never be true.
fn condition(
    arg: &LinuxSeccompArg,
    path: impl Fn() -> String,
) -> Result<Option<SeccompCondition>, SeccompError> {
    use LinuxSeccompOperator as Op;
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|&index| index <= 5)
        .ok_or_else(|| SeccompError::ArgIndex {
            path: format!("{}.index", path()),
            index: arg.index(),
        })?;
    let (op, value) = match arg.op() {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        Op::ScmpCmpMaskedEq => {
            let (mask, value) = (arg.value(), arg.value_two().unwrap_or(0));
            if value & !mask != 0 {
                tracing::debug!(
                    "seccomp: {}: valueTwo {value:#x} has bits outside the mask {mask:#x}, never matches",
                    path()
                );
                return Ok(None);
            }
            (SeccompCmpOp::MaskedEq(mask), value)
        }
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map(Some)
        .map_err(|source| SeccompError::Rule {
            path: path(),
            source,
        })
}
