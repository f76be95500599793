//! ValidSpec + create options → the plan the container init carries out.
//!
//! Pure: it reads no file and makes no syscall, so every translation (mount
//! options, namespace order, capability and rlimit names) is unit-tested. The
//! init and the parent read only this plan, never the spec.

use std::path::PathBuf;
use std::str::FromStr;

use capsa_spec::{Device, Hook, IdMapping, NamespaceKind, Propagation, TimeOffset, ValidSpec};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;

use crate::cgroups::ContainerCgroup;
use crate::mount_options::{self, ParsedOptions};

/// A config that is valid JSON and valid per the spec, but that this host or
/// capsa cannot carry out.
#[derive(Debug, thiserror::Error)]
#[error("config.json: {}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct PlanError {
    /// The JSON path, or empty when `message` names it already.
    pub path: String,
    pub message: String,
}

fn plan_err(path: impl Into<String>, message: impl Into<String>) -> PlanError {
    PlanError {
        path: path.into(),
        message: message.into(),
    }
}

/// What capsa needs to know about the host to plan, detected once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// SELinux is enabled: labels in the config would have to be applied.
    pub selinux: bool,
}

impl HostFacts {
    /// Reads the facts under `sys_root` (`/sys` on a real host).
    pub fn detect(sys_root: &std::path::Path) -> Self {
        HostFacts {
            selinux: sys_root.join("fs/selinux/enforce").exists(),
        }
    }
}

/// SELinux labels: on a host without SELinux there is nothing to label and
/// they are ignored (as crun does; runc fails with EINVAL passing `context=`
/// to the kernel); with SELinux, capsa cannot apply them yet and says so.
fn check_labels(
    spec: &ValidSpec,
    process: Option<&capsa_spec::Process>,
    host: &HostFacts,
) -> Result<(), PlanError> {
    let labels = [
        ("linux.mountLabel", spec.linux.mount_label.as_ref()),
        (
            "process.selinuxLabel",
            process.and_then(|p| p.selinux_label.as_ref()),
        ),
    ];
    for (path, label) in labels {
        if let Some(label) = label {
            if host.selinux {
                return Err(plan_err(
                    path,
                    "SELinux labels are not supported by capsa yet",
                ));
            }
            tracing::debug!("{path} {label:?} ignored: SELinux is not enabled on this host");
        }
    }
    Ok(())
}

/// What the caller of `create` asked for beyond the bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    /// Absolute.
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// Where the pty master goes when `process.terminal` is set.
    pub console: Option<Console>,
    /// `--pidfd-socket`: a pidfd of the init is sent there once created.
    pub pidfd_socket: Option<PathBuf>,
    /// capsa's own `NOTIFY_SOCKET` (systemd's): the container gets a socket
    /// of its own, which `start` proxies.
    pub notify_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N-1 to the container process.
    pub preserve_fds: u32,
    /// systemd socket activation: fds 3 .. 3+N-1 are listening sockets
    /// (the preserved fds follow them); the process gets `LISTEN_FDS=N` and
    /// `LISTEN_PID=1`, as runc does.
    pub listen_fds: u32,
}

/// The receiver of a terminal's master side.
#[derive(Debug, Clone)]
pub enum Console {
    /// `--console-socket`: a listening unix socket of the caller.
    Socket(PathBuf),
    /// An already connected socket of ours (a foreground `run` or `exec`
    /// that relays the terminal itself).
    Connected(std::sync::Arc<std::os::fd::OwnedFd>),
}

impl Console {
    /// A connected socket to send the pty master over.
    pub(crate) fn connect(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        match self {
            Console::Socket(path) => Ok(std::os::unix::net::UnixStream::connect(path)?.into()),
            Console::Connected(fd) => fd.try_clone(),
        }
    }
}

