//! Reading each controller's statistics from its control files, the v1 and
//! v2 forms side by side.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::json::*;
use super::Dir;
use crate::cgroups::CgroupError;

/// The kernel's `USER_HZ`, the unit of v1 `cpuacct.stat`: 100 on every
/// Linux architecture (runc hard-codes it too).
pub(super) const USER_HZ: u64 = 100;

/// A control file's content; `None` when it does not exist.
pub(super) fn read(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

pub(super) fn bad(
    dir: &Path,
    file: &str,
    line: usize,
    reason: &'static str,
    text: &str,
) -> CgroupError {
    CgroupError::Parse {
        path: dir.join(file),
        line,
        reason,
        text: text.to_string(),
    }
}

/// A counter as the kernel writes it: `max` is `u64::MAX`, and a negative
/// number (v1's `-1` for "unlimited") reads as 0, as runc reads them.
pub(super) fn parse_counter(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return Some(u64::MAX);
    }
    text.parse::<u64>().ok().or_else(|| {
        text.strip_prefix('-')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| 0)
    })
}

/// A file holding one number; `None` when the file does not exist.
pub(super) fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    parse_counter(&text)
        .map(Some)
        .ok_or_else(|| bad(dir, file, 1, "expected a number", text.trim()))
}

/// A file of `key value` lines (`memory.stat`, `cpu.stat`,
/// `memory.events`, ...).
pub(super) fn key_values(
    dir: &Path,
    file: &str,
) -> Result<Option<BTreeMap<String, u64>>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    let mut map = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = line
            .split_once(' ')
            .and_then(|(key, value)| Some((key, parse_counter(value)?)));
        let Some((key, value)) = value else {
            return Err(bad(dir, file, index + 1, "expected \"key value\"", line));
        };
        map.insert(key.to_string(), value);
    }
    Ok(Some(map))
}

/// A file of whitespace-separated numbers (`cpuacct.usage_percpu`).
pub(super) fn numbers(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|_| bad(dir, file, 1, "expected numbers", n))
        })
        .collect()
}

/// v1 `cpuacct`: the total and per-CPU usage in nanoseconds, the user and
/// system split in clock ticks (`cpuacct.stat`), and that split per CPU
/// (`cpuacct.usage_all`, kernel 4.16+).
pub(super) fn cpu_usage_v1(dir: &Path) -> Result<CpuUsage, CgroupError> {
    let mut u = CpuUsage {
        total: read_u64(dir, "cpuacct.usage")?.unwrap_or(0),
        percpu: numbers(dir, "cpuacct.usage_percpu")?,
        ..CpuUsage::default()
    };
    if let Some(stat) = key_values(dir, "cpuacct.stat")? {
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / USER_HZ;
        u.user = stat.get("user").copied().map_or(0, ns);
        u.kernel = stat.get("system").copied().map_or(0, ns);
    }
    if let Some(text) = read(dir, "cpuacct.usage_all")? {
        // "cpu user system" then one line per CPU.
        for (index, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 3 {
                continue;
            }
            let (Ok(user), Ok(system)) = (fields[1].parse(), fields[2].parse()) else {
                return Err(bad(
                    dir,
                    "cpuacct.usage_all",
                    index + 1,
                    "expected \"cpu user system\" numbers",
                    line,
                ));
            };
            u.percpu_user.push(user);
            u.percpu_kernel.push(system);
        }
    }
    Ok(u)
}

/// v2 `cpu.stat`: `usage_usec`, `user_usec`, `system_usec` (present even
/// without the cpu controller). No per-CPU figures in v2.
pub(super) fn cpu_usage_v2(dir: &Path) -> Result<CpuUsage, CgroupError> {
    let Some(stat) = key_values(dir, "cpu.stat")? else {
        return Ok(CpuUsage::default());
    };
    let us = |key: &str| stat.get(key).map_or(0, |v| v.saturating_mul(1000));
    Ok(CpuUsage {
        total: us("usage_usec"),
        user: us("user_usec"),
        kernel: us("system_usec"),
        ..CpuUsage::default()
    })
}

/// `cpu.stat` of the cpu controller: v1 `throttled_time` is in
/// nanoseconds, v2 `throttled_usec` in microseconds.
pub(super) fn throttling(dir: Dir<'_>) -> Result<Throttling, CgroupError> {
    let (d, v2) = match dir {
        Dir::V1(d) => (d, false),
        Dir::V2(d) => (d, true),
    };
    let Some(stat) = key_values(d, "cpu.stat")? else {
        return Ok(Throttling::default());
    };
    let get = |key: &str| stat.get(key).copied().unwrap_or(0);
    Ok(Throttling {
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_time: if v2 {
            get("throttled_usec").saturating_mul(1000)
        } else {
            get("throttled_time")
        },
    })
}

