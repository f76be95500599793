//! Hooks: the order they run in and the state each reads on stdin.
//!
//! capsa's lifecycle (docs/decisions.md): `create` runs createRuntime then
//! createContainer (status "creating"); `start` runs prestart (status "created": the
//! OCI validation suite checks they have not run when create returns), then
//! startContainer inside the container, execs the program, then runs poststart (status
//! "running") before it returns; `delete` runs poststop (status "stopped"). runc 1.1.5
//! runs prestart and poststart inside `create` and startContainer after `start` returned:
//! the assertions it fails are guarded by `runc_deviates`.

use std::fs;
use std::path::{Path, PathBuf};

use capsa_integration_test::{
    read_pid_file, runc_deviates, wait_for_file, Bundle, Ctx, Hook, HOOK_KINDS,
};
use serde_json::Value;

use crate::WAIT;

/// One line of the hook log: the hook kind and the state it read on stdin.
fn read_hook_log(path: &Path) -> Vec<(String, Value)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, json) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad hook log line {l:?}"));
            let v: Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("hook {name} got invalid state JSON ({e}): {json:?}"));
            (name.to_string(), v)
        })
        .collect()
}

fn names(entries: &[(String, Value)]) -> Vec<&str> {
    entries.iter().map(|(n, _)| n.as_str()).collect()
}

/// The user program of the hook tests: marks that it ran, then sleeps. Its command
/// line (and that of the `sleep` it execs) contains [`PROGRAM_TAG`].
pub(crate) const HOOK_TEST_PROGRAM: &str = "touch /out/program-ran; exec sleep 1000";
const PROGRAM_TAG: &str = "sleep 1000";

/// Adds one state-logging hook of every kind, the prestart, startContainer and
/// poststart ones followed by a probe hook; returns the host paths of the state log and
/// of the probe log (see [`probe_hook`]).
/// startContainer runs inside the container, so it writes through the `/out` mount.
fn add_logging_hooks(b: &mut Bundle) -> (PathBuf, PathBuf) {
    let out = b.with_out_dir();
    for kind in HOOK_KINDS {
        let dir = if kind == "startContainer" {
            "/out".to_string()
        } else {
            out.display().to_string()
        };
        let log = Hook::log_state(b, kind, &format!("{dir}/hooks.log"));
        b.add_hook(kind, log);
        if matches!(kind, "prestart" | "startContainer" | "poststart") {
            let probe = probe_hook(b, kind, &dir);
            b.add_hook(kind, probe);
        }
    }
    (out.join("hooks.log"), out.join("probe.log"))
}

/// A hook that appends `<kind>|<yes if /out/program-ran exists>|<init's cmdline>` to
/// `<dir>/probe.log` (`dir` is the out dir as the hook sees it). A host hook takes the
/// init pid from the state on its stdin; startContainer, inside the container's pid
/// namespace, reads pid 1. The cmdline shows whether the user program was exec'd.
fn probe_hook(b: &Bundle, kind: &str, dir: &str) -> Hook {
    let pid = if kind == "startContainer" {
        "1".to_string()
    } else {
        r#"$(printf '%s' "$st" | tr -d ' \n' | sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p')"#
            .to_string()
    };
    Hook::sh(
        b,
        &format!(
            "st=$(cat); pid={pid}; if [ -e {dir}/program-ran ]; then r=yes; else r=no; fi; \
             printf '%s|%s|%s\\n' {kind} \"$r\" \"$(tr '\\0' ' ' < /proc/$pid/cmdline)\" \
             >> {dir}/probe.log"
        ),
    )
}

/// The probe log: kind → (program-ran seen, init cmdline).
fn read_probe_log(path: &Path) -> Vec<(String, bool, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, '|');
            let kind = parts.next().unwrap_or_default().to_string();
            let ran = parts.next() == Some("yes");
            let cmdline = parts.next().unwrap_or_default().to_string();
            (kind, ran, cmdline)
        })
        .collect()
}

fn probe_of<'a>(probes: &'a [(String, bool, String)], kind: &str) -> &'a (String, bool, String) {
    probes
        .iter()
        .find(|p| p.0 == kind)
        .unwrap_or_else(|| panic!("no probe line for the {kind} hook: {probes:?}"))
}

fn position(names: &[&str], kind: &str) -> usize {
    let all: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == kind)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(all.len(), 1, "hook {kind} must run exactly once: {names:?}");
    all[0]
}

