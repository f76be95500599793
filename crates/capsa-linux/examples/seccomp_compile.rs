//! How long capsa takes to compile a seccomp profile into BPF (run by
//! `just bench`). Takes a profile in Docker's own format (the default profile
//! of Docker and podman: `/usr/share/containers/seccomp.json` from Debian's
//! containers-common), turns it into the OCI form Docker hands a runtime for
//! a container with the default capabilities on this architecture, then
//! compiles it N times and prints one JSON line with the median and p95.
//!
//!   cargo run --release -p capsa-linux --example seccomp_compile -- PROFILE [N]

use std::time::Instant;

use serde_json::{json, Value};

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

/// Docker's profile format to the OCI `linux.seccomp` object.
fn to_oci(docker: &Value) -> Value {
    let native = if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    };
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
    json!({
        "defaultAction": docker["defaultAction"],
        "defaultErrnoRet": docker["defaultErrnoRet"],
        "architectures": [native],
        "syscalls": syscalls,
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: seccomp_compile PROFILE [ITERATIONS]");
    let n: usize = args.next().map_or(200, |s| s.parse().expect("ITERATIONS"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let docker: Value = serde_json::from_str(&text).expect("profile JSON");
    let mut oci = to_oci(&docker);
    if oci["defaultErrnoRet"].is_null() {
        oci.as_object_mut().map(|o| o.remove("defaultErrnoRet"));
    }
    let profile: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_value(oci.clone()).expect("the OCI form of the profile");
    let mut times = Vec::with_capacity(n);
    let mut programs = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        programs = capsa_linux::seccomp::compile(&profile).expect("compile the profile");
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{}",
        json!({
            "profile": path,
            "entries": oci["syscalls"].as_array().map_or(0, Vec::len),
            "filters": programs.len(),
            "instructions": programs.iter().map(|p| p.instructions.len()).sum::<usize>(),
            "iterations": n,
            "median_us": (pick(0.5) * 10.0).round() / 10.0,
            "p95_us": (pick(0.95) * 10.0).round() / 10.0,
        })
    );
}