/// How the init gets its namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Created by clone(2) together with the init.
    pub clone_flags: CloneFlags,
    /// Joined by setns(2), in order (user first).
    pub join: Vec<(NamespaceKind, PathBuf)>,
    /// Created by unshare(2) after the joins (user first, on its own).
    pub unshare_user: bool,
    pub unshare_flags: CloneFlags,
    /// A pid or time namespace set up by setns/unshare applies to children
    /// only: the init must fork once more.
    pub fork_after: bool,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub time_offsets: Vec<TimeOffset>,
    /// The container has its own user namespace (new or joined): devices are
    /// bind-mounted, since mknod is not allowed there.
    pub in_user_ns: bool,
    /// The container has its own pid namespace; without one, `kill` of the
    /// init leaves its other processes alive (so delete kills them all).
    pub own_pid_ns: bool,
    pub new_mount_ns: bool,
    pub new_cgroup_ns: bool,
    pub new_net_ns: bool,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        NamespacePlan {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            unshare_user: false,
            unshare_flags: CloneFlags::empty(),
            fork_after: false,
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
            time_offsets: Vec::new(),
            in_user_ns: false,
            own_pid_ns: false,
            new_mount_ns: false,
            new_cgroup_ns: false,
            new_net_ns: false,
        }
    }
}

/// One `mounts[]` entry, ready to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    /// Index in `mounts`, for error messages.
    pub index: usize,
    /// Absolute path inside the container.
    pub destination: PathBuf,
    pub kind: String,
    pub source: Option<PathBuf>,
    pub options: ParsedOptions,
    /// An idmapped bind mount (`idmap`, `ridmap`, or mappings of its own):
    /// `create` makes it, detached, before it forks the init (see
    /// `init/idmap.rs`), and the init attaches it at the destination.
    pub idmap: Option<IdmapPlan>,
}

/// How a bind mount is idmapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdmapPlan {
    /// `ridmap`: every mount of the bound subtree gets the mapping, not only
    /// the top one.
    pub recursive: bool,
    pub userns: IdmapUserns,
}

/// The user namespace whose mappings an idmapped mount takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdmapUserns {
    /// Made for the mount with these mappings: the mount's own, or the
    /// container's new user namespace's.
    Mappings {
        uid: Vec<IdMapping>,
        gid: Vec<IdMapping>,
    },
    /// The user namespace the container joins (`linux.namespaces[].path`),
    /// for a mount without mappings of its own (as runc).
    Path(PathBuf),
}

/// The container's process.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub caps: CapsPlan,
    pub rlimits: Vec<(Resource, String, u64, u64)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    /// `process.scheduler` as sched_setattr(2) takes it, with the policy's
    /// name for errors.
    pub scheduler: Option<(crate::sys::sched::SchedAttr, &'static str)>,
    /// `process.ioPriority`: (class number, level, class name).
    pub io_priority: Option<(u32, u32, &'static str)>,
    /// `linux.personality`: the persona for personality(2).
    pub personality: Option<u32>,
}

/// Capability sets, as the `caps` crate names them.
#[derive(Debug, Clone, Default)]
pub struct CapsPlan {
    pub bounding: caps::CapsHashSet,
    pub effective: caps::CapsHashSet,
    pub inheritable: caps::CapsHashSet,
    pub permitted: caps::CapsHashSet,
    pub ambient: caps::CapsHashSet,
}

/// Everything the container init does, in the order it does it.
#[derive(Debug, Clone)]
pub struct InitPlan {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub namespaces: NamespacePlan,
    pub mounts: Vec<MountStep>,
    /// The container's cgroup, for the `/sys/fs/cgroup` mount.
    pub cgroup: ContainerCgroup,
    /// The container's `/dev` is a fresh tmpfs: create the default devices.
    pub default_devices: bool,
    pub devices: Vec<Device>,
    pub no_pivot: bool,
    pub root_readonly: bool,
    pub rootfs_propagation: MsFlags,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub session_keyring: Option<String>,
    pub preserve_fds: u32,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
    pub process: Option<ProcessPlan>,
    /// `linux.seccomp` compiled, installed in order by the init.
    pub seccomp: Vec<crate::seccomp::BpfProgram>,
}

/// What a process started by `exec` does: join the container init's
/// namespaces, then the same process setup as the init's.
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// `/proc/<init>/ns/<kind>` of every namespace the container has, user
    /// first.
    pub join: Vec<(NamespaceKind, PathBuf)>,
    /// `/proc/<init>/root`: the container's root, whatever way it was entered.
    pub root: PathBuf,
    pub process: ProcessPlan,
    pub seccomp: Vec<crate::seccomp::BpfProgram>,
    pub preserve_fds: u32,
}