/// A cpuset list such as `0-3,8,10-11`.
pub(super) fn cpu_list(dir: &Path, file: &str) -> Result<Vec<u16>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(Vec::new());
    };
    let text = text.trim();
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => a.parse::<u16>().ok().zip(b.parse::<u16>().ok()),
            None => part.parse::<u16>().ok().map(|n| (n, n)),
        };
        match range {
            Some((a, b)) if a <= b => out.extend(a..=b),
            _ => return Err(bad(dir, file, 1, "expected a CPU or node list", text)),
        }
    }
    Ok(out)
}

/// v1 `cpuset.*`, as runc reports them.
pub(super) fn cpuset_v1(dir: &Path) -> Result<CpuSet, CgroupError> {
    let num = |file: &str| read_u64(dir, file).map(Option::unwrap_or_default);
    let relax = match read(dir, "cpuset.sched_relax_domain_level")? {
        Some(text) => text.trim().parse::<i64>().map_err(|_| {
            bad(
                dir,
                "cpuset.sched_relax_domain_level",
                1,
                "expected a number",
                text.trim(),
            )
        })?,
        None => 0,
    };
    Ok(CpuSet {
        cpus: cpu_list(dir, "cpuset.cpus")?,
        cpu_exclusive: num("cpuset.cpu_exclusive")?,
        mems: cpu_list(dir, "cpuset.mems")?,
        mem_hardwall: num("cpuset.mem_hardwall")?,
        mem_exclusive: num("cpuset.mem_exclusive")?,
        memory_migrate: num("cpuset.memory_migrate")?,
        memory_spread_page: num("cpuset.memory_spread_page")?,
        memory_spread_slab: num("cpuset.memory_spread_slab")?,
        memory_pressure: num("cpuset.memory_pressure")?,
        sched_load_balance: num("cpuset.sched_load_balance")?,
        sched_relax_domain_level: relax,
    })
}

/// v1 `<prefix>.usage_in_bytes`, `.max_usage_in_bytes`, `.failcnt` and
/// `.limit_in_bytes` (`memory`, `memory.memsw`, `memory.kmem`,
/// `memory.kmem.tcp`). Empty when the usage file is missing (no swap
/// accounting, kernels without kmem files).
pub(super) fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    let Some(usage) = read_u64(dir, &format!("{prefix}.usage_in_bytes"))? else {
        return Ok(MemoryEntry::default());
    };
    let num =
        |suffix: &str| read_u64(dir, &format!("{prefix}.{suffix}")).map(Option::unwrap_or_default);
    Ok(MemoryEntry {
        usage,
        max: num("max_usage_in_bytes")?,
        failcnt: num("failcnt")?,
        limit: num("limit_in_bytes")?,
    })
}

/// v1 `memory`: `memory.stat` (nothing at all without it, as runc) and the
/// four usage entries.
pub(super) fn memory_v1(dir: &Path) -> Result<Memory, CgroupError> {
    let Some(raw) = key_values(dir, "memory.stat")? else {
        return Ok(Memory::default());
    };
    Ok(Memory {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: memory_entry_v1(dir, "memory")?,
        swap: memory_entry_v1(dir, "memory.memsw")?,
        kernel: memory_entry_v1(dir, "memory.kmem")?,
        kernel_tcp: memory_entry_v1(dir, "memory.kmem.tcp")?,
        raw,
    })
}

/// v2 `<prefix>.current`, `.max` and `.peak` (kernel 5.19+; `swap.peak`
/// 6.5+). cgroup2 has no failure counter here.
pub(super) fn memory_entry_v2(
    dir: &Path,
    prefix: &str,
) -> Result<Option<MemoryEntry>, CgroupError> {
    let Some(usage) = read_u64(dir, &format!("{prefix}.current"))? else {
        return Ok(None);
    };
    Ok(Some(MemoryEntry {
        usage,
        limit: read_u64(dir, &format!("{prefix}.max"))?.unwrap_or(u64::MAX),
        max: read_u64(dir, &format!("{prefix}.peak"))?.unwrap_or(0),
        failcnt: 0,
    }))
}

