//! The `--log` / `--log-format` / `--debug` sink that runc's callers read.
//!
//! * containerd reads `--log` as a stream of JSON objects and reports the *last* one with
//!   `"level":"error"`; one line that is not JSON, or a `time` that is not RFC 3339, and it shows
//!   nothing at all (docs `cli-contract.md` §7).
//! * podman json-decodes the *whole* file as one object, and otherwise falls back to our raw
//!   stderr, which it regex-matches. So the error text must reach stderr verbatim as well.
//! * During `create`/`exec`, our stderr is the container's stderr (conmon, containerd), so debug
//!   and warning records go to the log file only, never to stderr.
//!
//! Several capsa processes may append to one file (the bundle's `log.json`): each record is built
//! in memory and written with a single `write(2)` on an `O_APPEND` fd, so lines do not interleave.

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use capsa_linux::rfc3339;

/// Record format of the `--log` file, as in runc's `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// logrus text: `time="…" level=error msg="…"`.
    #[default]
    Text,
    /// One JSON object per line: `{"level":"error","msg":"…","time":"…"}`.
    Json,
}

/// Writes log records to the optional `--log` file.
#[derive(Debug)]
pub struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

impl Logger {
    /// Opens `path` for appending (created 0644 if missing). Without a path, records are dropped
    /// and only [`Logger::error`]'s stderr line remains.
    pub fn new(path: Option<&Path>, format: Format, debug: bool) -> io::Result<Logger> {
        let file = match path {
            // std opens with O_CLOEXEC, so the container never inherits this fd.
            Some(path) => Some(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o644)
                    .open(path)?,
            ),
            None => None,
        };
        Ok(Logger {
            file,
            format,
            debug,
        })
    }

    /// Whether `--debug` was given.
    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Logs a fatal error: a `level=error` record to the log file, and the bare message as one
    /// line on stderr.
    pub fn error(&self, msg: &str) {
        self.record("error", msg);
        let mut line = msg.trim_end_matches('\n').to_owned();
        line.push('\n');
        // stderr is unbuffered: this is a single write. If stderr is gone there is nowhere left
        // to report to, so the result is ignored.
        let _ = io::stderr().lock().write_all(line.as_bytes());
    }

    /// Logs a warning to the log file only.
    pub fn warn(&self, msg: &str) {
        self.record("warning", msg);
    }

    /// Logs a debug message to the log file only, and only with `--debug`.
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.record("debug", msg);
        }
    }

    fn record(&self, level: &str, msg: &str) {
        let Some(file) = &self.file else { return };
        let time = rfc3339::format_utc(SystemTime::now(), true);
        let line = render(self.format, level, msg, &time);
        // One write(2) on an O_APPEND fd; a failed log write must not turn into a second error.
        let _ = (&*file).write_all(line.as_bytes());
    }
}

/// Renders one record, newline included.
fn render(format: Format, level: &str, msg: &str, time: &str) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    match format {
        // Keys in logrus's (sorted) order.
        Format::Json => format!(
            "{{\"level\":{},\"msg\":{},\"time\":{}}}\n",
            quote(level),
            quote(msg),
            quote(time)
        ),
        Format::Text => format!("time={} level={level} msg={}\n", quote(time), quote(msg)),
    }
}

/// Installs a global `tracing` subscriber that forwards DEBUG-and-above events to
/// [`Logger::debug`]. Does nothing without `--debug`, which leaves tracing's no-op default.
///
/// Every event is written at level `debug`, whatever its tracing level: callers treat each
/// `"level":"error"` record as the reason the command failed, and that record is reserved for the
/// one final error that `main` logs with [`Logger::error`].
pub fn install_tracing(
    logger: Arc<Logger>,
) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    if !logger.debug_enabled() {
        return Ok(());
    }
    tracing::subscriber::set_global_default(DebugForwarder::new(logger))
}

/// A minimal `tracing::Subscriber`: no span tracking, events formatted into one message.
struct DebugForwarder {
    logger: Arc<Logger>,
    next_span: AtomicU64,
}

