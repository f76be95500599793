//! `update [--resources FILE|-] [flags] <id>`: new resource limits for a
//! container.
//!
//! * `--resources` takes `LinuxResources` JSON (containerd and CRI-O send
//!   it on stdin with `-`, podman in a file). As with runc, the
//!   single-value flags are then ignored (runc's help says so; capsa logs
//!   which ones at warning level).
//! * Otherwise runc's single-value flags (`--memory 64m`, `--cpu-quota`,
//!   `--pids-limit`, ...) make the `LinuxResources`, with runc's units and
//!   rules: 0 or an empty value leaves a setting alone, memory sizes are
//!   bytes or docker's `RAMInBytes` forms (`64m`, `1.5g`, `512KiB`), `-1`
//!   means no limit, and `--memory -1` without `--memory-swap` lifts the
//!   swap limit too. `--kernel-memory` and `--kernel-memory-tcp` are
//!   accepted and ignored; the Intel RDT flags are refused.
//!
//! Either way the library merges the values into the container's current
//! resources (see `capsa_linux::Runtime::update`).

use std::io::Read;
use std::process::ExitCode;

use capsa_linux::Runtime;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::{CommandError, CommandResult};
use crate::cli::UpdateArgs;

pub fn update(rt: &Runtime, a: UpdateArgs) -> CommandResult {
    refuse_rdt(&a)?;
    let resources = match &a.resources {
        Some(source) => {
            let ignored = flags_given(&a);
            if !ignored.is_empty() {
                tracing::warn!(
                    "update: --resources is given, so {} ignored (as runc does)",
                    ignored.join(", ") + if ignored.len() == 1 { " is" } else { " are" }
                );
            }
            read_resources(source)?
        }
        None => from_flags(&a)?,
    };
    rt.update(&a.id, &resources)?;
    Ok(ExitCode::SUCCESS)
}

/// runc refuses the Intel RDT flags on a host without RDT, and capsa has
/// no RDT support at all (with or without `--resources`).
fn refuse_rdt(a: &UpdateArgs) -> Result<(), CommandError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if set(&a.l3_cache_schema) {
        return Err(CommandError::Unsupported(
            "--l3-cache-schema (Intel RDT/CAT)",
        ));
    }
    if set(&a.mem_bw_schema) {
        return Err(CommandError::Unsupported("--mem-bw-schema (Intel RDT/MBA)"));
    }
    Ok(())
}

fn read_resources(source: &std::path::Path) -> Result<LinuxResources, CommandError> {
    let bytes = if source.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| CommandError::Io {
                what: "read the resources JSON from stdin".into(),
                source,
            })?;
        buf
    } else {
        std::fs::read(source).map_err(|e| CommandError::Io {
            what: format!("read --resources {}", source.display()),
            source: e,
        })?
    };
    Ok(capsa_spec::parse_resources(&bytes).map_err(capsa_linux::Error::from)?)
}

