//! Property tests of the names and numbers `process` translates
//! (`cargo test -p capsa-spec proptests`): capability and rlimit names,
//! rlimit values. Any value is accepted as itself or refused with one line
//! naming `config.json` and the JSON path; nothing panics.

use std::path::Path;

use proptest::prelude::*;
use serde_json::json;

use crate::parse;

/// Linux's capabilities, 0 to 40 (`linux/capability.h`).
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

fn config(process_extra: serde_json::Value) -> String {
    let mut process = json!({"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"});
    process
        .as_object_mut()
        .unwrap()
        .extend(process_extra.as_object().unwrap().clone());
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": process,
        "linux": {"namespaces": [{"type": "mount"}]}
    })
    .to_string()
}

/// A refusal is one line starting with the file and the JSON path.
fn one_line_at(msg: &str, at: &str) -> Result<(), TestCaseError> {
    prop_assert!(msg.starts_with(&format!("config.json: {at}")), "{msg}");
    prop_assert!(!msg.contains('\n'), "{msg}");
    Ok(())
}

fn name_like(known: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![3 => known, 1 => "[A-Za-z_]{0,24}", 1 => any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A capability name is accepted in its canonical `CAP_*` spelling or
    /// refused at its index.
    #[test]
    fn capability_names(name in name_like(prop_oneof![
            proptest::sample::select(CAPS).prop_map(str::to_string),
            "CAP_[A-Z_]{2,18}",
        ]), set in 0..5usize) {
        let set = ["bounding", "effective", "inheritable", "permitted", "ambient"][set];
        let text = config(json!({"capabilities": {set: ["CAP_CHOWN", name]}}));
        match parse(text.as_bytes(), Path::new("/b")) {
            Ok(spec) => {
                let caps = &spec.process.unwrap().capabilities;
                let list = match set {
                    "bounding" => &caps.bounding,
                    "effective" => &caps.effective,
                    "inheritable" => &caps.inheritable,
                    "permitted" => &caps.permitted,
                    _ => &caps.ambient,
                };
                prop_assert!(list.contains(&"CAP_CHOWN".to_string()));
                prop_assert!(list.contains(&name), "{name:?} became {list:?}");
                for cap in list {
                    prop_assert!(cap.starts_with("CAP_"), "{cap}");
                    prop_assert!(cap.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{cap}");
                }
            }
            Err(e) => {
                prop_assert!(!CAPS.contains(&name.as_str()), "{e}");
                one_line_at(&e.to_string(), &format!("process.capabilities.{set}[1]"))?;
            }
        }
    }

    /// Known rlimits with soft <= hard are kept as given; the rest is
    /// refused at the entry.
    #[test]
    fn rlimits(
        kind in name_like(proptest::sample::select(RLIMITS).prop_map(str::to_string)),
        soft: u64,
        hard in prop_oneof![any::<u64>(), Just(u64::MAX)],
    ) {
        let text = config(json!({"rlimits": [{"type": kind, "soft": soft, "hard": hard}]}));
        match parse(text.as_bytes(), Path::new("/b")) {
            Ok(spec) => {
                prop_assert!(RLIMITS.contains(&kind.as_str()) && soft <= hard);
                let r = &spec.process.unwrap().rlimits[0];
                prop_assert_eq!((r.kind.as_str(), r.soft, r.hard), (kind.as_str(), soft, hard));
            }
            Err(e) => {
                prop_assert!(!RLIMITS.contains(&kind.as_str()) || soft > hard);
                one_line_at(&e.to_string(), "process.rlimits[0]")?;
            }
        }
    }
}
