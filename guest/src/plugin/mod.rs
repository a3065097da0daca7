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
//! - [`handle_timed`] adds the timer changes of a `Done` (reminders that fire, `reminders`).
//! - `dedupe_key` is always the event's `event_id`.
//! - never `Retry`: the plugin is a pure function of its input, so nothing it finds can get
//!   better by waiting. A problem the series engine reports for a valid event is a `Reject`
//!   (dead-lettered, replayable once a fixed plugin is deployed).
//!
//! The same delivery always yields byte-identical output: ids are UUIDv5 (see `ids`), JSON
//! objects are built in a fixed key order, nothing reads a clock.

mod events;
mod ids;
mod next;
pub mod reminders;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_outcomes;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_reminders;
#[cfg(test)]
mod tests_seed;

pub use ids::{MAX_SAFE_INTEGER, NAMESPACE, integer_id};

use crate::model::{Delivery, Outcome, TimerChange};
use crate::schema::{self, EventType};

/// The verdict on one delivery (WIT `handler.handle`).
pub fn handle(d: &Delivery) -> Outcome {
    handle_timed(d).0
}

/// The verdict and, when it is `Done`, the timers it sets and cancels (WIT `timers.handle`).
pub fn handle_timed(d: &Delivery) -> (Outcome, Vec<TimerChange>) {
    let event = match schema::parse(&d.data) {
        Ok(event) => event,
        Err(problems) => return (Outcome::Reject(problems), Vec::new()),
    };
    let emits = match event.event_type {
        EventType::TaskCompleted => match next::next_occurrence(&event) {
            Ok(emits) => emits,
            Err(problems) => return (Outcome::Reject(problems), Vec::new()),
        },
        _ => Vec::new(),
    };
    let timers = match reminders::changes(&event, &emits) {
        Ok(timers) => timers,
        Err(problems) => return (Outcome::Reject(problems), Vec::new()),
    };
    let done = Outcome::Done {
        dedupe_key: event.event_id,
        emits,
    };
    (done, timers)
}
