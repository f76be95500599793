//! The `--log` file in both formats, and the RFC 3339 times containerd parses.

use std::fs;
use std::path::Path;

use capsa_integration_test::{path_str, CmdOutput, Ctx};
use serde_json::Value;

/// `count` ASCII digits at the start of `s`, and the rest.
fn digits(s: &str, count: usize) -> Option<(u32, &str)> {
    let head = s.get(..count)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[count..]))
}

/// True for an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z`
/// or `+HH:MM` / `-HH:MM` (what Go's `time.Parse(time.RFC3339, …)` accepts).
fn is_rfc3339(s: &str) -> bool {
    fn parse(s: &str) -> Option<()> {
        let (_year, s) = digits(s, 4)?;
        let s = s.strip_prefix('-')?;
        let (month, s) = digits(s, 2)?;
        let s = s.strip_prefix('-')?;
        let (day, s) = digits(s, 2)?;
        let s = s.strip_prefix('T')?;
        let (hour, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (min, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (sec, mut s) = digits(s, 2)?;
        if !((1..=12).contains(&month)
            && (1..=31).contains(&day)
            && hour < 24
            && min < 60
            && sec <= 60)
        {
            return None;
        }
        if let Some(frac) = s.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            s = &frac[n..];
        }
        if s == "Z" {
            return Some(());
        }
        let s = s.strip_prefix('+').or_else(|| s.strip_prefix('-'))?;
        let (oh, s) = digits(s, 2)?;
        let s = s.strip_prefix(':')?;
        let (om, s) = digits(s, 2)?;
        (s.is_empty() && oh < 24 && om < 60).then_some(())
    }
    parse(s).is_some()
}

#[test]
fn rfc3339_shape_checker() {
    for good in [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.123456789Z",
        "2024-01-02T03:04:05+01:00",
        "2024-01-02T03:04:05.5-07:30",
    ] {
        assert!(is_rfc3339(good), "{good}");
    }
    for bad in [
        "",
        "2024-01-02 03:04:05Z",
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.Z",
        "2024-13-02T03:04:05Z",
        "2024-01-02T03:04:05+0100",
        "1700000000",
        "2024-01-02T03:04:05Zjunk",
    ] {
        assert!(!is_rfc3339(bad), "{bad}");
    }
}

/// The first line of the `--log` file, checked to be the only line.
pub(crate) fn single_log_line(log: &Path, out: &CmdOutput) -> String {
    let text = fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("read log file {}: {e}\n{out}", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "the --log file must hold exactly one line, got {text:?}\n{out}"
    );
    assert!(
        text.ends_with('\n'),
        "the log line must end with a newline: {text:?}"
    );
    lines[0].to_string()
}

/// Parses one JSON log line and checks `level`, `msg` and `time`; returns `msg`.
pub(crate) fn check_json_error_line(line: &str, needle: &str) -> String {
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
    assert!(v.is_object(), "log line is not a JSON object: {line}");
    assert_eq!(v["level"], "error", "log level: {line}");
    let msg = v["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("log line has no string msg: {line}"))
        .to_string();
    assert!(
        msg.contains(needle),
        "msg should mention {needle:?}: {line}"
    );
    let time = v["time"]
        .as_str()
        .unwrap_or_else(|| panic!("log line has no string time: {line}"));
    assert!(
        is_rfc3339(time),
        "time must be RFC 3339 (containerd parses it): {time:?}"
    );
    msg
}

#[test]
fn log_file_json_holds_one_error_object() {
    let ctx = Ctx::new();
    let id = ctx.new_id("logjson");
    let log = ctx.base().join("log.json");
    let out = ctx.cmd(&[
        "--log",
        path_str(&log),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    let err = out.assert_error_mentions("does not exist");
    let line = single_log_line(&log, &out);
    let msg = check_json_error_line(&line, "does not exist");
    assert!(
        err.contains(&msg),
        "stderr must carry the logged message {msg:?}:\n{out}"
    );
    assert_eq!(fs::read_dir(ctx.root()).expect("root").count(), 0);
}

#[test]
fn log_file_text_is_logrus_shaped() {
    let ctx = Ctx::new();
    let id = ctx.new_id("logtext");
    let log = ctx.base().join("log.txt");
    let out = ctx.cmd(&[
        "--log",
        path_str(&log),
        "--log-format",
        "text",
        "state",
        &id,
    ]);
    let err = out.assert_error_mentions("does not exist");
    let line = single_log_line(&log, &out);
    // time="2024-01-02T03:04:05Z" level=error msg="container does not exist"
    let rest = line
        .strip_prefix("time=\"")
        .unwrap_or_else(|| panic!("text log line must start with time=\": {line:?}"));
    let (time, rest) = rest
        .split_once('"')
        .unwrap_or_else(|| panic!("unterminated time: {line:?}"));
    assert!(is_rfc3339(time), "time must be RFC 3339: {line:?}");
    let msg = rest
        .strip_prefix(" level=error msg=\"")
        .and_then(|m| m.strip_suffix('"'))
        .unwrap_or_else(|| panic!("expected ` level=error msg=\"…\"`: {line:?}"));
    assert!(msg.contains("does not exist"), "{line:?}");
    assert!(
        err.contains(msg),
        "stderr must carry the logged message {msg:?}:\n{out}"
    );
}