/// Builds the plan of an `exec` into the container whose init is
/// `init_pid` (seen through `proc_root`).
pub fn build_exec(
    spec: &ValidSpec,
    p: &capsa_spec::Process,
    init_pid: i32,
    proc_root: &std::path::Path,
    preserve_fds: u32,
    host: &HostFacts,
) -> Result<ExecPlan, PlanError> {
    check_labels(spec, Some(p), host)?;
    let base = proc_root.join(init_pid.to_string());
    let join = spec
        .linux
        .namespaces
        .iter()
        .map(|ns| (ns.kind, base.join("ns").join(ns.kind.proc_name())))
        .collect();
    let seccomp = match &spec.linux.seccomp {
        Some(sc) => crate::seccomp::compile(sc).map_err(|e| plan_err("", e.to_string()))?,
        None => Vec::new(),
    };
    Ok(ExecPlan {
        join,
        root: base.join("root"),
        process: process(p, spec.linux.personality.as_ref())?,
        seccomp,
        preserve_fds,
    })
}

/// runc's rules (and wording) for terminals of detached processes: the
/// master must go somewhere, and a socket without a terminal is a mistake.
/// A `Connected` console is only offered (a foreground command relays a
/// terminal if there is one), so it is never a mistake.
pub fn check_console(terminal: bool, console: Option<&Console>) -> Result<(), PlanError> {
    match (terminal, console) {
        (true, None) => Err(plan_err(
            "process.terminal",
            "cannot allocate tty if runc will detach without setting console socket",
        )),
        (false, Some(Console::Socket(_))) => Err(plan_err(
            "process.terminal",
            "cannot use console socket if runc will not detach or allocate tty",
        )),
        _ => Ok(()),
    }
}

/// The device cgroup rules: the config's, then an allow rule for every node
/// of `linux.devices`, as runc does, so that the init can mknod what the
/// config asks for and the container can use it. No rules at all means no
/// device cgroup restrictions (as the spec says).
pub fn device_cgroup_rules(spec: &ValidSpec) -> Vec<capsa_spec::DeviceRule> {
    let mut rules = spec.linux.device_rules.clone();
    if rules.is_empty() {
        return rules;
    }
    for d in &spec.linux.devices {
        let kind = match d.kind {
            capsa_spec::DeviceKind::Char => 'c',
            capsa_spec::DeviceKind::Block => 'b',
            capsa_spec::DeviceKind::Fifo => continue,
        };
        rules.push(capsa_spec::DeviceRule {
            allow: true,
            kind,
            major: Some(d.major),
            minor: Some(d.minor),
            access: "rwm".into(),
        });
    }
    rules
}

/// Builds the init's plan.
pub fn build(
    spec: &ValidSpec,
    opts: &CreateOptions,
    cgroup: ContainerCgroup,
    host: &HostFacts,
) -> Result<InitPlan, PlanError> {
    check_labels(spec, spec.process.as_ref(), host)?;
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    check_console(terminal, opts.console.as_ref())?;
    let namespaces = namespaces(spec);
    let mounts = spec
        .mounts
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let mut options = mount_options::parse(&m.options);
            let idmap = idmap(index, m, &spec.linux, &options)?;
            // An idmapped mount is a bind mount (validated), also when only
            // its type says so.
            options.bind |= idmap.is_some();
            Ok(MountStep {
                index,
                destination: m.destination.clone(),
                kind: m.kind.clone(),
                source: m.source.clone(),
                options,
                idmap,
            })
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let default_devices = mounts
        .iter()
        .any(|m| m.destination == std::path::Path::new("/dev") && !m.options.bind);
    let mut process = spec
        .process
        .as_ref()
        .map(|p| process(p, spec.linux.personality.as_ref()))
        .transpose()?;
    if let (Some(p), n @ 1..) = (process.as_mut(), opts.listen_fds) {
        p.env
            .retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        p.env.push(format!("LISTEN_FDS={n}"));
        p.env.push("LISTEN_PID=1".to_string());
    }
    // Compiled here, in the parent, so that a bad profile fails before
    // anything exists, and the init only has to install it.
    let seccomp = match &spec.linux.seccomp {
        Some(sc) => crate::seccomp::compile(sc).map_err(|e| plan_err("", e.to_string()))?,
        None => Vec::new(),
    };
    Ok(InitPlan {
        id: opts.id.clone(),
        bundle: opts.bundle.clone(),
        rootfs: spec.root.path.clone(),
        mounts,
        cgroup,
        default_devices,
        devices: spec.linux.devices.clone(),
        no_pivot: opts.no_pivot,
        root_readonly: spec.root.readonly,
        rootfs_propagation: match spec.linux.rootfs_propagation {
            None | Some(Propagation::Slave) => MsFlags::MS_SLAVE,
            Some(Propagation::Shared) => MsFlags::MS_SHARED,
            Some(Propagation::Private) => MsFlags::MS_PRIVATE,
            Some(Propagation::Unbindable) => MsFlags::MS_UNBINDABLE,
        } | MsFlags::MS_REC,
        masked_paths: spec.linux.masked_paths.clone(),
        readonly_paths: spec.linux.readonly_paths.clone(),
        hostname: spec.hostname.clone(),
        domainname: spec.domainname.clone(),
        sysctl: spec
            .linux
            .sysctl
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        session_keyring: (!opts.no_new_keyring).then(|| format!("_ses.{}", opts.id)),
        preserve_fds: opts.preserve_fds + opts.listen_fds,
        create_container_hooks: spec.hooks.create_container.clone(),
        start_container_hooks: spec.hooks.start_container.clone(),
        namespaces,
        process,
        seccomp,
    })
}