/// The single-value flags present on the command line.
fn flags_given(a: &UpdateArgs) -> Vec<&'static str> {
    [
        ("--blkio-weight", a.blkio_weight.is_some()),
        ("--cpu-period", a.cpu_period.is_some()),
        ("--cpu-quota", a.cpu_quota.is_some()),
        ("--cpu-burst", a.cpu_burst.is_some()),
        ("--cpu-share", a.cpu_share.is_some()),
        ("--cpu-rt-period", a.cpu_rt_period.is_some()),
        ("--cpu-rt-runtime", a.cpu_rt_runtime.is_some()),
        ("--cpuset-cpus", a.cpuset_cpus.is_some()),
        ("--cpuset-mems", a.cpuset_mems.is_some()),
        ("--cpu-idle", a.cpu_idle.is_some()),
        ("--memory", a.memory.is_some()),
        ("--memory-reservation", a.memory_reservation.is_some()),
        ("--memory-swap", a.memory_swap.is_some()),
        ("--kernel-memory", a.kernel_memory.is_some()),
        ("--kernel-memory-tcp", a.kernel_memory_tcp.is_some()),
        ("--pids-limit", a.pids_limit.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

/// The `LinuxResources` the single-value flags describe; settings not
/// given (or given as 0 / empty, runc's "unchanged") are left out.
fn from_flags(a: &UpdateArgs) -> Result<LinuxResources, CommandError> {
    let mut r = LinuxResources::default();

    let limit = memory_flag("memory", a.memory.as_deref())?;
    let reservation = memory_flag("memory-reservation", a.memory_reservation.as_deref())?;
    let mut swap = memory_flag("memory-swap", a.memory_swap.as_deref())?;
    // Unlimited memory with no word on swap: unlimited swap too (runc),
    // else the old memory+swap limit would stay below the new limit.
    if limit == Some(-1) && a.memory_swap.is_none() {
        swap = Some(-1);
    }
    if limit.is_some() || reservation.is_some() || swap.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(limit);
        m.set_reservation(reservation);
        m.set_swap(swap);
        r.set_memory(Some(m));
    }
    for (flag, value) in [
        ("--kernel-memory", &a.kernel_memory),
        ("--kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if value.is_some() {
            tracing::debug!(
                "{flag} is ignored: the kernel no longer supports kernel memory limits"
            );
        }
    }

    let nonzero_u = |v: Option<u64>| v.filter(|v| *v != 0);
    let nonzero_i = |v: Option<i64>| v.filter(|v| *v != 0);
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let mut cpu = LinuxCpu::default();
    cpu.set_shares(nonzero_u(a.cpu_share));
    cpu.set_quota(nonzero_i(a.cpu_quota));
    cpu.set_period(nonzero_u(a.cpu_period));
    cpu.set_burst(a.cpu_burst);
    cpu.set_realtime_runtime(nonzero_i(a.cpu_rt_runtime));
    cpu.set_realtime_period(nonzero_u(a.cpu_rt_period));
    cpu.set_cpus(nonempty(&a.cpuset_cpus));
    cpu.set_mems(nonempty(&a.cpuset_mems));
    cpu.set_idle(a.cpu_idle);
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }

    if let Some(limit) = nonzero_i(a.pids_limit) {
        let mut pids = LinuxPids::default();
        pids.set_limit(limit);
        r.set_pids(Some(pids));
    }
    if let Some(weight) = a.blkio_weight.filter(|w| *w != 0) {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(weight));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// A memory flag: `-1` (no limit), or a size for [`ram_in_bytes`]; 0
/// leaves the setting alone. runc's error wording.
fn memory_flag(name: &str, value: Option<&str>) -> Result<Option<i64>, CommandError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value == "-1" {
        return Ok(Some(-1));
    }
    let bytes = ram_in_bytes(value)
        .map_err(|e| CommandError::Usage(format!("invalid value for {name}: {e}")))?;
    Ok(Some(bytes).filter(|b| *b != 0))
}

