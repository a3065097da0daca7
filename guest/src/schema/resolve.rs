//! From what an event says about its recurrence to the series the engine runs.
//!
//! Decisions (see also `clock`):
//! - The completed occurrence's due date is `payload.due_date`; without one (the seed's
//!   `{"recurring_pattern": "DAILY"}` events) it is the completion time, i.e. the task recurs
//!   from when it was done.
//! - The series start (`dtstart`, which month clamping is anchored on) is the stated `dtstart`,
//!   else that due date: the first task of a series starts it, and every emitted `task.created`
//!   carries it on, so Jan 31 -> Feb 28 -> Mar 31 never drifts.
//! - The completion (`completed_at`, else the event `timestamp`) drives `missed: skip` and
//!   `anchor: completion`.
//! - `until` is handed over as written (date-only means "through that day"); instants are
//!   re-expressed on the series' clock.

use chrono::NaiveDateTime;

use super::clock::Clock;
use super::event::{Stamp, TaskEvent};
use super::recurrence::RecurrenceSpec;
use super::time::{DateForm, DateKind, DateValue, format_local};
use crate::recurrence::exceptions::{ExceptionDate, Exceptions};
use crate::series::{End, Series};

pub use super::recurrence::RRULE_POINTER;

/// Everything the handler needs to ask for, and write, the next occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub series: Series,
    pub clock: Clock,
    /// The completed occurrence's due date, wall clock.
    pub previous_due: NaiveDateTime,
    /// The completion as the engine should read it (RFC 3339).
    pub completed_at: String,
    /// The form the next due date is written in: the form of the previous one.
    pub due_form: DateForm,
    /// The series start as written, echoed into the next task.
    pub dtstart_raw: String,
}

/// The series of a recurring event; None when it does not recur. Infallible on a valid event.
pub fn series_of(event: &TaskEvent) -> Option<Resolved> {
    let spec = event.payload.recurrence.as_ref()?;
    let completion = event.completion();
    let due = event.payload.due_date.as_ref();
    let reference = reference(due, completion);
    let clock = Clock::resolve(spec.tzid, &reference);
    let start = spec.dtstart.as_ref().or(due);
    let dtstart_kind = start.map(|d| d.kind).unwrap_or(reference);
    let end = match (&spec.until, spec.count) {
        (Some(until), _) => End::Until(clock.until_for_engine(until)),
        (None, Some(n)) => End::Count(n),
        (None, None) => End::Never,
    };
    let series = Series {
        rule: spec.rule_text()?,
        tzid: clock.engine_tz(),
        dtstart: format_local(clock.wall(&dtstart_kind)),
        anchor: spec.anchor.unwrap_or_default(),
        missed: spec.missed.unwrap_or_default(),
        month_overflow: spec.effective_overflow(),
        end,
        exceptions: exceptions_of(spec, clock),
    };
    Some(Resolved {
        series,
        clock,
        previous_due: clock.wall(&reference),
        completed_at: clock.instant_for_engine(completion.at),
        due_form: due.map(DateForm::of).unwrap_or(DateForm::Instant {
            zulu: is_zulu(&completion.raw),
        }),
        dtstart_raw: start
            .map(|d| d.raw.clone())
            .unwrap_or_else(|| completion.raw.clone()),
    })
}

/// `exdates`/`rdates` on the series' clock: a date-only value stays a whole day, a local time
/// is taken as written, an instant is seen as its wall-clock time on the clock.
fn exceptions_of(spec: &RecurrenceSpec, clock: Clock) -> Exceptions {
    let on_clock = |v: &DateValue| match v.kind {
        DateKind::Date(d) => ExceptionDate::Day(d),
        kind => ExceptionDate::At(clock.wall(&kind)),
    };
    Exceptions {
        exdates: spec.exdates.iter().map(on_clock).collect(),
        rdates: spec.rdates.iter().map(on_clock).collect(),
    }
}

fn reference(due: Option<&DateValue>, completion: &Stamp) -> DateKind {
    due.map(|d| d.kind)
        .unwrap_or(DateKind::Instant(completion.at))
}

fn is_zulu(raw: &str) -> bool {
    raw.ends_with('Z') || raw.ends_with('z')
}
