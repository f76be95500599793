//! Tests of `argv.rs`: every spelling runc's callers send, parsed through clap.
use std::path::PathBuf;

use clap::Parser;

use super::*;
use crate::cli::{CgroupManager, Command as Sub, OutputFormat, Rootless};
use crate::logging::Format;

fn os(args: &[&str]) -> Vec<OsString> {
    std::iter::once("capsa")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

fn parse(args: &[&str]) -> Cli {
    match Cli::try_parse_from(normalize(os(args))) {
        Ok(cli) => cli,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn unchanged(args: &[&str]) {
    assert_eq!(normalize(os(args)), os(args));
}

#[test]
fn containerd_create() {
    let cli = parse(&[
        "--root",
        "/run/containerd/runc/k8s.io",
        "--log",
        "/b/log.json",
        "--log-format",
        "json",
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/b/init.pid",
        "--console-socket",
        "/tmp/pty.sock",
        "--pidfd-socket",
        "/tmp/pidfd.sock",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "2",
        "c1",
    ]);
    assert_eq!(cli.root, Some(PathBuf::from("/run/containerd/runc/k8s.io")));
    assert_eq!(cli.log, Some(PathBuf::from("/b/log.json")));
    assert_eq!(cli.log_format, Format::Json);
    assert!(cli.systemd_cgroup && !cli.debug);
    let Sub::Create(c) = cli.command else {
        panic!()
    };
    assert_eq!(c.bundle, PathBuf::from("/b"));
    assert_eq!(c.pid_file, Some(PathBuf::from("/b/init.pid")));
    assert_eq!(c.console_socket, Some(PathBuf::from("/tmp/pty.sock")));
    assert_eq!(c.pidfd_socket, Some(PathBuf::from("/tmp/pidfd.sock")));
    assert!(c.no_pivot && c.no_new_keyring);
    assert_eq!(c.preserve_fds, 2);
    assert_eq!(c.id, "c1");
}

#[test]
fn create_defaults() {
    let cli = parse(&["create", "c1"]);
    assert_eq!(cli.root, None);
    assert_eq!(cli.log_format, Format::Text);
    assert_eq!(cli.rootless, None);
    let Sub::Create(c) = cli.command else {
        panic!()
    };
    assert_eq!(c.bundle, PathBuf::from("."));
    assert_eq!(c.preserve_fds, 0);
    assert!(!c.no_pivot && c.pid_file.is_none());
}

#[test]
fn containerd_exec() {
    let cli = parse(&[
        "exec",
        "--process",
        "/tmp/p.json",
        "--console-socket",
        "/tmp/s",
        "--detach",
        "--pid-file",
        "/b/e.pid",
        "c1",
    ]);
    let Sub::Exec(e) = cli.command else { panic!() };
    assert_eq!(e.process, Some(PathBuf::from("/tmp/p.json")));
    assert_eq!(e.console_socket, Some(PathBuf::from("/tmp/s")));
    assert_eq!(e.pid_file, Some(PathBuf::from("/b/e.pid")));
    assert!(e.detach && !e.tty);
    assert_eq!(e.id, "c1");
    assert!(e.command.is_empty());
}

#[test]
fn brief_exec_form() {
    let cli = parse(&[
        "exec",
        "--process",
        "f",
        "--detach",
        "--pid-file",
        "p",
        "id",
    ]);
    let Sub::Exec(e) = cli.command else { panic!() };
    assert_eq!(e.process, Some(PathBuf::from("f")));
    assert_eq!(e.pid_file, Some(PathBuf::from("p")));
    assert!(e.detach);
    assert_eq!(e.id, "id");
}

#[test]
fn containerd_other_subcommands() {
    let Sub::Kill(k) = parse(&["kill", "--all", "c1", "9"]).command else {
        panic!()
    };
    assert!(k.all);
    assert_eq!((k.id.as_str(), k.signal.as_str()), ("c1", "9"));

    let Sub::Delete(d) = parse(&["delete", "--force", "c1"]).command else {
        panic!()
    };
    assert!(d.force);
    assert_eq!(d.id, "c1");

    let Sub::Ps(p) = parse(&["ps", "--format", "json", "c1"]).command else {
        panic!()
    };
    assert_eq!(p.format, OutputFormat::Json);
    assert!(p.ps_args.is_empty());

    let Sub::Update(u) = parse(&["update", "--resources=-", "c1"]).command else {
        panic!()
    };
    assert_eq!(u.resources, Some(PathBuf::from("-")));

    let Sub::Events(e) = parse(&["events", "--stats", "c1"]).command else {
        panic!()
    };
    assert!(e.stats);
    assert_eq!(e.interval, "5s");
    let Sub::Events(e) = parse(&["events", "--interval=7s", "c1"]).command else {
        panic!()
    };
    assert!(!e.stats);
    assert_eq!(e.interval, "7s");

    let Sub::List(l) = parse(&["list", "--format=json"]).command else {
        panic!()
    };
    assert_eq!(l.format, OutputFormat::Json);
    assert!(matches!(parse(&["features"]).command, Sub::Features));
    assert!(matches!(parse(&["start", "c1"]).command, Sub::Start(i) if i.id == "c1"));
    assert!(matches!(parse(&["pause", "c1"]).command, Sub::Pause(i) if i.id == "c1"));
    assert!(matches!(parse(&["resume", "c1"]).command, Sub::Resume(i) if i.id == "c1"));
    assert!(matches!(parse(&["state", "c1"]).command, Sub::State(i) if i.id == "c1"));
}

#[test]
fn go_runc_single_dash_no_subreaper() {
    let args = [
        "run",
        "--detach",
        "--pid-file",
        "p",
        "-no-subreaper",
        "--bundle",
        "/b",
        "c1",
    ];
    let normalized = normalize(os(&args));
    assert_eq!(normalized[5], OsString::from("--no-subreaper"));
    let Sub::Run(r) = parse(&args).command else {
        panic!()
    };
    assert!(r.no_subreaper && r.detach && !r.keep);
    assert_eq!(r.create.bundle, PathBuf::from("/b"));
    assert_eq!(r.create.id, "c1");
}

#[test]
fn ps_table_keeps_ps_args() {
    assert_eq!(
        normalize(os(&["ps", "--format", "table", "c1", "-ef"])),
        os(&["ps", "--format", "table", "c1", "--", "-ef"])
    );
    let Sub::Ps(p) = parse(&["ps", "--format", "table", "c1", "-ef"]).command else {
        panic!()
    };
    assert_eq!(p.format, OutputFormat::Table);
    assert_eq!(p.ps_args, vec![OsString::from("-ef")]);

    // Even arguments that look like ps's own flags, or long flags, stay ps's.
    let Sub::Ps(p) = parse(&["ps", "c1", "-f", "-o", "pid", "-format"]).command else {
        panic!()
    };
    assert_eq!(p.format, OutputFormat::Table);
    assert_eq!(p.ps_args, os(&["-f", "-o", "pid", "-format"])[1..]);

    // As in Go, a `--` after the id is data too.
    let Sub::Ps(p) = parse(&["ps", "c1", "--", "-f"]).command else {
        panic!()
    };
    assert_eq!(p.ps_args, os(&["--", "-f"])[1..]);
}

#[test]
fn conmon_create_and_exec() {
    let cli = parse(&[
        "--systemd-cgroup",
        "--log-format=json",
        "--log",
        "/run/ctr/oci-log",
        "create",
        "--bundle",
        "/b",
        "--pid-file",
        "/run/ctr/pidfile",
        "--no-pivot",
        "--no-new-keyring",
        "--preserve-fds",
        "1",
        "--console-socket",
        "/tmp/conmon-term.ABC123",
        "c1",
    ]);
    assert!(cli.systemd_cgroup);
    assert_eq!(cli.log_format, Format::Json);
    assert_eq!(cli.log, Some(PathBuf::from("/run/ctr/oci-log")));
    let Sub::Create(c) = cli.command else {
        panic!()
    };
    assert_eq!(
        c.console_socket,
        Some(PathBuf::from("/tmp/conmon-term.ABC123"))
    );
    assert_eq!(c.preserve_fds, 1);

    let cli = parse(&[
        "exec",
        "--pid-file",
        "/x/pid",
        "--process",
        "/x/spec.json",
        "--detach",
        "--preserve-fds",
        "3",
        "c1",
    ]);
    let Sub::Exec(e) = cli.command else { panic!() };
    assert!(e.detach);
    assert_eq!(e.preserve_fds, 3);
    assert_eq!(e.process, Some(PathBuf::from("/x/spec.json")));
}

#[test]
fn podman_direct_calls() {
    let cli = parse(&["--cgroup-manager", "disabled", "kill", "c1", "15"]);
    assert_eq!(cli.cgroup_manager, Some(CgroupManager::Disabled));
    let Sub::Kill(k) = cli.command else { panic!() };
    assert!(!k.all);
    assert_eq!(k.signal, "15");

    let Sub::Update(u) = parse(&["update", "--resources=/tmp/r.json", "c1"]).command else {
        panic!()
    };
    assert_eq!(u.resources, Some(PathBuf::from("/tmp/r.json")));
}

#[test]
fn crio_calls() {
    let cli = parse(&["--root=/run/runc", "--systemd-cgroup", "start", "c1"]);
    assert_eq!(cli.root, Some(PathBuf::from("/run/runc")));
    assert!(cli.systemd_cgroup);

    let Sub::Kill(k) = parse(&["--root", "/r", "kill", "c1", "KILL"]).command else {
        panic!()
    };
    assert_eq!(
        (k.id.as_str(), k.signal.as_str(), k.all),
        ("c1", "KILL", false)
    );

    assert_eq!(
        normalize(os(&["kill", "-a", "c1", "9"])),
        os(&["kill", "-a", "c1", "--", "9"])
    );
    let Sub::Kill(k) = parse(&["kill", "-a", "c1", "9"]).command else {
        panic!()
    };
    assert!(k.all);
    assert_eq!((k.id.as_str(), k.signal.as_str()), ("c1", "9"));

    let Sub::Kill(k) = parse(&["kill", "c1"]).command else {
        panic!()
    };
    assert_eq!(k.signal, "SIGTERM");

    let Sub::Update(u) = parse(&["--root", "/r", "update", "--resources", "-", "c1"]).command
    else {
        panic!()
    };
    assert_eq!(u.resources, Some(PathBuf::from("-")));

    let Sub::Exec(e) = parse(&["--root", "/r", "exec", "--process", "/p.json", "c1"]).command
    else {
        panic!()
    };
    assert!(!e.detach && e.pid_file.is_none());
}

#[test]
fn go_style_single_dash_long_flags() {
    let args = [
        "-root=/x",
        "-log",
        "/l",
        "-log-format",
        "json",
        "-debug",
        "create",
        "-pid-file",
        "/p",
        "-bundle=/b",
        "c1",
    ];
    assert_eq!(
        normalize(os(&args)),
        os(&[
            "--root=/x",
            "--log",
            "/l",
            "--log-format",
            "json",
            "--debug",
            "create",
            "--pid-file",
            "/p",
            "--bundle=/b",
            "c1"
        ])
    );
    let cli = parse(&args);
    assert_eq!(cli.root, Some(PathBuf::from("/x")));
    assert_eq!(cli.log, Some(PathBuf::from("/l")));
    assert_eq!(cli.log_format, Format::Json);
    assert!(cli.debug);
    let Sub::Create(c) = cli.command else {
        panic!()
    };
    assert_eq!(c.pid_file, Some(PathBuf::from("/p")));
    assert_eq!(c.bundle, PathBuf::from("/b"));
}

#[test]
fn go_style_boolean_values() {
    let Sub::Delete(d) = parse(&["delete", "--force=false", "c1"]).command else {
        panic!()
    };
    assert!(!d.force);
    let Sub::Delete(d) = parse(&["delete", "-force=true", "c1"]).command else {
        panic!()
    };
    assert!(d.force);
    let Sub::Exec(e) = parse(&["exec", "--detach=true", "--tty=false", "c1"]).command else {
        panic!()
    };
    assert!(e.detach && !e.tty);
    let cli = parse(&["--systemd-cgroup=false", "--rootless=true", "state", "c1"]);
    assert!(!cli.systemd_cgroup);
    assert_eq!(cli.rootless, Some(Rootless::True));
    let cli = parse(&["--rootless", "auto", "state", "c1"]);
    assert_eq!(cli.rootless, Some(Rootless::Auto));
}

#[test]
fn short_flags_are_not_rewritten() {
    unchanged(&["delete", "-f", "c1"]);
    unchanged(&["create", "-b", "/b", "c1"]);
    unchanged(&["run", "-d", "-b", "/b", "c1"]);
    // `-b` takes the next argument, so `-root` here is a bundle path, not a flag.
    unchanged(&["create", "-b", "-root", "c1"]);
    let Sub::Create(c) = parse(&["create", "-b", "/b", "c1"]).command else {
        panic!()
    };
    assert_eq!(c.bundle, PathBuf::from("/b"));
    let Sub::Spec(s) = parse(&["spec", "-b", "/b", "-rootless"]).command else {
        panic!()
    };
    assert!(s.rootless);
    assert_eq!(s.bundle, Some(PathBuf::from("/b")));
}

#[test]
fn exec_command_is_kept_verbatim() {
    let args = [
        "exec",
        "-t",
        "-e",
        "A=1",
        "--env",
        "B=2",
        "-u",
        "1000:1000",
        "-g",
        "10",
        "--cap",
        "CAP_KILL",
        "--cgroup",
        "sub",
        "c1",
        "sh",
        "-c",
        "echo -root --detach",
    ];
    let mut expected = os(&args);
    expected.insert(16, OsString::from("--"));
    assert_eq!(normalize(os(&args)), expected);
    let Sub::Exec(e) = parse(&args).command else {
        panic!()
    };
    assert!(e.tty && !e.detach);
    assert_eq!(e.env, ["A=1", "B=2"]);
    assert_eq!(e.user.as_deref(), Some("1000:1000"));
    assert_eq!(e.additional_gids, [10]);
    assert_eq!(e.cap, ["CAP_KILL"]);
    assert_eq!(e.cgroup, ["sub"]);
    assert_eq!(e.id, "c1");
    assert_eq!(e.command, os(&["sh", "-c", "echo -root --detach"])[1..]);

    // A command that itself starts with a flag-like word.
    let Sub::Exec(e) = parse(&["exec", "c1", "ls", "-process", "--", "-l"]).command else {
        panic!()
    };
    assert_eq!(e.command, os(&["ls", "-process", "--", "-l"])[1..]);
}

#[test]
fn single_dash_help_is_long_help() {
    let err = Cli::try_parse_from(normalize(os(&["kill", "-help"]))).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
}

#[test]
fn unknown_subcommand_is_left_alone() {
    unchanged(&["checkpoint", "-image-path", "/x", "c1"]);
    assert!(Cli::try_parse_from(normalize(os(&["checkpoint", "--help"]))).is_err());
}
