//! `create`, the parent's side: validate, plan, claim the id, make the
//! cgroup and the exec fifo, fork the init and drive it through the
//! protocol (steps as numbered in `protocol.rs`), then record the state and
//! write the pid file. Any failure rolls everything back (`Rollback`).

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::create_cgroup::{make_cgroup, Part};
use super::{hook_state, run_hooks, Held, Rollback};
use crate::cgroups::{CgroupHost, Entry};
use crate::error::Error;
use crate::exe_guard;
use crate::init::{self, InitIo};
use crate::plan::{self, CreateOptions, InitPlan};
use crate::protocol::{channel_pair, Channel, Msg};
use crate::state::{validate_id, ContainerState};
use crate::{procfs, sys, Runtime};

impl Runtime {
    /// Creates the container `opts.id` from the bundle `opts.bundle` and
    /// leaves its init blocked before the user's program, as the runtime
    /// spec's `create` says. Returns the init's host pid.
    pub fn create(&self, opts: &CreateOptions) -> Result<i32, Error> {
        self.create_held(opts).map(|held| held.pid())
    }

    /// [`Runtime::create`], keeping the container's state dir locked and its
    /// state in memory, for [`Runtime::start_held`] in the same process
    /// (`run`): no other command acts on it in between, and start need not
    /// read back what create just wrote.
    pub fn create_held(&self, opts: &CreateOptions) -> Result<Held, Error> {
        validate_id(&opts.id)?;
        let mut spec = capsa_spec::load(&opts.bundle)?;
        let notify_dir = self.state.notify_dir_of(&opts.id);
        if opts.notify_socket.is_some() {
            super::notify::add_to_spec(&mut spec, &notify_dir);
        }
        match fs::metadata(&spec.root.path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Rootfs {
                    path: spec.root.path.clone(),
                    reason: "not a directory".into(),
                })
            }
            Err(e) => {
                return Err(Error::Rootfs {
                    path: spec.root.path.clone(),
                    reason: e.to_string(),
                })
            }
        }
        let host = CgroupHost::detect(
            &self.proc_root.join("self/mountinfo"),
            &self.proc_root.join("self/cgroup"),
        )?;
        let mut cgroup = host.cgroup_for(
            &self.cgroup_manager,
            spec.linux.cgroups_path.as_deref(),
            &opts.id,
        )?;
        let rootless = super::rootless::is_rootless();
        if rootless {
            super::rootless::usable_cgroup(&mut cgroup, spec.linux.resources.as_ref())?;
        }
        let host_facts = plan::HostFacts::detect(&self.sys_root);
        let plan = plan::build(&spec, opts, cgroup.clone(), &host_facts)?;
        // Before anything exists: the sealed copy re-executes capsa.
        let trampoline = self.exe_defence(&plan.exe_defence)?;
        // Idmapped mounts are made here, detached, before anything of the
        // container exists (so a failure leaves nothing), while capsa still
        // has the host's privileges that MOUNT_ATTR_IDMAP needs and is still
        // single-threaded for the user namespace helpers (`init/idmap.rs`).
        // The init inherits the fds and attaches them.
        let idmapped = init::idmap::prepare(&plan, &self.proc_root)?;

        // From here on, everything made is undone on failure.
        let dir = self.state.claim(&opts.id)?;
        let mut rollback = Rollback::new(dir, self.proc_root.clone());
        super::fault::point("create:after-claim");
        if opts.notify_socket.is_some() {
            fs::create_dir(&notify_dir)
                .map_err(Error::sys(format!("mkdir {}", notify_dir.display())))?;
            fs::set_permissions(&notify_dir, fs::Permissions::from_mode(0o755))
                .map_err(Error::sys(format!("chmod {}", notify_dir.display())))?;
        }
        // Recorded for `delete --force`, should we die before state.json.
        rollback.dir().record_cgroup(&cgroup)?;
        // systemd makes its unit around the init's pid: after the clone. With
        // the namespaces the init makes itself at once (`early_unshare`), the
        // cgroup is made while it does, after the clone: only a cgroup2
        // directory, which the init is cloned into, must exist before.
        let ours = cgroup.systemd_unit().is_none();
        let early = !plan.namespaces.early_unshare.is_empty();
        if ours {
            let part = if early { Part::Dir2 } else { Part::All };
            make_cgroup(&cgroup, &spec, None, rootless, &mut rollback, part)?;
        }
        super::fault::point("create:before-fifo");
        let fifo = make_fifo(&rollback.dir().fifo_path())?;
        let (parent_end, init_end) =
            channel_pair().map_err(Error::sys("socketpair for the init pipe"))?;
        let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
        let console = opts
            .console
            .as_ref()
            .filter(|_| terminal)
            .map(|c| c.connect())
            .transpose()
            .map_err(Error::sys("connect to the console socket"))?;

        let lock_fd = rollback.dir().lock_fd();
        let mut entry = match (ours, early) {
            (false, _) => None,
            (true, false) => cgroup.open_entry()?,
            // The init joins the v1 hierarchies once they exist (step 2).
            (true, true) => cgroup.open_entry_v2()?,
        };
        let (forked, joining) = super::fork_in_cgroup(
            plan.namespaces.clone_flags.bits(),
            entry.as_ref(),
            "clone the container init",
        )?;
        let first_pid = match forked {
            sys::Forked::Child => become_init(
                &plan,
                parent_end,
                InitIo {
                    cgroup_join: entry.take().map(Entry::into_self_join).unwrap_or_default(),
                    chan: init_end,
                    fifo,
                    console,
                    idmapped,
                    trampoline,
                },
                lock_fd,
            ),
            sys::Forked::Parent(pid) => pid,
        };
        drop(entry);
        rollback.init_pid = Some(first_pid);
        rollback.direct_child = true;
        super::fault::point("create:after-clone");
        let mut joining = joining;
        if !ours {
            // The init waits for step 1, so nothing has run outside yet.
            let pid = Some(first_pid);
            make_cgroup(&cgroup, &spec, pid, rootless, &mut rollback, Part::All)?;
            if cgroup.is_v2_only() {
                // The unit was made around the pid: it is in its cgroup, and
                // another write would only take the kernel's migration lock.
                joining = super::Joining::Done;
            }
        } else if early {
            // Meanwhile the init makes its namespaces; it waits for step 1.
            make_cgroup(&cgroup, &spec, None, rootless, &mut rollback, Part::Rest)?;
        }
        // Step 1 at once: the init waits for it, and what follows here is
        // bookkeeping that runs beside the init's setup (the first writes
        // to memory after the fork are copy-on-write faults, ~0.4 ms here).
        self.go_ahead(&plan, &parent_end, first_pid, joining, &mut rollback)?;
        // Armed once the init may run anything: before step 1 it ran nothing
        // a poststop hook would have to clean up after.
        rollback.poststop = Some((
            spec.hooks.poststop.clone(),
            hook_state(&spec, &opts.id, "stopped", first_pid),
        ));
        drop(init_end);
        drop(fifo);
        drop(console);
        drop(idmapped);
        drop(trampoline);
        let init_pid = self.drive_init(&plan, &parent_end, first_pid, &mut rollback, &spec)?;

        let init_start_time = procfs::stat(&self.proc_root, init_pid)
            .filter(|s| s.alive())
            .ok_or(Error::InitGone {
                id: opts.id.clone(),
            })?
            .start_time;
        let state = ContainerState {
            id: opts.id.clone(),
            init_pid,
            init_start_time,
            created: super::now_rfc3339(),
            cgroup,
            ptrace_seen: spec.process.as_ref().is_some_and(exe_guard::holds_ptrace),
            spec,
        };
        super::fault::point("create:before-state");
        rollback.dir().save(&state)?;
        if let Some(path) = &opts.pidfd_socket {
            super::send_pidfd(path, init_pid)?;
        }
        if let Some(pid_file) = &opts.pid_file {
            write_pid_file(pid_file, init_pid)?;
        }
        super::fault::point("create:after-state");
        Ok(Held {
            dir: rollback.disarm(),
            state,
        })
    }

    /// Step 1: into the cgroups the init was not born in and did not join
    /// itself at step 0 (`fork_in_cgroup`), before it does anything, so that
    /// all it forks stays inside; id maps if clone made a user namespace.
    fn go_ahead(
        &self,
        plan: &InitPlan,
        chan: &Channel,
        first_pid: i32,
        joining: super::Joining,
        rollback: &mut Rollback,
    ) -> Result<(), Error> {
        rollback
            .cgroup
            .as_ref()
            .map(|c| joining.finish(c, first_pid))
            .transpose()?;
        super::fault::point("create:after-cgroup-join");
        if plan
            .namespaces
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWUSER)
        {
            self.write_id_maps(first_pid, plan)?;
        }
        super::send_continue(chan)
    }

    /// Steps 2-8 on the parent's side. Returns the pid of the real init.
    fn drive_init(
        &self,
        plan: &InitPlan,
        chan: &Channel,
        first_pid: i32,
        rollback: &mut Rollback,
        spec: &capsa_spec::ValidSpec,
    ) -> Result<i32, Error> {
        let mut init_pid = first_pid;
        loop {
            let (msg, fd) = chan.recv_with_fd("the container init's setup")?;
            match msg {
                // Step 3: the init made its user namespace by unshare.
                Msg::MapIds => {
                    self.write_id_maps(init_pid, plan)?;
                    chan.send(&Msg::Continue)?;
                }
                // Step 4: the init forked the real init and is exiting.
                Msg::Forked { pid } => {
                    let _ = waitpid(Pid::from_raw(init_pid), None);
                    init_pid = pid;
                    rollback.init_pid = Some(pid);
                    rollback.direct_child = false;
                }
                // Step 6: createRuntime hooks (prestart hooks run at `start`).
                Msg::RunCreateHooks => {
                    // linux.netDevices first, so the hooks see them inside.
                    super::net_devices::move_into_container(
                        &plan.net_devices,
                        init_pid,
                        &self.proc_root,
                    )?;
                    let state = hook_state(spec, &plan.id, "creating", init_pid);
                    run_hooks("createRuntime", &spec.hooks.create_runtime, &state)?;
                    chan.send(&Msg::HookState(state))?;
                }
                // Step 7a: the listener of a NOTIFY seccomp filter.
                Msg::SeccompListener => {
                    let state = hook_state(spec, &plan.id, "creating", init_pid);
                    crate::seccomp_notify::forward(spec, &state, init_pid, fd)?;
                }
                // Step 8: the init is ready and blocks on the exec fifo.
                Msg::Ready => return Ok(init_pid),
                Msg::Failed(failure) => return Err(Error::Init(failure)),
                other @ (Msg::Continue | Msg::HookState(_) | Msg::ExecFailed { .. }) => {
                    return Err(crate::protocol::ProtocolError::Unexpected {
                        got: other,
                        expected: "a setup step",
                    }
                    .into())
                }
            }
        }
    }

    fn write_id_maps(&self, pid: i32, plan: &InitPlan) -> Result<(), Error> {
        let render = |maps: &[capsa_spec::IdMapping]| -> String {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
                .collect()
        };
        if super::rootless::is_rootless() {
            super::rootless::deny_setgroups(&self.proc_root, pid)?;
        }
        for (file, maps) in [
            ("uid_map", &plan.namespaces.uid_mappings),
            ("gid_map", &plan.namespaces.gid_mappings),
        ] {
            let path = self.proc_root.join(pid.to_string()).join(file);
            fs::write(&path, render(maps)).map_err(Error::sys(format!(
                "linux.{}: write {}",
                if file == "uid_map" {
                    "uidMappings"
                } else {
                    "gidMappings"
                },
                path.display()
            )))?;
        }
        Ok(())
    }
}

