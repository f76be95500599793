//! Errors of reading and validating a config. Each names the file and, where
//! there is one, the JSON path, so a user can find the line to fix.

use std::path::PathBuf;

/// Why a bundle's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The config file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON (syntax), with the position serde_json reports.
    #[error("{file}: line {line} column {column}: {message}")]
    Syntax {
        file: &'static str,
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON of the wrong shape, or a value that breaks a rule of the spec.
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: &'static str,
        path: String,
        message: String,
    },
    /// A part of the spec that capsa knows about but does not implement yet.
    #[error("{file}: {path}: {feature} is not supported by capsa yet")]
    Unsupported {
        file: &'static str,
        path: String,
        feature: String,
    },
}

const CONFIG: &str = "config.json";

impl SpecError {
    /// Drops a JSON path prefix (`process.` when the file is the process).
    pub(crate) fn strip_path_prefix(self, prefix: &str) -> Self {
        let strip = |p: String| p.strip_prefix(prefix).map(str::to_string).unwrap_or(p);
        match self {
            SpecError::Invalid {
                file,
                path,
                message,
            } => SpecError::Invalid {
                file,
                path: strip(path),
                message,
            },
            SpecError::Unsupported {
                file,
                path,
                feature,
            } => SpecError::Unsupported {
                file,
                path: strip(path),
                feature,
            },
            other => other,
        }
    }

    /// The same error, said of another file (`process.json` for `exec`).
    pub fn in_file(self, name: &'static str) -> Self {
        match self {
            SpecError::Syntax {
                line,
                column,
                message,
                ..
            } => SpecError::Syntax {
                file: name,
                line,
                column,
                message,
            },
            SpecError::Invalid { path, message, .. } => SpecError::Invalid {
                file: name,
                path,
                message,
            },
            SpecError::Unsupported { path, feature, .. } => SpecError::Unsupported {
                file: name,
                path,
                feature,
            },
            other => other,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError::Invalid {
            file: CONFIG,
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(path: impl Into<String>, feature: impl Into<String>) -> Self {
        SpecError::Unsupported {
            file: CONFIG,
            path: path.into(),
            feature: feature.into(),
        }
    }
}

/// Turns a serde_json error at `path` into the error a user reads.
pub(crate) fn from_serde(path: String, err: serde_json::Error) -> SpecError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => SpecError::Syntax {
            file: CONFIG,
            line: err.line(),
            column: err.column(),
            message: strip_position(&err.to_string()),
        },
        Category::Data => {
            let message = friendly_data_message(&path, &strip_position(&err.to_string()));
            let path = if path.is_empty() || path == "." {
                "(top level)".to_string()
            } else {
                path
            };
            SpecError::Invalid {
                file: CONFIG,
                path,
                message,
            }
        }
    }
}

/// serde_json appends " at line L column C"; we report the position ourselves.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Names the kind of value an unknown enum variant was meant to be, so that
/// `linux.namespaces[2].type: unknown variant `foo`` reads as
/// `unknown namespace "foo"`.
fn friendly_data_message(path: &str, msg: &str) -> String {
    // serde's wording, and oci-spec's own for capabilities.
    let value = if let Some(rest) = msg.strip_prefix("unknown variant `") {
        rest.split('`').next()
    } else if let Some(rest) = msg.strip_prefix("no variant for ") {
        rest.split(' ').next()
    } else {
        None
    };
    let Some(value) = value else {
        return msg.to_string();
    };
    let what = if path.contains("namespaces[") {
        "namespace"
    } else if path.contains("capabilities.") {
        "capability"
    } else if path.contains("rlimits[") {
        "rlimit"
    } else {
        return msg.to_string();
    };
    format!("unknown {what} \"{value}\"")
}