#[test]
fn hooks_run_in_spec_order_with_the_state_on_stdin() {
    let ctx = Ctx::new();
    let (id, mut b) = ctx.id_and_bundle("hooks");
    let (log, probe_log) = add_logging_hooks(&mut b);
    let ran = b.path().join("out/program-ran");
    b.sh(HOOK_TEST_PROGRAM);
    let pid_file = ctx.base().join("init.pid");

    // create: createRuntime, then createContainer.
    ctx.create_with_pid_file(&b, &id, &pid_file)
        .assert_silent_success();
    let pid = read_pid_file(&pid_file);
    let entries = read_hook_log(&log);
    let after_create = names(&entries);
    let create_phase: Vec<&str> = after_create
        .iter()
        .copied()
        .filter(|n| !matches!(*n, "prestart" | "poststart"))
        .collect();
    assert_eq!(
        create_phase,
        ["createRuntime", "createContainer"],
        "hooks run by create: {after_create:?}"
    );
    if !runc_deviates(
        "create must run only createRuntime then createContainer (prestart belongs to \
         start); runc 1.1.5 also runs prestart and poststart hooks inside create",
    ) {
        assert_eq!(
            after_create,
            ["createRuntime", "createContainer"],
            "hooks run by create"
        );
    }
    assert!(!ran.exists(), "the user program ran before start");
    assert_eq!(ctx.status(&id), "created");

    // start: prestart, startContainer, the program, poststart, all before it returns.
    ctx.start(&id).assert_silent_success();
    if !runc_deviates(
        "when start returns, prestart, startContainer then poststart must have run, in that \
         order; runc 1.1.5 ran prestart and poststart at create and runs startContainer in \
         init after start returns",
    ) {
        let entries = read_hook_log(&log);
        assert_eq!(
            names(&entries),
            [
                "createRuntime",
                "createContainer",
                "prestart",
                "startContainer",
                "poststart"
            ],
            "hook order after start"
        );
    }
    wait_for_file(&ran, WAIT);
    assert_eq!(ctx.status(&id), "running");

    ctx.kill(&id, "KILL").assert_silent_success();
    ctx.wait_for_status(&id, "stopped");
    ctx.delete(&id).assert_silent_success();
    ctx.assert_nothing_left(&id, &b);

    let entries = read_hook_log(&log);
    let all = names(&entries);
    assert_eq!(all.len(), 6, "every hook runs exactly once: {all:?}");
    let pos = |k: &str| position(&all, k);
    // Orders runc gets right too: createRuntime, createContainer, startContainer;
    // prestart and poststart after the first of them; poststop last.
    assert!(
        pos("createRuntime") < pos("createContainer")
            && pos("createContainer") < pos("startContainer"),
        "hook order: {all:?}"
    );
    assert!(
        pos("prestart") < pos("startContainer"),
        "prestart ran after startContainer: {all:?}"
    );
    assert!(
        pos("createContainer") < pos("poststart"),
        "poststart ran before createContainer: {all:?}"
    );
    assert_eq!(pos("poststop"), 5, "poststop must be last: {all:?}");
    if !runc_deviates(
        "the hook order must be createRuntime, createContainer, prestart, startContainer, \
         poststart, poststop; runc 1.1.5 runs prestart first and poststart before \
         startContainer",
    ) {
        assert_eq!(
            all,
            [
                "createRuntime",
                "createContainer",
                "prestart",
                "startContainer",
                "poststart",
                "poststop"
            ],
            "hook order"
        );
    }

    // The program runs after prestart and startContainer, and before poststart.
    let probes = read_probe_log(&probe_log);
    for kind in ["prestart", "startContainer"] {
        let (_, program_ran, cmdline) = probe_of(&probes, kind);
        assert!(!program_ran, "the user program ran before the {kind} hook");
        assert!(
            !cmdline.contains(PROGRAM_TAG),
            "the init had already exec'd the user program ({cmdline:?}) when the {kind} \
             hook ran"
        );
    }
    let (_, _, cmdline) = probe_of(&probes, "poststart");
    if cmdline.contains(PROGRAM_TAG)
        || !runc_deviates(&format!(
            "poststart hooks must run after the user program was exec'd; runc 1.1.5 runs them \
             inside create, when init is {cmdline:?}"
        ))
    {
        assert!(
            cmdline.contains(PROGRAM_TAG),
            "poststart ran before the user program was exec'd: init's cmdline was {cmdline:?}"
        );
    }

    for (name, st) in &entries {
        assert_eq!(st["id"], id.as_str(), "{name} state id: {st}");
        assert_eq!(st["bundle"], b.path_str(), "{name} state bundle: {st}");
        assert!(
            st["ociVersion"].is_string(),
            "{name} state ociVersion: {st}"
        );
        // Spec runtime.md "State": creating during create, created until the user
        // program runs, running after it did, stopped after it exited.
        let want = match name.as_str() {
            "createRuntime" | "createContainer" => "creating",
            "prestart" | "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        let deviation = match name.as_str() {
            "prestart" => {
                "prestart hooks run at start and must see status \"created\"; \
                           runc 1.1.5 runs them inside create and passes \"creating\""
            }
            "poststart" => {
                "poststart hooks must see status \"running\"; \
                            runc 1.1.5 passes \"created\""
            }
            _ => "",
        };
        if !(st["status"] != want && !deviation.is_empty() && runc_deviates(deviation)) {
            assert_eq!(st["status"], want, "{name} state status: {st}");
        }
        // pid: the init pid as seen by the host (REQUIRED for created/running).
        let required = matches!(want, "created" | "running");
        let in_container = matches!(name.as_str(), "createContainer" | "startContainer");
        if let Some(p) = st.get("pid").filter(|p| !p.is_null()) {
            if want != "stopped"
                && !(in_container
                    && p != pid
                    && runc_deviates(&format!(
                        "{name} hooks must see the host pid of init; \
                         runc 1.1.5 passes the container-namespace pid {p}"
                    )))
            {
                assert_eq!(*p, pid, "{name} state pid: {st}");
            }
        } else {
            assert!(!required, "{name} state lacks a pid: {st}");
        }
    }
}