/// In the forked child: keep only what the init needs, then run it.
fn become_init(plan: &InitPlan, parent_end: Channel, io: InitIo, lock_fd: i32) -> ! {
    drop(parent_end);
    // The state-dir lock was inherited through fork: close it, or the init
    // would hold it (and block every other capsa command) until it exits.
    let mut keep = vec![io.chan.raw(), io.fifo.as_raw_fd()];
    keep.extend(io.cgroup_join.raw_fds());
    keep.extend(io.console.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(io.trampoline.as_ref().map(|t| t.as_raw_fd()));
    keep.extend(io.idmapped.raw_fds());
    let first = 3 + plan.preserve_fds as i32;
    let closed = if lock_fd >= first {
        sys::close_fds_from(first, &keep)
    } else {
        Ok(())
    };
    if closed.is_err() {
        sys::exit_now(1);
    }
    init::run(plan, io)
}

/// The exec fifo: `start` opens it for reading, which unblocks the init's
/// open for writing. 0622 so that an init already running as a non-root
/// user can still open it.
fn make_fifo(path: &Path) -> Result<OwnedFd, Error> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys(format!("mkfifo {}", path.display()))(e.into()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o622))
        .map_err(Error::sys(format!("chmod {}", path.display())))?;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", path.display()))(e.into()))?;
    Ok(fd)
}

/// The pid file as runc writes it: the decimal pid, no newline, written to a
/// temporary file beside it and renamed, so a reader never sees it partial.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.capsa-tmp"));
    fs::write(&tmp, pid.to_string())
        .map_err(Error::sys(format!("write pid file {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::sys(format!("rename pid file to {}", path.display()))(e)
    })
}