/// runc 1.2's rules: the mount's own mappings if it has some, else those of
/// the container's user namespace (new: its configured mappings; joined: the
/// namespace itself).
fn idmap(
    index: usize,
    m: &capsa_spec::Mount,
    linux: &capsa_spec::Linux,
    options: &ParsedOptions,
) -> Result<Option<IdmapPlan>, PlanError> {
    if !m.is_idmapped() {
        return Ok(None);
    }
    let userns = if !m.uid_mappings.is_empty() {
        IdmapUserns::Mappings {
            uid: m.uid_mappings.clone(),
            gid: m.gid_mappings.clone(),
        }
    } else {
        match linux.namespace(NamespaceKind::User) {
            Some(capsa_spec::Namespace {
                path: Some(path), ..
            }) => IdmapUserns::Path(path.clone()),
            Some(_) => IdmapUserns::Mappings {
                uid: linux.uid_mappings.clone(),
                gid: linux.gid_mappings.clone(),
            },
            // capsa-spec refuses this already.
            None => {
                return Err(plan_err(
                    format!("mounts[{index}].options"),
                    "an idmapped mount needs uidMappings and gidMappings or a user namespace",
                ))
            }
        }
    };
    Ok(Some(IdmapPlan {
        recursive: options.idmap == mount_options::Idmap::Recursive,
        userns,
    }))
}

