//! ValidSpec + create options → the plan the container init carries out.
//!
//! Pure: it reads no file and makes no syscall, so every translation (mount
//! options, namespace order, capability and rlimit names) is unit-tested. The
//! init and the parent read only this plan, never the spec.

use std::path::PathBuf;

use capsa_spec::{Device, Hook, IdMapping, NamespaceKind, Propagation, TimeOffset, ValidSpec};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use crate::cgroups::ContainerCgroup;
use crate::exe_guard::ExeDefence;
use crate::mount_options::{self, ParsedOptions};

mod net;
mod process;

pub use net::NetDeviceMove;
use process::process;
pub use process::{CapsPlan, ProcessPlan};

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
    /// AppArmor is enabled (`/sys/module/apparmor/parameters/enabled` is `Y`).
    pub apparmor: bool,
}

impl HostFacts {
    /// Reads the facts under `sys_root` (`/sys` on a real host).
    pub fn detect(sys_root: &std::path::Path) -> Self {
        HostFacts {
            selinux: sys_root.join("fs/selinux/enforce").exists(),
            apparmor: std::fs::read_to_string(sys_root.join("module/apparmor/parameters/enabled"))
                .is_ok_and(|s| s.trim() == "Y"),
        }
    }
}

/// SELinux labels: on a host without SELinux there is nothing to label and
/// they are ignored (as crun does; runc fails with EINVAL passing `context=`
/// to the kernel); with SELinux, capsa cannot apply them yet and says so.
/// An AppArmor profile needs AppArmor (see below).
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
    // AppArmor: as runc, a profile on a host without AppArmor is an error
    // (runc fails writing it to /proc/self/attr/exec); said before anything
    // is made, and logged.
    if let Some(profile) = process.and_then(|p| p.apparmor_profile.as_ref()) {
        if !host.apparmor {
            tracing::error!(
                "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
            );
            return Err(plan_err(
                "process.apparmorProfile",
                format!("cannot apply profile {profile:?}: AppArmor is not enabled on this host"),
            ));
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
    /// Created by the init with unshare(2) as soon as it runs, while the
    /// parent makes the cgroup (`lifecycle/create.rs`): the network
    /// namespace alone costs ~0.3 ms, which clone(2) would spend with the
    /// parent waiting. Only where no user namespace is made (the new
    /// namespaces must not be owned by one whose id maps are not written
    /// yet) and nothing is joined.
    pub early_unshare: CloneFlags,
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
    /// The container is in a network namespace other than capsa's: a new
    /// one, or one joined by path (a pod's, podman's CNI netns). sysfs then
    /// shows that namespace's devices when the init mounts it.
    pub own_net_ns: bool,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        NamespacePlan {
            clone_flags: CloneFlags::empty(),
            early_unshare: CloneFlags::empty(),
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
            own_net_ns: false,
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
    /// How the process is kept from capsa's binary (CVE-2019-5736).
    pub exe_defence: ExeDefence,
    /// `linux.netDevices`, moved by the parent at step 6.
    pub net_devices: Vec<NetDeviceMove>,
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
    /// How the process is kept from capsa's binary (CVE-2019-5736).
    pub exe_defence: ExeDefence,
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
    ptrace_seen: bool,
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
        exe_defence: crate::exe_guard::choose(spec, p, &seccomp, ptrace_seen),
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
        exe_defence: match &spec.process {
            Some(p) => crate::exe_guard::choose(spec, p, &seccomp, false),
            // Nothing is ever exec'd.
            None => ExeDefence::Trampoline,
        },
        seccomp,
        net_devices: net::net_devices(spec),
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
/// that makes the init, or by the init right after it: `early_unshare`) and
/// the general one (join by path, then unshare, then
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
        own_net_ns: linux.namespace(NamespaceKind::Network).is_some(),
        ..NamespacePlan::default()
    };
    // The cgroup namespace is always unshared by the init, after the parent
    // has moved it into the container's cgroup: its root is the cgroup it is
    // made in.
    let new_cgroup = new & CloneFlags::CLONE_NEWCGROUP;
    if fast && !new_user && plan.join.is_empty() {
        // A pid namespace must come from the clone (unshare would need
        // another fork to make the init its pid 1); the rest the init makes.
        plan.clone_flags = new & CloneFlags::CLONE_NEWPID;
        plan.early_unshare = new - new_cgroup - CloneFlags::CLONE_NEWPID;
        plan.unshare_flags = new_cgroup;
    } else if fast {
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

#[cfg(test)]
mod tests;
