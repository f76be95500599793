//! A seccomp profile in Docker's own format (the default profile of Docker
//! and podman: `/usr/share/containers/seccomp.json` from Debian's
//! containers-common) turned into the OCI `linux.seccomp` object Docker hands
//! a runtime for a container with the default capabilities on this
//! architecture. Shared by the `seccomp_compile` example (`just bench`) and
//! the unit tests (`seccomp_arch_tests.rs`).

use serde_json::{json, Value};

/// Where Debian's containers-common puts the profile.
#[allow(dead_code)] // the example takes the path as an argument
pub const DEFAULT_PATH: &str = "/usr/share/containers/seccomp.json";

/// Docker's default capability set: entries that `includes` other
/// capabilities are not in a default container's profile.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn native_docker_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

fn native_scmp_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    }
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether an entry's `includes` / `excludes` keep it for a default
/// container on this architecture (Docker's rules).
fn applies(entry: &Value) -> bool {
    let arch = native_docker_arch();
    let inc = &entry["includes"];
    let exc = &entry["excludes"];
    let arches = strs(&inc["arches"]);
    let caps = strs(&inc["caps"]);
    (arches.is_empty() || arches.contains(&arch))
        && caps.iter().all(|c| DEFAULT_CAPS.contains(c))
        && !strs(&exc["arches"]).contains(&arch)
        && !strs(&exc["caps"]).iter().any(|c| DEFAULT_CAPS.contains(c))
}

/// The architectures Docker lists: the native one and its `archMap`
/// sub-architectures (x86 and x32 on x86_64, arm on aarch64).
fn architectures(docker: &Value) -> Vec<Value> {
    let native = native_scmp_arch();
    let mut arches = vec![json!(native)];
    for entry in docker["archMap"].as_array().into_iter().flatten() {
        if entry["architecture"] == native {
            arches.extend(
                strs(&entry["subArchitectures"])
                    .into_iter()
                    .map(Value::from),
            );
        }
    }
    arches
}

/// Docker's profile format to the OCI `linux.seccomp` object.
pub fn to_oci(docker: &Value) -> Value {
    let syscalls: Vec<Value> = docker["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| applies(e))
        .map(|e| {
            let mut e = e.clone();
            if let Some(o) = e.as_object_mut() {
                for key in ["includes", "excludes", "comment"] {
                    o.remove(key);
                }
                if o.get("name").is_some() {
                    let name = o.remove("name").unwrap_or_default();
                    o.insert("names".into(), json!([name]));
                }
            }
            e
        })
        .collect();
    let mut oci = json!({
        "defaultAction": docker["defaultAction"],
        "defaultErrnoRet": docker["defaultErrnoRet"],
        "architectures": architectures(docker),
        "syscalls": syscalls,
    });
    if oci["defaultErrnoRet"].is_null() {
        oci.as_object_mut().map(|o| o.remove("defaultErrnoRet"));
    }
    oci
}
