//! How long capsa takes to compile a seccomp profile into BPF (run by
//! `just bench`). Takes a profile in Docker's own format (the default profile
//! of Docker and podman: `/usr/share/containers/seccomp.json` from Debian's
//! containers-common), turns it into the OCI form Docker hands a runtime for
//! a container with the default capabilities on this architecture (with its
//! `archMap` sub-architectures: x86 and x32 on x86_64), then compiles it N
//! times and prints one JSON line with the median and p95.
//!
//!   cargo run --release -p capsa-linux --example seccomp_compile -- PROFILE [N]

use std::time::Instant;

use serde_json::{json, Value};

#[path = "../src/seccomp_fixtures/docker_profile.rs"]
mod docker_profile;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: seccomp_compile PROFILE [ITERATIONS]");
    let n: usize = args.next().map_or(200, |s| s.parse().expect("ITERATIONS"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let docker: Value = serde_json::from_str(&text).expect("profile JSON");
    let oci = docker_profile::to_oci(&docker);
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
