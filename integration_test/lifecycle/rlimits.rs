//! `process.rlimits` as the container process sees them.

use std::fs;

use capsa_integration_test::Ctx;
use serde_json::json;

/// `process.rlimits` are set on the container process: RLIMIT_NOFILE soft 512, hard
/// 1024, as `ulimit` and /proc/self/limits see them inside.
#[test]
fn rlimits_are_applied() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("rlimits");
    let out = b.with_out_dir();
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 }
        ])
    });
    b.sh("ulimit -n > /out/soft; ulimit -Hn > /out/hard; \
         grep 'Max open files' /proc/self/limits > /out/limits");
    ctx.create_and_start(&b, &id);
    ctx.wait_for_status(&id, "stopped");
    let read = |name: &str| {
        fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("the container wrote no /out/{name}: {e}"))
    };
    assert_eq!(read("soft").trim(), "512", "soft RLIMIT_NOFILE (ulimit -n)");
    assert_eq!(
        read("hard").trim(),
        "1024",
        "hard RLIMIT_NOFILE (ulimit -Hn)"
    );
    let limits: Vec<String> = read("limits")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        limits.get(3..5),
        Some(["512".to_string(), "1024".to_string()].as_slice()),
        "/proc/self/limits in the container: {limits:?}"
    );
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);
}