impl DebugForwarder {
    fn new(logger: Arc<Logger>) -> Self {
        DebugForwarder {
            logger,
            next_span: AtomicU64::new(1),
        }
    }
}

impl Subscriber for DebugForwarder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // In tracing's order, more verbose levels compare greater.
        *metadata.level() <= Level::DEBUG
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        // Ids must be non-zero and unique among live spans; spans are otherwise ignored.
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = EventText::default();
        event.record(&mut fields);
        self.logger.debug(&fields.finish());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Collects an event's `message` and its other fields as ` key=value`.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn finish(self) -> String {
        let mut text = self.message;
        if text.is_empty() {
            // No message: drop the leading space of the first field.
            return self.fields.trim_start().to_owned();
        }
        text.push_str(&self.fields);
        text
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The `message` field is fmt::Arguments, whose Debug output is its plain text.
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn json_error_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let logger = Logger::new(Some(&path), Format::Json, false).unwrap();
        logger.error("container \"x\" does not exist\n\ttab");
        logger.debug("not written without --debug");

        let lines = lines(&path);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist\n\ttab");
        let time = v["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
        assert!(lines[0].starts_with("{\"level\":\"error\",\"msg\":"));
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        // Created 0644, minus whatever the umask takes away.
        assert_eq!(mode & 0o777 & !0o644, 0, "{mode:o}");
    }

    #[test]
    fn appends_and_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        fs::write(
            &path,
            "{\"level\":\"info\",\"msg\":\"old\",\"time\":\"x\"}\n",
        )
        .unwrap();
        let logger = Logger::new(Some(&path), Format::Json, true).unwrap();
        logger.debug("step one");
        logger.warn("careful");
        let lines = lines(&path);
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("{\"level\":\"debug\",\"msg\":\"step one\","));
        assert!(lines[2].starts_with("{\"level\":\"warning\",\"msg\":\"careful\","));
    }

    #[test]
    fn text_format() {
        let line = render(Format::Text, "error", "say \"hi\"", "2024-01-02T03:04:05Z");
        assert_eq!(
            line,
            "time=\"2024-01-02T03:04:05Z\" level=error msg=\"say \\\"hi\\\"\"\n"
        );
    }

    #[test]
    fn no_log_file_is_fine() {
        let logger = Logger::new(None, Format::Json, true).unwrap();
        logger.debug("dropped");
        logger.warn("dropped");
    }

    #[test]
    fn concurrent_writers_do_not_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let long = "x".repeat(3000);
        std::thread::scope(|s| {
            for _ in 0..8 {
                // A Logger per thread: separate open file descriptions, as separate processes have.
                let logger = Logger::new(Some(&path), Format::Json, true).unwrap();
                let long = &long;
                s.spawn(move || {
                    for _ in 0..50 {
                        logger.debug(long);
                    }
                });
            }
        });
        let lines = lines(&path);
        assert_eq!(lines.len(), 400);
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["msg"].as_str().unwrap().len(), 3000);
        }
    }

    #[test]
    fn tracing_events_are_forwarded_as_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let logger = Arc::new(Logger::new(Some(&path), Format::Json, true).unwrap());
        tracing::subscriber::with_default(DebugForwarder::new(logger), || {
            let span = tracing::info_span!("create", id = "c1");
            let _guard = span.enter();
            tracing::debug!(pid = 42, path = "/x", "init started in {}", "ns");
            tracing::error!("boom");
            tracing::trace!("too verbose");
            tracing::info!(answer = 42);
        });
        let msgs: Vec<(String, String)> = lines(&path)
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["level"].as_str().unwrap().to_owned(),
                    v["msg"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let debug = |m: &str| ("debug".to_owned(), m.to_owned());
        assert_eq!(
            msgs,
            vec![
                debug("init started in ns pid=42 path=/x"),
                debug("boom"),
                debug("answer=42"),
            ]
        );
    }
}
