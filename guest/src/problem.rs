//! The one error type of the plugin's domain code: a problem a user can act on.
//!
//! Every failure the plugin reports (an invalid event, a bad rule, a lossy migration) is a
//! `Problem` with a stable `code`, a readable `message` and, where it applies, a JSON pointer
//! (RFC 6901) to the offending value. Codes are part of the contract: never rename one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Stable, machine-readable code, e.g. `missing-field`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// JSON pointer to the offending value, e.g. `/payload/recurrence/rrule`.
    pub pointer: Option<String>,
}

impl Problem {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Problem {
            code: code.to_string(),
            message: message.into(),
            pointer: None,
        }
    }

    pub fn at(code: &str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            code: code.to_string(),
            message: message.into(),
            pointer: Some(pointer.into()),
        }
    }

    /// The same problem, re-rooted under `prefix` (e.g. a rule problem placed at
    /// `/payload/recurrence/rrule`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.pointer = Some(match self.pointer.take() {
            Some(p) => format!("{prefix}{p}"),
            None => prefix.to_string(),
        });
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pointer {
            Some(p) => write!(f, "{} at {}: {}", self.code, p, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for Problem {}
