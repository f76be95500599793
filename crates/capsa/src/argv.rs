//! Rewrites Go-`flag`-style argv into a form clap accepts.
//!
//! runc parses its command line with urfave/cli on top of Go's `flag` package, where a long flag
//! may be written with one dash: `-root=/x`, `-log /x`, `-pid-file p`, `-no-subreaper` (go-runc
//! really sends the last one). clap reads `-root` as the short flags `-r -o -o -t`, so before
//! parsing we turn such arguments into `--root=/x`, `--log /x`, ….
//!
//! Only names that are long flags of the command being parsed (the global command, then the
//! subcommand) are rewritten; the names come from clap's own definition in [`crate::cli`].
//! Short flags and clusters (`-a`, `-b x`, `-dt`) are left alone, and nothing after the
//! subcommand's first positional argument is touched, so `ps <id> -ef` and
//! `exec <id> sh -c …` reach the container verbatim. Because Go stops parsing flags at that first
//! positional while clap does not, a `--` is inserted right after it when more arguments follow:
//! `ps <id> -f` becomes `ps <id> -- -f`, and `-f` is a ps argument, not `--format`.

use std::ffi::OsString;

use clap::{Arg, Command, CommandFactory};

use crate::cli::Cli;

/// Returns `args` (program name first) with single-dash long flags rewritten to `--name`.
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    let mut root = Cli::command();
    // Fills in num_args and the implicit --help/--version/help, which the lookups below rely on.
    root.build();

    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    out.extend(args.next()); // program name

    let mut cmd: &Command = &root;
    let mut in_subcommand = false;
    while let Some(arg) = args.next() {
        // A non-UTF-8 argument cannot be a flag name; treat it like a positional.
        let text = arg.to_str().map(str::to_owned);
        match text.as_deref() {
            Some("--") => {
                out.push(arg);
                break;
            }
            Some(long) if long.starts_with("--") => {
                let (name, inline_value) = split_value(&long[2..]);
                out.push(arg);
                if !inline_value && find_long(cmd, name).is_some_and(takes_separate_value) {
                    out.extend(args.next());
                }
            }
            Some(dashed) if dashed.len() > 1 && dashed.starts_with('-') => {
                let body = &dashed[1..];
                let (name, inline_value) = split_value(body);
                match find_long(cmd, name).filter(|_| name.chars().count() > 1) {
                    Some(flag) => {
                        out.push(format!("--{body}").into());
                        if !inline_value && takes_separate_value(flag) {
                            out.extend(args.next());
                        }
                    }
                    None => {
                        out.push(arg);
                        if short_cluster_wants_next(cmd, body) {
                            out.extend(args.next());
                        }
                    }
                }
            }
            _ if !in_subcommand => {
                // The first positional at the top level names the subcommand.
                match text.as_deref().and_then(|name| cmd.find_subcommand(name)) {
                    Some(sub) => {
                        cmd = sub;
                        in_subcommand = true;
                        out.push(arg);
                    }
                    None => {
                        out.push(arg);
                        break;
                    }
                }
            }
            _ => {
                // First positional of the subcommand. Go's flag parsing stops here: everything
                // after it is data, even `-f` or `--`. clap would still match known flags among
                // later arguments, so an explicit `--` tells it that flags are over.
                out.push(arg);
                let rest: Vec<OsString> = args.by_ref().collect();
                if !rest.is_empty() {
                    out.push(OsString::from("--"));
                    out.extend(rest);
                }
                break;
            }
        }
    }
    out.extend(args);
    out
}

/// Splits `name=value` into the name and whether a value was attached.
fn split_value(flag: &str) -> (&str, bool) {
    match flag.split_once('=') {
        Some((name, _)) => (name, true),
        None => (flag, false),
    }
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|arg| {
        arg.get_long() == Some(name)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|arg| {
        arg.get_short() == Some(c)
            || arg
                .get_all_short_aliases()
                .is_some_and(|aliases| aliases.contains(&c))
    })
}

/// Whether the flag's value, when not attached with `=`, is the next argument. Not so for
/// switches, nor for the Go-style booleans, whose optional value requires `=`.
fn takes_separate_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
        && !arg.is_require_equals_set()
        && arg.get_num_args().is_some_and(|n| n.min_values() > 0)
}

/// For a short-flag cluster such as `-b`, `-dp` or `-bdir`: whether its last flag takes the next
/// argument as its value (nothing attached after it).
fn short_cluster_wants_next(cmd: &Command, cluster: &str) -> bool {
    let mut chars = cluster.chars();
    while let Some(c) = chars.next() {
        match find_short(cmd, c) {
            Some(flag) if takes_separate_value(flag) => return chars.as_str().is_empty(),
            Some(_) => {}
            None => return false,
        }
    }
    false
}

#[cfg(test)]
#[path = "argv_tests.rs"]
mod tests;
