//! The validated configuration. Built only by `validate`; every field that the
//! spec requires is present, every path that must be absolute is absolute, and
//! every enumerated value is one capsa implements.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A `config.json` that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidSpec {
    pub oci_version: String,
    /// The bundle directory (absolute, as given to `create --bundle`).
    pub bundle: PathBuf,
    pub root: Root,
    /// The spec requires `process` only when `start` is called.
    pub process: Option<Process>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub mounts: Vec<Mount>,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
    pub linux: Linux,
}

/// `root`: the container's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Absolute: a relative `root.path` is resolved against the bundle.
    pub path: PathBuf,
    pub readonly: bool,
}

/// `process`: what runs in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub terminal: bool,
    /// `consoleSize` as (rows, columns), for a terminal.
    pub console_size: Option<(u16, u16)>,
    pub user: User,
    /// Never empty.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Absolute.
    pub cwd: PathBuf,
    pub capabilities: Capabilities,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `selinuxLabel`; see `Linux::mount_label`.
    pub selinux_label: Option<String>,
    /// `apparmorProfile`: the AppArmor profile the process execs into.
    #[serde(default)]
    pub apparmor_profile: Option<String>,
    /// `scheduler`: applied with sched_setattr(2) just before exec. Boxed:
    /// rare, and it would double the size of every `Process`.
    #[serde(default)]
    pub scheduler: Option<Box<Scheduler>>,
    /// `ioPriority`: applied with ioprio_set(2) just before exec.
    #[serde(default)]
    pub io_priority: Option<IoPriority>,
}

/// `process.scheduler`, checked as runc checks it: `nice` within -20..=19,
/// `priority` only for SCHED_FIFO/SCHED_RR (and then 1..=99), `runtime`,
/// `deadline` and `period` only for SCHED_DEADLINE. Absent numbers are 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduler {
    pub policy: SchedPolicy,
    pub nice: i32,
    pub priority: u32,
    /// Without duplicates, in the listed order.
    pub flags: Vec<SchedFlag>,
    /// Nanoseconds (SCHED_DEADLINE).
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// A scheduling policy of `process.scheduler.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedPolicy {
    Other,
    Fifo,
    Rr,
    Batch,
    Iso,
    Idle,
    Deadline,
}

impl SchedPolicy {
    /// The spec's name (`SCHED_OTHER`, ...).
    pub fn spec_name(self) -> &'static str {
        match self {
            SchedPolicy::Other => "SCHED_OTHER",
            SchedPolicy::Fifo => "SCHED_FIFO",
            SchedPolicy::Rr => "SCHED_RR",
            SchedPolicy::Batch => "SCHED_BATCH",
            SchedPolicy::Iso => "SCHED_ISO",
            SchedPolicy::Idle => "SCHED_IDLE",
            SchedPolicy::Deadline => "SCHED_DEADLINE",
        }
    }
}

/// A flag of `process.scheduler.flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedFlag {
    ResetOnFork,
    Reclaim,
    DlOverrun,
    KeepPolicy,
    KeepParams,
    UtilClampMin,
    UtilClampMax,
}

/// `process.ioPriority`: a class and a level within it (0 highest, 7 lowest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoPriority {
    pub class: IoPriorityClass,
    /// 0..=7.
    pub level: u8,
}

/// `process.ioPriority.class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoPriorityClass {
    /// IOPRIO_CLASS_RT
    Rt,
    /// IOPRIO_CLASS_BE
    Be,
    /// IOPRIO_CLASS_IDLE
    Idle,
}

/// `linux.personality`: the execution domain and the flags of
/// personality(2), by their `<sys/personality.h>` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personality {
    pub domain: PersonalityDomain,
    /// Known names only (`ADDR_NO_RANDOMIZE`, ...), without duplicates.
    pub flags: Vec<String>,
}

/// The flags of personality(2) capsa knows, by their `<sys/personality.h>`
/// names, with their values.
pub const PERSONALITY_FLAGS: &[(&str, u32)] = &[
    ("UNAME26", 0x0002_0000),
    ("ADDR_NO_RANDOMIZE", 0x0004_0000),
    ("FDPIC_FUNCPTRS", 0x0008_0000),
    ("MMAP_PAGE_ZERO", 0x0010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x0020_0000),
    ("READ_IMPLIES_EXEC", 0x0040_0000),
    ("ADDR_LIMIT_32BIT", 0x0080_0000),
    ("SHORT_INODE", 0x0100_0000),
    ("WHOLE_SECONDS", 0x0200_0000),
    ("STICKY_TIMEOUTS", 0x0400_0000),
    ("ADDR_LIMIT_3GB", 0x0800_0000),
];

/// `linux.personality.domain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonalityDomain {
    /// `LINUX` (PER_LINUX)
    Linux,
    /// `LINUX32` (PER_LINUX32): `uname -m` says i686 on x86_64.
    Linux32,
}

/// `process.user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub umask: Option<u32>,
    pub additional_gids: Vec<u32>,
}

