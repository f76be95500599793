//! `--version`, `features` and `spec`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use capsa_integration_test::{capsa_only, path_str, runtime};
use serde_json::Value;

use crate::raw;

#[test]
fn version_first_line() {
    let rt = runtime();
    let out = raw(&["--version"], None);
    out.assert_success();
    let first = out.stdout.lines().next().unwrap_or_default();
    // go-runc parses `runc version <v>`; the same shape with capsa's own name.
    let want = format!("{} version ", rt.name());
    assert!(
        first.starts_with(&want) && first.len() > want.len(),
        "first line must start with {want:?} and carry a version:\n{out}"
    );
}

#[test]
fn features_is_valid_json_on_stdout_only() {
    let out = raw(&["features"], None);
    out.assert_success();
    // CRI-O reads it with CombinedOutput: anything on stderr breaks the JSON.
    assert!(out.stderr.is_empty(), "features wrote to stderr:\n{out}");
    let f: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("features output is not JSON ({e}):\n{out}"));
    for key in ["ociVersionMin", "ociVersionMax"] {
        assert!(
            f[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} must be a non-empty string: {f}"
        );
    }
    // containerd dereferences `linux` without a nil check.
    assert!(f["linux"].is_object(), "linux must be an object: {f}");
    let ns: BTreeSet<&str> = f["linux"]["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("linux.namespaces must be an array: {f}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["pid", "network", "mount", "ipc", "uts", "user", "cgroup"] {
        assert!(ns.contains(want), "linux.namespaces lacks {want}: {ns:?}");
    }
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap_or_else(|| panic!("mountOptions must be an array: {f}"))
        .iter()
        .map(|o| {
            o.as_str()
                .unwrap_or_else(|| panic!("mountOptions holds a non-string: {f}"))
        })
        .collect();
    if capsa_only("capsa advertises rro (mount_setattr) and idmapped mounts (idmap, ridmap)") {
        for want in ["rro", "idmap", "ridmap"] {
            assert!(opts.contains(&want), "mountOptions lacks {want}: {opts:?}");
        }
        // containerd reads this to decide whether it may ask for idmapped mounts.
        assert_eq!(
            f.pointer("/linux/mountExtensions/idmap/enabled"),
            Some(&Value::Bool(true)),
            "linux.mountExtensions.idmap.enabled must be true: {f}"
        );
    }
}

/// Checks a `spec`-generated config: process.args ["sh"], root.path "rootfs", and the
/// six default namespaces. Returns the parsed config.
fn check_default_spec(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("spec did not write {}: {e}", path.display()));
    let c: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()));
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]), "{c}");
    assert_eq!(c["root"]["path"], "rootfs", "{c}");
    let ns: BTreeSet<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap_or_else(|| panic!("linux.namespaces must be an array: {c}"))
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(want), "default namespaces lack {want}: {ns:?}");
    }
    // runc 1.2 added the cgroup namespace to the default spec; runc 1.1.5 has five.
    if capsa_only("the default spec has the six namespaces of runc 1.2, cgroup included") {
        assert!(
            ns.contains("cgroup"),
            "default namespaces lack cgroup: {ns:?}"
        );
        assert_eq!(ns.len(), 6, "default namespaces: {ns:?}");
    }
    c
}

#[test]
fn spec_writes_config_into_the_bundle_or_the_cwd() {
    let dir = tempfile::Builder::new()
        .prefix("capsa-it-spec-")
        .tempdir()
        .expect("temp dir");
    let bundle = dir.path().join("bundle");
    let cwd = dir.path().join("cwd");
    fs::create_dir(&bundle).expect("mkdir bundle");
    fs::create_dir(&cwd).expect("mkdir cwd");

    // --bundle DIR, run from another directory: only DIR gets a config.json.
    raw(&["spec", "--bundle", path_str(&bundle)], Some(&cwd)).assert_silent_success();
    let cfg = bundle.join("config.json");
    check_default_spec(&cfg);
    assert!(
        !cwd.join("config.json").exists(),
        "spec --bundle also wrote into the cwd"
    );

    // A second spec refuses to overwrite and leaves the file as it was.
    fs::write(&cfg, "{\"marker\": true}\n").expect("rewrite config.json");
    let out = raw(&["spec", "--bundle", path_str(&bundle)], Some(&cwd));
    out.assert_error_line();
    assert_eq!(
        fs::read_to_string(&cfg).expect("config.json"),
        "{\"marker\": true}\n",
        "a refused spec changed config.json"
    );

    // No --bundle: the cwd.
    raw(&["spec"], Some(&cwd)).assert_silent_success();
    let before = fs::read_to_string(cwd.join("config.json")).expect("config.json in cwd");
    check_default_spec(&cwd.join("config.json"));
    raw(&["spec"], Some(&cwd)).assert_error_line();
    assert_eq!(
        fs::read_to_string(cwd.join("config.json")).expect("config.json in cwd"),
        before,
        "a refused spec changed config.json"
    );
}

/// The real uid (`Uid:`) or gid (`Gid:`) of this process, from /proc/self/status.
fn own_id(field: &str) -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"))
}

#[test]
fn spec_rootless_maps_root_to_the_caller() {
    let dir = tempfile::Builder::new()
        .prefix("capsa-it-spec-rootless-")
        .tempdir()
        .expect("temp dir");
    raw(
        &["spec", "--rootless", "--bundle", path_str(dir.path())],
        None,
    )
    .assert_silent_success();
    let text = fs::read_to_string(dir.path().join("config.json")).expect("config.json");
    let c: Value = serde_json::from_str(&text).expect("config.json is JSON");
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(ns.contains(&"user"), "no user namespace: {ns:?}");
    let (uid, gid) = (own_id("Uid:"), own_id("Gid:"));
    for (key, host) in [("uidMappings", uid), ("gidMappings", gid)] {
        let maps = c["linux"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no linux.{key}: {c}"));
        assert!(
            maps.iter().any(|m| m["containerID"] == 0
                && m["hostID"] == u64::from(host)
                && m["size"].as_u64().is_some_and(|s| s >= 1)),
            "linux.{key} must map 0 to the caller's id {host}: {maps:?}"
        );
    }
}