/// docker's `units.RAMInBytes` as runc 1.1.5 vendors it (go-units 0.4):
/// a decimal number, an optional space, then an optional unit `k`, `m`,
/// `g`, `t` or `p` (any case, powers of 1024) optionally followed by `i`
/// and/or `b`: `1024`, `64m`, `1.5G`, `512KiB`, `10 MB`, `100b`.
/// Fractions of a byte are dropped.
pub fn ram_in_bytes(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let number_len = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, mut rest) = text.split_at(number_len);
    // \d+(\.\d+)*: digits first and last, no empty groups.
    if number.is_empty() || number.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut multiplier: f64 = 1.0;
    if let Some(c) = rest.chars().next() {
        let power = match c.to_ascii_lowercase() {
            'k' => Some(1),
            'm' => Some(2),
            'g' => Some(3),
            't' => Some(4),
            'p' => Some(5),
            _ => None,
        };
        if let Some(p) = power {
            multiplier = 1024_f64.powi(p);
            rest = &rest[1..];
        }
    }
    rest = rest.strip_prefix(['i', 'I']).unwrap_or(rest);
    rest = rest.strip_prefix(['b', 'B']).unwrap_or(rest);
    if !rest.is_empty() {
        return Err(invalid());
    }
    // Several dots pass the pattern but not the number parser (as in Go).
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = (value * multiplier).trunc();
    if bytes >= i64::MAX as f64 {
        return Err(format!("size out of range: '{text}'"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn sizes_as_docker_units_reads_them() {
        let ok = |s: &str, n: i64| assert_eq!(ram_in_bytes(s), Ok(n), "{s:?}");
        ok("1024", 1024);
        ok("0", 0);
        ok("64m", 64 << 20);
        ok("64M", 64 << 20);
        ok("64mb", 64 << 20);
        ok("64MiB", 64 << 20);
        ok("64 MB", 64 << 20);
        ok("1g", 1 << 30);
        ok("1.5g", 3 << 29);
        ok("2t", 2 << 40);
        ok("1p", 1 << 50);
        ok("10k", 10240);
        ok("100b", 100);
        ok("100B", 100);
        ok("5i", 5);
        ok("0.5k", 512);
        ok("1.7", 1);
        ok("64 ", 64);
        for bad in [
            "",
            "m",
            "-1",
            "-5m",
            "64q",
            "64mm",
            "64  m",
            ".5m",
            "5.m",
            "1.2.3",
            "1e3",
            "64kbb",
            " 64",
            "1000000000p",
        ] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?} must be refused");
        }
    }

    fn args(argv: &[&str]) -> UpdateArgs {
        let mut full = vec!["capsa", "update"];
        full.extend_from_slice(argv);
        full.push("c1");
        let cli = Cli::try_parse_from(crate::argv::normalize(
            full.into_iter().map(Into::into).collect(),
        ))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli.command {
            Command::Update(a) => *a,
            _ => unreachable!(),
        }
    }

    fn resources(argv: &[&str]) -> serde_json::Value {
        serde_json::to_value(from_flags(&args(argv)).unwrap()).unwrap()
    }

    #[test]
    fn flags_make_linux_resources() {
        assert_eq!(
            resources(&[
                "--memory",
                "64m",
                "--memory-reservation=32m",
                "--memory-swap",
                "128m",
                "--cpu-share",
                "512",
                "--cpu-quota",
                "-1",
                "--cpu-period",
                "100000",
                "--cpu-rt-runtime",
                "950",
                "--cpu-rt-period",
                "1000",
                "--cpuset-cpus",
                "0-1",
                "--cpuset-mems",
                "0",
                "--pids-limit",
                "-1",
                "--blkio-weight",
                "300",
            ]),
            json!({
                "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
                "cpu": {"shares": 512, "quota": -1, "period": 100000, "realtimeRuntime": 950,
                        "realtimePeriod": 1000, "cpus": "0-1", "mems": "0"},
                "pids": {"limit": -1},
                "blockIO": {"weight": 300}
            })
        );
    }

    #[test]
    fn single_dash_and_alias_spellings() {
        assert_eq!(
            resources(&["-memory", "1g", "--cpu-shares", "256", "-pids-limit=7"]),
            json!({
                "memory": {"limit": 1073741824},
                "cpu": {"shares": 256},
                "pids": {"limit": 7}
            })
        );
    }

    #[test]
    fn zero_and_empty_leave_settings_alone() {
        assert_eq!(
            resources(&[
                "--memory",
                "0",
                "--cpu-quota",
                "0",
                "--cpu-share",
                "0",
                "--pids-limit",
                "0",
                "--blkio-weight",
                "0",
                "--cpuset-cpus",
                ""
            ]),
            json!({})
        );
        assert_eq!(resources(&[]), json!({}));
    }

    #[test]
    fn unlimited_memory_lifts_swap_unless_swap_is_given() {
        assert_eq!(
            resources(&["--memory", "-1"]),
            json!({"memory": {"limit": -1, "swap": -1}})
        );
        assert_eq!(
            resources(&["--memory=-1", "--memory-swap", "1g"]),
            json!({"memory": {"limit": -1, "swap": 1073741824}})
        );
    }

    #[test]
    fn kernel_memory_is_accepted_and_ignored() {
        assert_eq!(
            resources(&["--kernel-memory", "10m", "--kernel-memory-tcp", "1m"]),
            json!({})
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = from_flags(&args(&["--memory", "64q"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for memory: invalid size: '64q'"
        );
        let err = from_flags(&args(&["--memory-swap", "-2"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for memory-swap: invalid size: '-2'"
        );
    }

    #[test]
    fn rdt_flags_are_refused_and_resources_win_over_flags() {
        let err = refuse_rdt(&args(&["--l3-cache-schema", "L3:0=f"])).unwrap_err();
        assert!(err.to_string().contains("Intel RDT/CAT"), "{err}");
        let err = refuse_rdt(&args(&["-r", "x.json", "--mem-bw-schema", "MB:0=70"])).unwrap_err();
        assert!(err.to_string().contains("Intel RDT/MBA"), "{err}");
        let a = args(&[
            "--resources",
            "x.json",
            "--memory",
            "1g",
            "--pids-limit",
            "5",
        ]);
        assert_eq!(flags_given(&a), ["--memory", "--pids-limit"]);
    }
}
