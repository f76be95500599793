//! CVE-2019-5736 against capsa's cheaper defence: for a container that cannot hold
//! CAP_SYS_PTRACE outside a user namespace (the default), capsa does not re-execute
//! itself from a sealed copy. Its container-side processes run capsa's host binary
//! until their last exec, made non-dumpable (so the container cannot open their
//! `/proc/<pid>/exe`), and that last exec goes through a sealed trampoline (so a
//! `#!/proc/self/exe` program runs the trampoline, not capsa). Each test makes the
//! attack of `cve_2019_5736.rs` on that path, with the default capabilities.
//!
//! capsa only: runc 1.1.5 always copies itself and behaves differently here.

use std::fs;
use std::time::Duration;

use capsa_integration_test::security::RuntimeCopy;
use capsa_integration_test::{capsa_only, read_pid_file, wait_for_file, Ctx};

use super::cve_2019_5736::{
    assert_not_written, read_log, wait_until_any, ATTACK_SH, SELF_EXE_SCRIPT,
};
use super::{link_applets, write_exec, WAIT};

/// The exit status of the trampoline when it is run as a program (by a
/// `#!/proc/self/exe` script): it refuses, having nothing to exec.
const TRAMPOLINE_REFUSED: i32 = 127;

fn bundle(ctx: &Ctx, prefix: &str) -> (String, capsa_integration_test::Bundle, std::path::PathBuf) {
    let (id, mut b) = ctx.id_and_bundle(prefix);
    let caps = b.config()["process"]["capabilities"]["bounding"].to_string();
    assert!(
        !caps.contains("CAP_SYS_PTRACE"),
        "the default bundle must lack CAP_SYS_PTRACE for this path: {caps}"
    );
    let out = b.with_out_dir();
    link_applets(&b, &["readlink"]);
    write_exec(&b.rootfs(), "attack.sh", ATTACK_SH);
    write_exec(&b.rootfs(), "entry", SELF_EXE_SCRIPT);
    (id, b, out)
}

/// The literal CVE as the container's program: `#!/proc/self/exe` runs the trampoline
/// (the current executable at that exec), which exits 127; capsa's binary never runs
/// in the container, and the host copy is intact.
#[test]
fn self_exe_entrypoint_runs_the_trampoline_not_capsa() {
    if !capsa_only("the exec trampoline") {
        return;
    }
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, _out) = bundle(&ctx, "x5736t-entry");
    b.args(&["/entry"]);
    let run = copy.cmd(ctx.root(), &["run", "--bundle", b.path_str(), &id]);
    assert_eq!(
        run.code(),
        Some(TRAMPOLINE_REFUSED),
        "pid 1 should have run the sealed trampoline (exit 127):\n{run}"
    );
    copy.assert_unchanged("by a #!/proc/self/exe entrypoint");
    ctx.delete_force(&id).assert_success();
}

/// The original exploit's path: `exec` of a `#!/proc/self/exe` script in a running
/// container. The exec'd process runs the trampoline, not capsa.
#[test]
fn exec_of_a_self_exe_script_runs_the_trampoline_not_capsa() {
    if !capsa_only("the exec trampoline") {
        return;
    }
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, _out) = bundle(&ctx, "x5736t-exec");
    b.args(&["sleep", "100000"]);
    copy.cmd(
        ctx.root(),
        &["run", "--detach", "--bundle", b.path_str(), &id],
    )
    .assert_success();
    let exec = copy.cmd(ctx.root(), &["exec", &id, "/entry"]);
    assert_eq!(
        exec.code(),
        Some(TRAMPOLINE_REFUSED),
        "the exec'd #! script should have run the sealed trampoline (exit 127):\n{exec}"
    );
    ctx.delete_force(&id).assert_success();
    copy.assert_unchanged("by an exec'd #!/proc/self/exe script");
}

/// The `create` window: the created init runs capsa's host binary while it waits for
/// `start`. Being non-dumpable, it cannot be opened through `/proc/1/exe` by the
/// container's root without CAP_SYS_PTRACE: the attacker's grab must fail, and the
/// host copy stay intact after the init exec'd its program.
#[test]
fn created_init_is_out_of_reach_without_ptrace() {
    if !capsa_only("the exec trampoline") {
        return;
    }
    let ctx = Ctx::new();
    let copy = RuntimeCopy::new();
    let (id, mut b, out) = bundle(&ctx, "x5736t-create");
    b.args(&["sleep", "100000"]);
    let root = ctx.root();
    let pid_file = ctx.base().join("init.pid");
    let pid_arg = pid_file.to_str().expect("utf-8");
    copy.cmd(
        root,
        &[
            "create",
            "--bundle",
            b.path_str(),
            "--pid-file",
            pid_arg,
            &id,
        ],
    )
    .assert_success();
    let init = read_pid_file(&pid_file);
    copy.cmd(root, &["exec", "--detach", &id, "sh", "/attack.sh", "pid1"])
        .assert_success();
    wait_until_any(&out, &["caught", "done"], WAIT);
    copy.cmd(root, &["start", &id]).assert_success();
    fs::write(out.join("released"), "").expect("touch released");
    wait_for_file(&out.join("done"), Duration::from_secs(40));
    let log = read_log(&out);
    ctx.delete_force(&id).assert_success();
    copy.assert_unchanged("through /proc/1/exe of the created init");
    assert_eq!(
        super::field(&log, "grab"),
        Some("none"),
        "the created init {init} (non-dumpable) must be out of the container's reach:\n{log}"
    );
    assert_not_written(&log, "created init");
}