/// v2 `memory`: `cache` is the `file` pages, and `swap` is reported as
/// memory + swap like v1's memsw (runc does the same), so a reader sees
/// one meaning on both.
pub(super) fn memory_v2(dir: &Path) -> Result<Memory, CgroupError> {
    let Some(raw) = key_values(dir, "memory.stat")? else {
        return Ok(Memory::default());
    };
    let usage = memory_entry_v2(dir, "memory")?.unwrap_or_default();
    let swap = match memory_entry_v2(dir, "memory.swap")? {
        Some(s) => MemoryEntry {
            usage: s.usage.saturating_add(usage.usage),
            limit: if s.limit == u64::MAX {
                u64::MAX
            } else {
                s.limit.saturating_add(usage.limit)
            },
            max: s.max,
            failcnt: 0,
        },
        None => MemoryEntry::default(),
    };
    Ok(Memory {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        raw,
        ..Memory::default()
    })
}

/// `pids.current` and `pids.max` (the same in both versions; `max` is
/// reported as 0). A cgroup2 directory without the pids controller has
/// its processes counted from `cgroup.procs`, as runc does.
pub(super) fn pids(dir: Dir<'_>) -> Result<Pids, CgroupError> {
    let d = match dir {
        Dir::V1(d) | Dir::V2(d) => d,
    };
    let Some(current) = read_u64(d, "pids.current")? else {
        if let Dir::V2(d) = dir {
            if let Some(procs) = read(d, "cgroup.procs")? {
                let current = procs.lines().filter(|l| !l.trim().is_empty()).count();
                return Ok(Pids {
                    current: current as u64,
                    limit: 0,
                });
            }
        }
        return Ok(Pids::default());
    };
    let limit = match read_u64(d, "pids.max")? {
        Some(u64::MAX) | None => 0,
        Some(n) => n,
    };
    Ok(Pids { current, limit })
}

/// The eight tables of [`Blkio`].
#[derive(Debug, Clone, Copy)]
enum Table {
    ServiceBytes,
    Serviced,
    Queued,
    ServiceTime,
    WaitTime,
    Merged,
    Time,
    Sectors,
}

impl Blkio {
    fn table(&mut self, t: Table) -> &mut Vec<BlkioEntry> {
        match t {
            Table::ServiceBytes => &mut self.io_service_bytes_recursive,
            Table::Serviced => &mut self.io_serviced_recursive,
            Table::Queued => &mut self.io_queued_recursive,
            Table::ServiceTime => &mut self.io_service_time_recursive,
            Table::WaitTime => &mut self.io_wait_time_recursive,
            Table::Merged => &mut self.io_merged_recursive,
            Table::Time => &mut self.io_time_recursive,
            Table::Sectors => &mut self.sectors_recursive,
        }
    }
}

/// The v1 blkio file groups, best first, as runc reads them: the BFQ
/// scheduler's debug and plain statistics, CFQ's (kernels before 5.0),
/// then the throttling layer's, which every kernel keeps (recursive, then
/// this cgroup only). The first group whose first file has entries wins.
const V1_BLKIO_GROUPS: &[&[(&str, Table)]] = &[
    &[
        ("blkio.bfq.sectors_recursive", Table::Sectors),
        ("blkio.bfq.io_service_time_recursive", Table::ServiceTime),
        ("blkio.bfq.io_wait_time_recursive", Table::WaitTime),
        ("blkio.bfq.io_merged_recursive", Table::Merged),
        ("blkio.bfq.io_queued_recursive", Table::Queued),
        ("blkio.bfq.time_recursive", Table::Time),
        ("blkio.bfq.io_serviced_recursive", Table::Serviced),
        ("blkio.bfq.io_service_bytes_recursive", Table::ServiceBytes),
    ],
    &[
        ("blkio.bfq.io_serviced_recursive", Table::Serviced),
        ("blkio.bfq.io_service_bytes_recursive", Table::ServiceBytes),
    ],
    &[
        ("blkio.sectors_recursive", Table::Sectors),
        ("blkio.io_service_time_recursive", Table::ServiceTime),
        ("blkio.io_wait_time_recursive", Table::WaitTime),
        ("blkio.io_merged_recursive", Table::Merged),
        ("blkio.io_queued_recursive", Table::Queued),
        ("blkio.time_recursive", Table::Time),
        ("blkio.io_serviced_recursive", Table::Serviced),
        ("blkio.io_service_bytes_recursive", Table::ServiceBytes),
    ],
    &[
        ("blkio.throttle.io_serviced_recursive", Table::Serviced),
        (
            "blkio.throttle.io_service_bytes_recursive",
            Table::ServiceBytes,
        ),
    ],
    &[
        ("blkio.throttle.io_serviced", Table::Serviced),
        ("blkio.throttle.io_service_bytes", Table::ServiceBytes),
    ],
];

