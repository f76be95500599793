//! File descriptors: none leak into the process; `--preserve-fds` passes some on.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use capsa_integration_test::{path_str, run_captured, runtime, CmdOutput, Ctx};

use crate::{exec, running};

/// The entries of `ls /proc/self/fd` output.
fn fd_list(text: &str) -> BTreeSet<u32> {
    text.split_whitespace()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|_| panic!("not an fd number {f:?} in {text:?}"))
        })
        .collect()
}

#[test]
fn exec_leaks_no_fds_into_the_process() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-fds");

    let out = exec(&ctx, &id, &["ls", "/proc/self/fd"]);
    out.assert_success();
    let fds = fd_list(&out.stdout);
    // 0, 1, 2 and the directory ls itself opened.
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2])) && fds.len() <= 4,
        "the exec'd process should have only fds 0 1 2 (and the one ls opens), got {fds:?}:\n{out}"
    );
    // The runtime's own descriptors (sockets, the state dir, the binary) did not leak.
    // (0 1 2 may be pipes: runc relays a foreground process's stdio through pipes.)
    let out = exec(&ctx, &id, &["ls", "-l", "/proc/self/fd"]);
    out.assert_success();
    for word in ["socket:", "anon_inode:", "/run/", "capsa", "runc"] {
        assert!(
            !out.stdout.contains(word),
            "an fd of the runtime leaked into the exec'd process ({word}):\n{out}"
        );
    }

    ctx.finish(&id, &b);
}

#[test]
fn exec_preserve_fds_passes_fd_3() {
    let ctx = Ctx::new();
    let (id, b, _init) = running(&ctx, "exec-preserve");
    let extra = ctx.base().join("extra-fd.txt");
    fs::write(&extra, "content-of-fd-3\n").expect("write the extra fd's file");

    let script = "exec 3<\"$4\"; \
                  exec \"$1\" --root \"$2\" exec --preserve-fds 1 \"$3\" \
                  sh -c 'ls /proc/self/fd; echo ---; cat <&3'";
    let rt = runtime();
    let out = shell(
        script,
        &[
            path_str(rt.path()),
            path_str(ctx.root()),
            &id,
            path_str(&extra),
        ],
    );
    out.assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    let (list, content) = out
        .stdout
        .split_once("---\n")
        .unwrap_or_else(|| panic!("no --- separator:\n{out}"));
    let fds = fd_list(list);
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2, 3])) && fds.len() <= 5,
        "with --preserve-fds 1 the process should have fds 0 1 2 3 (and the one ls \
         opens), got {fds:?}:\n{out}"
    );
    assert_eq!(
        content, "content-of-fd-3\n",
        "fd 3 should read the file:\n{out}"
    );

    // Without --preserve-fds the inherited fd 3 is not passed on.
    let script = "exec 3<\"$4\"; exec \"$1\" --root \"$2\" exec \"$3\" ls /proc/self/fd";
    let out = shell(
        script,
        &[
            path_str(rt.path()),
            path_str(ctx.root()),
            &id,
            path_str(&extra),
        ],
    );
    out.assert_success();
    let fds = fd_list(&out.stdout);
    assert!(
        fds.len() <= 4,
        "without --preserve-fds an inherited fd 3 must not reach the process, got {fds:?}:\n{out}"
    );

    ctx.finish(&id, &b);
}

/// Runs `sh -c script sh args...` with stdin from /dev/null, stdout and stderr into
/// files (not pipes: a leftover process would hold a pipe open), within the default
/// timeout.
fn shell(script: &str, args: &[&str]) -> CmdOutput {
    let describe = format!("`sh -c {script:?} sh {}`", args.join(" "));
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    run_captured(&mut cmd, &describe)
}
