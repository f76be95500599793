//! `events [--stats] [--interval DURATION] <id>`: one JSON object per
//! line, as runc prints them (`{"type":"stats","id":…,"data":{…}}`,
//! `{"type":"oom","id":…}`). `--stats` prints one stats event and exits;
//! otherwise events stream until the container stops, then exit 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use capsa_linux::{Event, Runtime};

use super::{CommandError, CommandResult};
use crate::cli::EventsArgs;

pub fn events(rt: &Runtime, a: EventsArgs) -> CommandResult {
    let ns = parse_go_duration(&a.interval).map_err(|e| {
        CommandError::Usage(format!(
            "invalid value {:?} for flag -interval: {e}",
            a.interval
        ))
    })?;
    if ns <= 0 {
        // runc's wording.
        return Err(CommandError::Usage(
            "duration interval must be greater than 0".into(),
        ));
    }
    let interval = Duration::from_nanos(ns.unsigned_abs());
    if a.stats {
        let stats = rt.stats(&a.id)?;
        print_event(&Event::stats(&a.id, stats))?;
        return Ok(ExitCode::SUCCESS);
    }
    for event in rt.events(&a.id, interval)? {
        print_event(&event)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One compact JSON line, flushed at once: the reader acts on each event
/// as it comes.
fn print_event(event: &Event) -> Result<(), CommandError> {
    let text = serde_json::to_string(event)
        .map_err(|e| CommandError::Usage(format!("cannot render JSON: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|source| CommandError::Io {
            what: "write the event to stdout".into(),
            source,
        })
}

/// Parses a Go `time.Duration` string (what runc's `--interval` takes)
/// into nanoseconds: an optional sign, then decimal numbers, each with an
/// optional fraction and a unit of `ns`, `us` (or `µs`, `μs`), `ms`, `s`,
/// `m`, `h`, such as `5s`, `500ms`, `1m30s` or `1.5h`; a bare `0` is
/// allowed. Fractions are truncated to nanoseconds, as in Go.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("invalid duration".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => a.split_at(a.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("invalid duration".into());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit in duration".into()),
            _ => return Err(format!("unknown unit {unit:?} in duration")),
        };
        let int: u128 = match int_part {
            "" => 0,
            digits => digits.parse().map_err(|_| "duration out of range")?,
        };
        let mut value = int.checked_mul(unit_ns).ok_or("duration out of range")?;
        let mut scale = unit_ns;
        for digit in frac_part.bytes() {
            scale /= 10;
            value += u128::from(digit - b'0') * scale;
        }
        total = total
            .checked_add(value)
            .filter(|t| *t <= i64::MAX as u128)
            .ok_or("duration out of range")?;
        rest = next;
    }
    let total = total as i64; // At most i64::MAX, checked above.
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = |s: &str, ns: i64| assert_eq!(parse_go_duration(s), Ok(ns), "{s:?}");
        ok("5s", 5_000_000_000);
        ok("500ms", 500_000_000);
        ok("1m", 60_000_000_000);
        ok("1m30s", 90_000_000_000);
        ok("1h2m3s4ms5us6ns", 3_723_004_005_006);
        ok("1.5h", 5_400_000_000_000);
        ok(".5s", 500_000_000);
        ok("1.s", 1_000_000_000);
        ok("250us", 250_000);
        ok("250\u{b5}s", 250_000);
        ok("250\u{3bc}s", 250_000);
        ok("7ns", 7);
        ok("0", 0);
        ok("-0", 0);
        ok("0s", 0);
        ok("+2s", 2_000_000_000);
        ok("-5s", -5_000_000_000);
        ok("1.0000000001s", 1_000_000_000);
        for bad in [
            "",
            "-",
            "5",
            "s",
            "5x",
            "1.2.3s",
            "5 s",
            ".s",
            "9999999999h",
            "1e3s",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