/// v1 `blkio`: see [`V1_BLKIO_GROUPS`]. Within the chosen group, a file
/// without entries ends the search, keeping what was read (runc's rule).
pub(super) fn blkio_v1(dir: &Path) -> Result<Blkio, CgroupError> {
    let mut out = Blkio::default();
    'groups: for group in V1_BLKIO_GROUPS {
        for (i, (file, table)) in group.iter().enumerate() {
            let entries = blkio_file(dir, file)?;
            if entries.is_empty() {
                if i == 0 {
                    continue 'groups;
                }
                return Ok(out);
            }
            *out.table(*table) = entries;
        }
        return Ok(out);
    }
    Ok(out)
}

/// One v1 blkio file: `MAJ:MIN OP VALUE` lines (`MAJ:MIN VALUE` in files
/// without operations) and a `Total N` line, which is skipped.
pub(super) fn blkio_file(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let Some(text) = read(dir, file)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        match fields.as_slice() {
            [] | ["Total", _] => continue,
            [major, minor, rest @ ..] if !rest.is_empty() => {
                let (op, value) = match rest {
                    [op, value] => (*op, *value),
                    _ => ("", rest[0]),
                };
                let parsed = (major.parse(), minor.parse(), value.parse());
                let (Ok(major), Ok(minor), Ok(value)) = parsed else {
                    return Err(bad(
                        dir,
                        file,
                        index + 1,
                        "expected \"major:minor [op] value\"",
                        line,
                    ));
                };
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
            _ => {
                return Err(bad(
                    dir,
                    file,
                    index + 1,
                    "expected \"major:minor [op] value\"",
                    line,
                ))
            }
        }
    }
    Ok(out)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N
/// dios=N` per device, mapped to v1's tables as runc does (bytes and
/// operations, `Read` and `Write`; the other keys have no v1 table).
pub(super) fn io_v2(dir: &Path) -> Result<Blkio, CgroupError> {
    let mut out = Blkio::default();
    let Some(text) = read(dir, "io.stat")? else {
        return Ok(out);
    };
    for (index, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next() else {
            continue;
        };
        let parsed = device
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        let Some((major, minor)) = parsed else {
            return Err(bad(
                dir,
                "io.stat",
                index + 1,
                "expected \"major:minor\"",
                line,
            ));
        };
        for item in fields {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (table, op) = match key {
                "rbytes" => (Table::ServiceBytes, "Read"),
                "wbytes" => (Table::ServiceBytes, "Write"),
                "rios" => (Table::Serviced, "Read"),
                "wios" => (Table::Serviced, "Write"),
                _ => continue,
            };
            let Ok(value) = value.parse() else {
                return Err(bad(dir, "io.stat", index + 1, "expected key=number", line));
            };
            out.table(table).push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    Ok(out)
}

/// The huge page sizes with a `hugetlb.<size>.<suffix>` file in `dir`
/// (not the `.rsvd.` reservation files), such as `2MB` and `1GB`.
pub(super) fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::ListDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            let size = size.strip_suffix('.')?;
            (!size.is_empty() && !size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

/// `hugetlb` per page size: v1 `usage_in_bytes`, `max_usage_in_bytes`,
/// `failcnt`; v2 `current` and the `max` count of `events` (v2 keeps no
/// peak).
pub(super) fn hugetlb(dir: Dir<'_>) -> Result<BTreeMap<String, Hugetlb>, CgroupError> {
    let mut out = BTreeMap::new();
    match dir {
        Dir::V1(d) => {
            for size in page_sizes(d, "usage_in_bytes")? {
                let num = |suffix: &str| {
                    read_u64(d, &format!("hugetlb.{size}.{suffix}")).map(Option::unwrap_or_default)
                };
                let entry = Hugetlb {
                    usage: num("usage_in_bytes")?,
                    max: num("max_usage_in_bytes")?,
                    failcnt: num("failcnt")?,
                };
                out.insert(size, entry);
            }
        }
        Dir::V2(d) => {
            for size in page_sizes(d, "current")? {
                let entry = Hugetlb {
                    usage: read_u64(d, &format!("hugetlb.{size}.current"))?.unwrap_or(0),
                    max: 0,
                    failcnt: key_values(d, &format!("hugetlb.{size}.events"))?
                        .and_then(|m| m.get("max").copied())
                        .unwrap_or(0),
                };
                out.insert(size, entry);
            }
        }
    }
    Ok(out)
}