/// `process.capabilities`: canonical names such as `CAP_CHOWN`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

/// One entry of `process.rlimits`; `kind` is the spec's name (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// One entry of `mounts`, in the listed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute, inside the container.
    pub destination: PathBuf,
    /// The filesystem type; `bind` when the options ask for a bind mount and
    /// no type was given.
    pub kind: String,
    /// Relative sources of bind mounts are resolved against the bundle.
    pub source: Option<PathBuf>,
    /// Raw options; the Linux crate turns them into flags and data.
    pub options: Vec<String>,
    /// `uidMappings` of an idmapped bind mount: empty, or given together
    /// with `gid_mappings`. Empty with an `idmap`/`ridmap` option means the
    /// container's own user namespace mappings.
    #[serde(default)]
    pub uid_mappings: Vec<IdMapping>,
    /// `gidMappings`, see `uid_mappings`.
    #[serde(default)]
    pub gid_mappings: Vec<IdMapping>,
}

impl Mount {
    /// True for `bind`/`rbind` mounts, whatever their type field says.
    pub fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    /// True when the mount gets an id mapping: an `idmap`/`ridmap` option,
    /// or mappings of its own (which runc applies even without the option).
    pub fn is_idmapped(&self) -> bool {
        !self.uid_mappings.is_empty() || self.options.iter().any(|o| o == "idmap" || o == "ridmap")
    }
}

/// `hooks`, each list in the order it must run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// One hook command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute.
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds; always > 0 when set.
    pub timeout: Option<u32>,
}

/// The kinds of namespace, in the order capsa enters or creates them (the user
/// namespace first, so that the others are owned by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NamespaceKind {
    User,
    Pid,
    Network,
    Ipc,
    Uts,
    Mount,
    Cgroup,
    Time,
}

impl NamespaceKind {
    /// The spec's name (`network`, `mount`, ...).
    pub fn spec_name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "network",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mount => "mount",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }

    /// The name of the namespace's file under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Network => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
            NamespaceKind::Mount => "mnt",
            NamespaceKind::Cgroup => "cgroup",
            NamespaceKind::Time => "time",
        }
    }
}

/// One entry of `linux.namespaces`: a new namespace, or one to join by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub kind: NamespaceKind,
    pub path: Option<PathBuf>,
}

/// One range of `linux.uidMappings` / `linux.gidMappings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// `linux.devices` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Absolute, inside the container.
    pub path: PathBuf,
    pub kind: DeviceKind,
    pub major: i64,
    pub minor: i64,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The type of a device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// One rule of `linux.resources.devices` (the device cgroup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// `a`, `c` or `b`.
    pub kind: char,
    /// `None` is the wildcard `*`.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// A subset of `rwm`.
    pub access: String,
}

/// Mount propagation of the root (`linux.rootfsPropagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    Shared,
    Slave,
    Private,
    Unbindable,
}

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linux {
    /// Sorted by [`NamespaceKind`] order, at most one of each kind.
    pub namespaces: Vec<Namespace>,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub cgroups_path: Option<String>,
    pub devices: Vec<Device>,
    pub device_rules: Vec<DeviceRule>,
    pub sysctl: BTreeMap<String, String>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub rootfs_propagation: Option<Propagation>,
    pub time_offsets: Vec<TimeOffset>,
    /// `linux.seccomp`, as oci-spec decoded it; checked by `validate` for
    /// what capsa supports, compiled to BPF by the Linux crate.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// `linux.mountLabel`: an SELinux context. Kept here; the Linux crate
    /// decides, knowing the host, whether it can apply it.
    pub mount_label: Option<String>,
    /// `linux.resources`, as oci-spec decoded it (`devices` included, also
    /// typed in `device_rules`); checked by `validate` for what needs no
    /// host, written to the cgroup files by the Linux crate.
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// `linux.personality`, applied just before exec (also by `exec`).
    #[serde(default)]
    pub personality: Option<Personality>,
    /// `linux.netDevices`: host interface name → how it is moved into the
    /// container's network namespace. Non-empty only with a network
    /// namespace in `namespaces`.
    #[serde(default)]
    pub net_devices: BTreeMap<String, NetDevice>,
}

/// One entry of `linux.netDevices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevice {
    /// The interface's name in the container: the entry's `name`, or the
    /// host name when it has none. May be a kernel template (`eth%d`).
    pub name: String,
}

/// `linux.timeOffsets` entry for a clock of the time namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeOffset {
    /// `monotonic` or `boottime`.
    pub clock: String,
    pub secs: i64,
    pub nanosecs: u32,
}

impl Linux {
    /// The entry for a namespace kind, if the config asks for one.
    pub fn namespace(&self, kind: NamespaceKind) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.kind == kind)
    }

    /// True when the container gets a new namespace of this kind (listed
    /// without a path).
    pub fn new_namespace(&self, kind: NamespaceKind) -> bool {
        self.namespace(kind).is_some_and(|n| n.path.is_none())
    }
}
