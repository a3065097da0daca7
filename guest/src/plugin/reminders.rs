//! Reminders that fire: the timers a delivery sets or cancels (WIT `timers`).
//!
//! One timer per task, named `reminder:<task_id>` (the host keeps it within the event's user).
//! What each event type does to it:
//! - `task.created`, and `task.updated` carrying both `due_date` and `remind_before`: set it to
//!   publish `reminder.due` at due - remind_before (setting replaces the pending one, so an
//!   update reschedules). An update that sets either field to `null` cancels it; an update that
//!   carries only one of the two leaves it as it is, since a pure plugin cannot know the other
//!   (the task service sends both whenever either changes, as the next occurrence's
//!   `task.created` does).
//! - `task.completed` and `task.deleted`: cancel it. A completed recurring task's next
//!   occurrence gets its reminder from the `task.created` the plugin emits for it, read back
//!   through the same rule as any `task.created`, so both paths set the identical timer.
//! - reminder events: nothing.
//!
//! The `reminder.due` event: `event_version` of the event that set it, `task_id`, `user_id`,
//! `timestamp` = the reminder time (UTC), payload `title` (when known), `due_date` (as written)
//! and `remind_at` (in the due date's form). Its `event_id` is a UUIDv5 of all of that, so
//! setting the same reminder twice names the same event with the same bytes, and a reminder
//! that moved is a new event.
//!
//! When the reminder fires: `remind_at` as an instant; a floating time (a local or date-only
//! due date without `tzid`) has no zone to be read in and fires at that wall time in UTC.

use chrono::{Days, NaiveDateTime, TimeDelta};
use serde_json::{Map, Value};

use super::events::{emit, envelope_of};
use super::ids;
use crate::manifest::REMINDERS;
use crate::model::{Emit, Timer, TimerChange};
use crate::problem::Problem;
use crate::schema::clock::Clock;
use crate::schema::duration::Lead;
use crate::schema::time::{DateForm, DateKind, DateValue, format_instant, format_local};
use crate::schema::{EventType, TaskEvent, codes};

/// The timer of a task.
pub fn timer_name(task_id: &str) -> String {
    format!("reminder:{task_id}")
}

/// The timer changes of a valid event; `emits` are what the plugin publishes for it.
pub fn changes(event: &TaskEvent, emits: &[Emit]) -> Result<Vec<TimerChange>, Vec<Problem>> {
    let cancel = || TimerChange::Cancel(timer_name(&event.task_id));
    match event.event_type {
        EventType::TaskCreated => Ok(set(event)?.into_iter().collect()),
        EventType::TaskUpdated => match set(event)? {
            Some(set) => Ok(vec![set]),
            None if cleared(event) => Ok(vec![cancel()]),
            None => Ok(Vec::new()),
        },
        EventType::TaskDeleted => Ok(vec![cancel()]),
        EventType::TaskCompleted => {
            let mut changes = vec![cancel()];
            for created in emits.iter().filter(|e| e.kind == "task.created") {
                let next = crate::schema::parse(&created.data)
                    .map_err(|ps| internal(ps, "the next occurrence"))?;
                changes.extend(set(&next)?);
            }
            Ok(changes)
        }
        EventType::ReminderDue | EventType::ReminderScheduled => Ok(Vec::new()),
    }
}

/// The reminder of a task event carrying `due_date` and `remind_before`; None without them.
fn set(event: &TaskEvent) -> Result<Option<TimerChange>, Vec<Problem>> {
    let (Some(due), Some((raw_lead, lead))) =
        (&event.payload.due_date, &event.payload.remind_before)
    else {
        return Ok(None);
    };
    let tzid = event.payload.recurrence.as_ref().and_then(|r| r.tzid);
    let clock = Clock::resolve(tzid, &due.kind);
    let outside = || {
        let msg = format!("remind_before '{raw_lead}' puts the reminder outside the calendar");
        vec![Problem::at(
            codes::INVALID_DURATION,
            "/payload/remind_before",
            msg,
        )]
    };
    let remind =
        remind_at(clock, clock.wall(&due.kind), *lead, DateForm::of(due)).ok_or_else(outside)?;
    let at = DateValue::parse(&remind)
        .map(|v| utc(&v.kind))
        .ok_or_else(outside)?;

    let mut payload = Map::new();
    if let Some(title) = &event.payload.title {
        payload.insert("title".into(), title.as_str().into());
    }
    payload.insert("due_date".into(), due.raw.as_str().into());
    payload.insert("remind_at".into(), remind.as_str().into());
    let version = event.version.as_str();
    let mut parts = vec![
        "reminder.due",
        version,
        &event.user_id,
        &event.task_id,
        &due.raw,
        &remind,
    ];
    parts.extend(event.payload.title.as_deref());
    let event_id = ids::derive(&parts).to_string();
    let data = envelope_of(
        event,
        "reminder.due",
        &event_id,
        &event.task_id,
        &at,
        payload,
    );
    let emit = emit(
        event,
        REMINDERS,
        &format!("the reminder of task {}", event.task_id),
        data,
    )?;
    Ok(Some(TimerChange::Set(Timer {
        name: timer_name(&event.task_id),
        at,
        emit,
    })))
}

/// An update that removes the reminder: `due_date` or `remind_before` set to `null`.
fn cleared(event: &TaskEvent) -> bool {
    let payload = event.raw.get("payload").and_then(Value::as_object);
    ["due_date", "remind_before"]
        .iter()
        .any(|k| payload.is_some_and(|p| p.get(*k) == Some(&Value::Null)))
}

/// A date value as an RFC 3339 UTC instant; floating times read as UTC.
fn utc(kind: &DateKind) -> String {
    let t = match kind {
        DateKind::Instant(t) => t.naive_utc(),
        DateKind::Local(t) => *t,
        DateKind::Date(d) => d.and_time(chrono::NaiveTime::MIN),
    };
    format_local(t) + "Z"
}

fn internal(problems: Vec<Problem>, what: &str) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|p| Problem {
            code: codes::INTERNAL.into(),
            message: format!("{what} does not read back: {}", p.message),
            pointer: p.pointer,
        })
        .collect()
}

/// due - lead: nominal days on the wall clock, then exact seconds in elapsed time.
pub(super) fn remind_at(
    clock: Clock,
    due: NaiveDateTime,
    lead: Lead,
    form: DateForm,
) -> Option<String> {
    let days = due.checked_sub_days(Days::new(u64::try_from(lead.days).ok()?))?;
    let exact = TimeDelta::try_seconds(lead.seconds)?;
    match clock.instant(days) {
        Some(t) => {
            let at = clock.in_clock(t.checked_sub_signed(exact)?);
            Some(format_instant(
                at,
                matches!(form, DateForm::Instant { zulu: true }),
            ))
        }
        None => Some(format_local(days.checked_sub_signed(exact)?)),
    }
}
