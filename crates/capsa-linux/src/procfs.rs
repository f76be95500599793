//! Facts about processes read from `/proc`, whose root is a parameter so
//! tests can point it at a fake tree.

use std::path::Path;

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One of R, S, D, Z, T, t, X, ...
    pub state: char,
    /// Clock ticks since boot (field 22).
    pub start_time: u64,
}

impl ProcStat {
    /// Running or sleeping, not a zombie or dead.
    pub fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `<proc>/<pid>/stat`; `None` when the process does not exist.
pub fn stat(proc_root: &Path, pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text)
}

/// The command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is `state`; `starttime` is field 22, 19 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// True when `pid` is the same live process that was recorded with
/// `start_time` (not a recycled pid, not a zombie).
pub fn is_alive(proc_root: &Path, pid: i32, start_time: u64) -> bool {
    pid > 0 && stat(proc_root, pid).is_some_and(|s| s.alive() && s.start_time == start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 184 0 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn reads_a_fake_proc_tree() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("42")).unwrap();
        std::fs::write(
            tmp.path().join("42/stat"),
            "42 (sh) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0",
        )
        .unwrap();
        assert_eq!(stat(tmp.path(), 42).unwrap().start_time, 555);
        assert!(!is_alive(tmp.path(), 42, 555), "a zombie is not alive");
        assert!(!is_alive(tmp.path(), 43, 555));
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let s = stat(Path::new("/proc"), me).unwrap();
        assert!(s.alive());
        assert!(is_alive(Path::new("/proc"), me, s.start_time));
        assert!(!is_alive(Path::new("/proc"), me, s.start_time + 1));
    }
}