/// The `CLONE_NEW*` flag of a namespace kind.
pub(crate) fn clone_flag(kind: NamespaceKind) -> CloneFlags {
    match kind {
        NamespaceKind::User => CloneFlags::CLONE_NEWUSER,
        NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
        NamespaceKind::Network => CloneFlags::CLONE_NEWNET,
        NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
        NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
        NamespaceKind::Mount => CloneFlags::CLONE_NEWNS,
        NamespaceKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        NamespaceKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Chooses between the fast path (every new namespace made by the one clone
/// that makes the init) and the general one (join by path, then unshare, then
/// fork once more where pid or time namespaces need it).
fn namespaces(spec: &ValidSpec) -> NamespacePlan {
    let linux = &spec.linux;
    let mut new = CloneFlags::empty();
    let mut join = Vec::new();
    for ns in &linux.namespaces {
        match &ns.path {
            Some(p) => join.push((ns.kind, p.clone())),
            None => new |= clone_flag(ns.kind),
        }
    }
    let new_user = new.contains(CloneFlags::CLONE_NEWUSER);
    let new_time = linux.new_namespace(NamespaceKind::Time);
    let joins = |k| join.iter().any(|(kind, _)| *kind == k);
    // clone(2) cannot make a time namespace (its flag is CSIGNAL's bits), a
    // joined user namespace must come before any new namespace, and a new user
    // namespace would leave us without rights over namespaces joined after it.
    let joins_user_or_pid = joins(NamespaceKind::User) || joins(NamespaceKind::Pid);
    let new_user_with_joins = new_user && !join.is_empty();
    let fast = !(new_time || joins_user_or_pid || new_user_with_joins);
    let mut plan = NamespacePlan {
        join,
        uid_mappings: linux.uid_mappings.clone(),
        gid_mappings: linux.gid_mappings.clone(),
        time_offsets: linux.time_offsets.clone(),
        in_user_ns: linux.namespace(NamespaceKind::User).is_some(),
        own_pid_ns: linux.namespace(NamespaceKind::Pid).is_some(),
        new_mount_ns: linux.namespace(NamespaceKind::Mount).is_some(),
        new_cgroup_ns: linux.new_namespace(NamespaceKind::Cgroup),
        new_net_ns: linux.new_namespace(NamespaceKind::Network),
        ..NamespacePlan::default()
    };
    // The cgroup namespace is always unshared by the init, after the parent
    // has moved it into the container's cgroup: its root is the cgroup it is
    // made in.
    let new_cgroup = new & CloneFlags::CLONE_NEWCGROUP;
    if fast {
        plan.clone_flags = new - new_cgroup;
        plan.unshare_flags = new_cgroup;
    } else {
        plan.unshare_user = new_user;
        plan.unshare_flags = new - CloneFlags::CLONE_NEWUSER;
        plan.fork_after = new.contains(CloneFlags::CLONE_NEWPID)
            || new_time
            || plan.join.iter().any(|(k, _)| *k == NamespaceKind::Pid);
    }
    plan
}

fn process(
    p: &capsa_spec::Process,
    personality: Option<&capsa_spec::Personality>,
) -> Result<ProcessPlan, PlanError> {
    let set = |names: &[String], field: &str| -> Result<caps::CapsHashSet, PlanError> {
        names
            .iter()
            .map(|n| {
                caps::Capability::from_str(n).map_err(|_| {
                    plan_err(
                        format!("process.capabilities.{field}"),
                        format!("capability {n} is not known to capsa"),
                    )
                })
            })
            .collect()
    };
    let c = &p.capabilities;
    let caps = CapsPlan {
        bounding: set(&c.bounding, "bounding")?,
        effective: set(&c.effective, "effective")?,
        inheritable: set(&c.inheritable, "inheritable")?,
        permitted: set(&c.permitted, "permitted")?,
        ambient: set(&c.ambient, "ambient")?,
    };
    let rlimits = p
        .rlimits
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let res = rlimit_resource(&r.kind).ok_or_else(|| {
                plan_err(
                    format!("process.rlimits[{i}].type"),
                    format!("unknown rlimit {:?}", r.kind),
                )
            })?;
            Ok((res, r.kind.clone(), r.soft, r.hard))
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    Ok(ProcessPlan {
        terminal: p.terminal,
        console_size: p.console_size,
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask.unwrap_or(0o022),
        caps,
        rlimits,
        no_new_privileges: p.no_new_privileges,
        oom_score_adj: p.oom_score_adj,
        scheduler: p.scheduler.as_deref().map(sched_attr),
        io_priority: p.io_priority.map(|io| {
            use capsa_spec::IoPriorityClass as C;
            let (class, name) = match io.class {
                C::Rt => (1, "IOPRIO_CLASS_RT"),
                C::Be => (2, "IOPRIO_CLASS_BE"),
                C::Idle => (3, "IOPRIO_CLASS_IDLE"),
            };
            (class, u32::from(io.level), name)
        }),
        personality: personality.map(persona),
    })
}

/// runc's translation of `process.scheduler` (`configs.ToSchedAttr`).
fn sched_attr(s: &capsa_spec::Scheduler) -> (crate::sys::sched::SchedAttr, &'static str) {
    use capsa_spec::{SchedFlag as F, SchedPolicy as P};
    let policy = match s.policy {
        P::Other => 0,
        P::Fifo => 1,
        P::Rr => 2,
        P::Batch => 3,
        P::Iso => 4,
        P::Idle => 5,
        P::Deadline => 6,
    };
    let flags = s.flags.iter().fold(0u64, |acc, f| {
        acc | match f {
            F::ResetOnFork => 0x01,
            F::Reclaim => 0x02,
            F::DlOverrun => 0x04,
            F::KeepPolicy => 0x08,
            F::KeepParams => 0x10,
            F::UtilClampMin => 0x20,
            F::UtilClampMax => 0x40,
        }
    });
    let attr = crate::sys::sched::SchedAttr {
        size: crate::sys::sched::SCHED_ATTR_SIZE,
        policy,
        flags,
        nice: s.nice,
        priority: s.priority,
        runtime: s.runtime,
        deadline: s.deadline,
        period: s.period,
    };
    (attr, s.policy.spec_name())
}

/// PER_LINUX (0) or PER_LINUX32 (8), or'ed with the flags.
fn persona(p: &capsa_spec::Personality) -> u32 {
    let domain = match p.domain {
        capsa_spec::PersonalityDomain::Linux => 0x0000,
        capsa_spec::PersonalityDomain::Linux32 => 0x0008,
    };
    p.flags
        .iter()
        .filter_map(|f| {
            capsa_spec::PERSONALITY_FLAGS
                .iter()
                .find(|(name, _)| name == f)
                .map(|(_, v)| *v)
        })
        .fold(domain, |acc, v| acc | v)
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(namespaces: serde_json::Value, extra: serde_json::Value) -> ValidSpec {
        let mut v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
                        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
                        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "mode=755"]}],
            "linux": {"namespaces": namespaces, "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
                      "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]}
        });
        if !v["linux"]["namespaces"].to_string().contains("\"user\"") {
            let linux = v["linux"].as_object_mut().unwrap();
            linux.remove("uidMappings");
            linux.remove("gidMappings");
        }
        if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in more {
                obj.insert(k.clone(), val.clone());
            }
        }
        capsa_spec::parse(v.to_string().as_bytes(), Path::new("/b")).unwrap()
    }

    fn cgroup() -> ContainerCgroup {
        serde_json::from_value(serde_json::json!({"relative_path": "/capsa/x", "hierarchies": []}))
            .unwrap_or_else(|_| {
                panic!("ContainerCgroup's serialized form changed: update this test fixture")
            })
    }

    fn build_ns(namespaces: serde_json::Value) -> NamespacePlan {
        let opts = CreateOptions {
            id: "x".into(),
            bundle: "/b".into(),
            ..Default::default()
        };
        build(
            &spec(namespaces, serde_json::json!({})),
            &opts,
            cgroup(),
            &HostFacts::default(),
        )
        .unwrap()
        .namespaces
    }

    #[test]
    fn new_namespaces_are_made_by_the_clone_except_cgroup() {
        let ns = build_ns(
            serde_json::json!([{"type": "pid"}, {"type": "network"}, {"type": "mount"}, {"type": "cgroup"}]),
        );
        assert_eq!(
            ns.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS
        );
        assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWCGROUP);
        assert!(!ns.fork_after && !ns.unshare_user && ns.own_pid_ns && ns.new_cgroup_ns);
    }

    #[test]
    fn joining_a_pid_namespace_needs_a_fork() {
        let ns = build_ns(
            serde_json::json!([{"type": "pid", "path": "/proc/1/ns/pid"}, {"type": "mount"}]),
        );
        assert!(ns.clone_flags.is_empty());
        assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWNS);
        assert!(ns.fork_after);
        assert_eq!(
            ns.join,
            vec![(NamespaceKind::Pid, PathBuf::from("/proc/1/ns/pid"))]
        );
    }

    #[test]
    fn a_new_user_namespace_with_joins_is_unshared_after_them() {
        let ns = build_ns(
            serde_json::json!([{"type": "user"}, {"type": "network", "path": "/run/netns/x"}, {"type": "pid"}]),
        );
        assert!(ns.clone_flags.is_empty());
        assert!(ns.unshare_user && ns.fork_after && ns.in_user_ns);
        assert_eq!(ns.unshare_flags, CloneFlags::CLONE_NEWPID);
    }

    #[test]
    fn a_time_namespace_needs_unshare_and_fork() {
        let ns = build_ns(serde_json::json!([{"type": "time"}, {"type": "pid"}]));
        assert!(ns.fork_after);
        assert!(ns
            .unshare_flags
            .contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)));
    }

    #[test]
    fn process_and_mounts_are_translated() {
        let opts = CreateOptions {
            id: "x".into(),
            bundle: "/b".into(),
            ..Default::default()
        };
        let plan = build(
            &spec(
                serde_json::json!([{"type": "mount"}]),
                serde_json::json!({}),
            ),
            &opts,
            cgroup(),
            &HostFacts::default(),
        )
        .unwrap();
        let p = plan.process.unwrap();
        assert!(p.caps.bounding.contains(&caps::Capability::CAP_KILL));
        assert_eq!(p.rlimits[0].0, Resource::RLIMIT_NOFILE);
        assert_eq!((p.rlimits[0].2, p.rlimits[0].3), (10, 20));
        assert_eq!(plan.mounts[0].options.flags, MsFlags::MS_NOSUID);
        assert_eq!(plan.mounts[0].options.data, "mode=755");
        assert_eq!(plan.session_keyring.as_deref(), Some("_ses.x"));
    }

    #[test]
    fn console_sockets_without_a_terminal_are_refused_by_path() {
        let opts = CreateOptions {
            id: "x".into(),
            bundle: "/b".into(),
            console: Some(Console::Socket("/s".into())),
            ..Default::default()
        };
        let s = spec(
            serde_json::json!([{"type": "mount"}]),
            serde_json::json!({}),
        );
        let e = build(&s, &opts, cgroup(), &HostFacts::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot use console socket"), "{e}");
    }

    fn idmaps(namespaces: serde_json::Value, mounts: serde_json::Value) -> Vec<Option<IdmapPlan>> {
        let opts = CreateOptions {
            id: "x".into(),
            bundle: "/b".into(),
            ..Default::default()
        };
        let s = spec(namespaces, serde_json::json!({ "mounts": mounts }));
        build(&s, &opts, cgroup(), &HostFacts::default())
            .unwrap()
            .mounts
            .into_iter()
            .map(|m| {
                assert!(m.idmap.is_none() || m.options.bind, "{m:?}");
                m.idmap
            })
            .collect()
    }

    #[test]
    fn idmapped_mounts_take_their_own_mappings_or_the_containers() {
        let own = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let mine = vec![IdMapping {
            container_id: 0,
            host_id: 1000,
            size: 1,
        }];
        let container = vec![IdMapping {
            container_id: 0,
            host_id: 1000,
            size: 10,
        }];
        let plans = idmaps(
            serde_json::json!([{"type": "mount"}, {"type": "user"}]),
            serde_json::json!([
                {"destination": "/a", "source": "/a", "options": ["bind"]},
                {"destination": "/b", "source": "/b", "options": ["rbind", "idmap"],
                 "uidMappings": own, "gidMappings": own},
                {"destination": "/c", "source": "/c", "type": "bind",
                 "uidMappings": own, "gidMappings": own},
                {"destination": "/d", "source": "/d", "options": ["rbind", "ridmap"]},
            ]),
        );
        assert_eq!(plans[0], None);
        let own_plan = IdmapUserns::Mappings {
            uid: mine.clone(),
            gid: mine,
        };
        assert_eq!(
            plans[1],
            Some(IdmapPlan {
                recursive: false,
                userns: own_plan.clone(),
            })
        );
        // Mappings without an option: idmapped, not recursive (runc).
        assert_eq!(
            plans[2],
            Some(IdmapPlan {
                recursive: false,
                userns: own_plan,
            })
        );
        assert_eq!(
            plans[3],
            Some(IdmapPlan {
                recursive: true,
                userns: IdmapUserns::Mappings {
                    uid: container.clone(),
                    gid: container,
                },
            })
        );
        // A joined user namespace is used itself.
        let plans = idmaps(
            serde_json::json!([{"type": "mount"}, {"type": "user", "path": "/proc/7/ns/user"}]),
            serde_json::json!([{"destination": "/d", "source": "/d", "options": ["bind", "idmap"]}]),
        );
        assert_eq!(
            plans[0].as_ref().map(|p| &p.userns),
            Some(&IdmapUserns::Path("/proc/7/ns/user".into()))
        );
    }
}
