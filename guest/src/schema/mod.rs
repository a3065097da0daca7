//! Task event schema: the event model of every supported version and its validation.
//!
//! Contract:
//! - [`validate`] reports EVERY problem of an event, each with a stable code (see [`codes`])
//!   and, except for `not-json`, a JSON pointer (RFC 6901) to the offending value.
//! - [`parse`] is the same check returning the typed, version-neutral [`TaskEvent`] (the 2.0
//!   view of the event), which the handler and the migrations work from: JSON is read once,
//!   here.
//! - Nothing here panics on any input, and nothing reads a clock.
//!
//! Versions: `1.0` is the seed's TaskEvent, `1.1` adds `payload.recurrence`, `2.0` makes task
//! ids strings (see [`version`], [`event`], [`recurrence`]). What 1.0 also accepts from the
//! seed's Python producers (no `event_version`, naive UTC instants) is in [`seed`].

pub mod clock;
pub mod codes;
pub mod duration;
pub mod event;
mod fields;
pub mod recurrence;
pub mod resolve;
pub mod seed;
pub mod time;
pub mod version;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_exceptions;
#[cfg(test)]
mod tests_recurrence;
#[cfg(test)]
mod tests_seed;

pub use event::{EventType, TaskEvent, parse, parse_map};
pub use version::Version;

use crate::problem::Problem;

/// Every problem with a task event (JSON text), or ok.
pub fn validate(event: &str) -> Result<(), Vec<Problem>> {
    parse(event).map(|_| ())
}
