//! Where the exec'd process runs: the container's namespaces and cgroup (or a
//! sub-cgroup), `--detach` with a pid file, and `delete --force` ending it.

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use capsa_integration_test::{
    cgroup_dirs, ns_of, path_str, pid_alive, proc_cgroups, read_pid_file, state_pid, wait_for_file,
    wait_until, Ctx,
};

use crate::{cgroup_procs, exec_ok, exec_sh, field, finish_running, running, WAIT};

#[test]
fn exec_joins_the_container_namespaces_and_cgroup() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-ns");

    // The pid namespace, from inside: the container's sleep is pid 1, we are not.
    let text = exec_ok(&ctx, &id, &[], "echo self=$$; ps");
    let self_pid: u32 = field(&text, "self")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no self= line:\n{text}"));
    assert!(self_pid > 1, "the exec'd process cannot be pid 1:\n{text}");
    assert!(
        text.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("1") && l.contains("sleep 1000")
        }),
        "ps in the exec'd process should show the container's `sleep 1000` as pid 1:\n{text}"
    );

    // From the host: a detached process shares every namespace and the cgroup of the init.
    let pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "sleep",
        "1000",
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the detached process {pid} is not running");
    let (p, i) = (pid.to_string(), init.to_string());
    for ns in ["pid", "net", "uts", "ipc", "mnt", "cgroup"] {
        assert_eq!(
            ns_of(&p, ns),
            ns_of(&i, ns),
            "the exec'd process {pid} is not in the init's {ns} namespace"
        );
    }
    assert_ne!(
        ns_of(&p, "pid"),
        ns_of("self", "pid"),
        "the exec'd process is in the host's pid namespace"
    );
    assert_eq!(
        proc_cgroups(pid),
        proc_cgroups(init),
        "the exec'd process is not in the init's cgroups"
    );
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    ctx.finish(&id, &b);
}

#[test]
fn exec_detach_returns_at_once_and_writes_the_pid_file() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.sleeper("exec-detach");
    let out_dir = b.with_out_dir();
    ctx.create_and_start(&b, &id);
    let init = state_pid(&ctx.state(&id));

    let pid_file = ctx.base().join("exec.pid");
    let started = Instant::now();
    let out = exec_sh(
        &ctx,
        &id,
        &["--detach", "--pid-file", path_str(&pid_file)],
        "sleep 2; echo $$ > /out/done",
    );
    let took = started.elapsed();
    out.assert_silent_success();
    assert!(
        took < Duration::from_millis(1500),
        "exec --detach must return once the process started, not when it ends (took {took:?})"
    );
    let pid = read_pid_file(&pid_file);
    assert!(
        pid_alive(pid),
        "the pid file names {pid}, which is not running"
    );
    assert_eq!(
        ns_of(&pid.to_string(), "pid"),
        ns_of(&init.to_string(), "pid"),
        "the detached process is not in the container"
    );
    assert!(
        !out_dir.join("done").exists(),
        "the process finished before exec returned"
    );

    // The caller waits for it by polling /proc.
    wait_until("the detached exec'd process to end", WAIT, || {
        !pid_alive(pid)
    });
    wait_for_file(&out_dir.join("done"), WAIT);
    let inner_pid = fs::read_to_string(out_dir.join("done")).expect("read done");
    assert!(
        inner_pid.trim().parse::<u32>().is_ok_and(|p| p > 1),
        "the process ran in the container's pid namespace: {inner_pid:?}"
    );
    finish_running(&ctx, &id, &b, init);
}

#[test]
fn delete_force_kills_exec_processes_too() {
    let ctx = Ctx::new();
    let (id, b, init) = running(&ctx, "exec-delete");

    let pid_file = ctx.base().join("exec.pid");
    ctx.cmd(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&pid_file),
        &id,
        "sleep",
        "1000",
    ])
    .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    assert!(pid_alive(pid), "the exec'd process {pid} is not running");
    assert_eq!(cgroup_procs(&b), BTreeSet::from([init, pid]));

    ctx.delete_force(&id).assert_silent_success();
    wait_until("the exec'd process to die", WAIT, || !pid_alive(pid));
    assert!(!pid_alive(init), "delete --force left the init {init}");
    ctx.assert_nothing_left(&id, &b);
}

/// `exec --cgroup sub`: the process runs in an existing sub-cgroup of the
/// container's cgroup (runc's flag; `controller:path` limits it to one v1
/// controller).
#[test]
fn exec_into_a_sub_cgroup() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("execcg");
    b.sh("exec sleep 1000");
    ctx.create_and_start(&b, &id);
    // The container's cgroup in every hierarchy mounted here (on pure v2 only the
    // cgroup2 one); a hierarchy without it gets no stray tree.
    let mut made = Vec::new();
    for cg in cgroup_dirs(b.cgroup_path()) {
        if !cg.is_dir() {
            continue;
        }
        let dir = cg.join("sub");
        if std::fs::create_dir(&dir).is_ok() {
            // A new v1 cpuset cgroup takes no task until it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(cg.join(f)) {
                    let _ = std::fs::write(dir.join(f), v.trim());
                }
            }
            made.push(dir);
        }
    }
    let out = ctx.cmd(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    out.assert_success();
    assert!(
        out.stdout.lines().any(|l| l.ends_with("/sub")),
        "not in the sub-cgroup:\n{out}"
    );
    ctx.delete_force(&id).assert_silent_success();
    for dir in made.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    ctx.assert_nothing_left(&id, &b);
}
