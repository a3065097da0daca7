//! What the plugin does with each delivery.
//!
//! Contract of [`handle`]:
//! - the delivery's data is parsed and validated (`schema::parse`: the typed 2.0 view of the
//!   event, whatever version it came in). Not JSON, or invalid: `Reject` with every problem.
//! - `task.completed` of a recurring task: `Done` with a `task.created` for the next occurrence
//!   (topic `task-events`) and, when the task has `remind_before`, a `reminder.scheduled`
//!   (topic `reminders`), both keyed by `user_id` and written in the input's `event_version`.
//!   When the series has ended (COUNT, UNTIL, a rule that cannot match again): `Done`, no emits.
//! - any other valid event: `Done`, no emits.
//! - `dedupe_key` is always the event's `event_id`.
//! - never `Retry`: the plugin is a pure function of its input, so nothing it finds can get
//!   better by waiting. A problem the series engine reports for a valid event is a `Reject`
//!   (dead-lettered, replayable once a fixed plugin is deployed).
//!
//! The same delivery always yields byte-identical output: ids are UUIDv5 (see `ids`), JSON
//! objects are built in a fixed key order, nothing reads a clock.

mod ids;
mod next;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_outcomes;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_seed;

pub use ids::{MAX_SAFE_INTEGER, NAMESPACE, integer_id};

use crate::model::{Delivery, Outcome};
use crate::schema::{self, EventType};

pub fn handle(d: &Delivery) -> Outcome {
    let event = match schema::parse(&d.data) {
        Ok(event) => event,
        Err(problems) => return Outcome::Reject(problems),
    };
    let emits = match event.event_type {
        EventType::TaskCompleted => match next::next_occurrence(&event) {
            Ok(emits) => emits,
            Err(problems) => return Outcome::Reject(problems),
        },
        _ => Vec::new(),
    };
    Outcome::Done {
        dedupe_key: event.event_id,
        emits,
    }
}
