//! `task.completed` of a recurring task -> the events that create its next occurrence.
//!
//! The next due date is `series::next_due` on the series `schema::resolve` builds, written in
//! the form of the completed task's due date (date-only, local, or an instant with `Z` or the
//! zone's offset). The emitted events are built in the newest layout and migrated down to the
//! input's version, so their shape per version is defined once, by the migration ladder.
//!
//! `task.created` carries: a new task id (UUIDv5 in 2.0; a positive 53-bit integer derived from
//! it in 1.x), `parent_task_id` = the completed task, the input's `user_id`, and as `timestamp`
//! the input's `timestamp` verbatim (the completion event's time is the creation's logical
//! time, and it is deterministic); payload `title`, `due_date`, `recurring_pattern` if the input
//! had one, the full recurrence (defaults resolved explicitly, `dtstart` = the series start,
//! `exdates`/`rdates` as written, `series_id`, `occurrence_index` + 1) and `remind_before`. Other payload fields are not copied:
//! the event names the next occurrence of a series, the task service owns the rest of its state.
//!
//! `reminder.scheduled` (with `remind_before`): the new task's id, payload `title`, `due_date`
//! and `remind_at` = due - remind_before (days nominal, on the wall clock; hours/minutes/seconds
//! exact), an RFC 3339 instant when the series has a zone or offset, else local wall clock.

use serde_json::{Map, Value};

use super::events::{emit, envelope_of};
use super::ids;
use super::reminders::remind_at;
use crate::manifest::{REMINDERS, TASK_EVENTS};
use crate::model::Emit;
use crate::problem::Problem;
use crate::schema::recurrence::{RecurrenceSpec, rule_parts};
use crate::schema::resolve::{RRULE_POINTER, Resolved, series_of};
use crate::schema::time::{format_local, parse_local};
use crate::schema::{TaskEvent, Version, codes};
use crate::series::{self, Anchor, Missed, MonthOverflow};

/// The emits for a completed task: none when it does not recur or its series has ended.
pub fn next_occurrence(event: &TaskEvent) -> Result<Vec<Emit>, Vec<Problem>> {
    let (Some(spec), Some(res)) = (&event.payload.recurrence, series_of(event)) else {
        return Ok(Vec::new());
    };
    let rule_at = if spec.rrule.is_some() {
        RRULE_POINTER
    } else {
        "/payload/recurring_pattern"
    };
    let index = spec.occurrence_index.unwrap_or(1);
    let Some(next_index) = index.checked_add(1) else {
        let msg = format!("occurrence_index {index} cannot be followed");
        return Err(vec![Problem::at(
            codes::INVALID_RECURRENCE,
            index_pointer(event.version),
            msg,
        )]);
    };
    let next = series::next_due(
        &res.series,
        &format_local(res.previous_due),
        &res.completed_at,
        index,
    )
    .map_err(|e| vec![e.under(rule_at)])?;
    let Some(next) = next else {
        return Ok(Vec::new());
    };
    let Some(next_wall) = parse_local(&next) else {
        let msg = format!("the series engine returned '{next}', not YYYY-MM-DDTHH:MM:SS");
        return Err(vec![Problem::at(codes::INTERNAL, rule_at, msg)]);
    };

    let series_id = spec
        .series_id
        .clone()
        .unwrap_or_else(|| ids::series_id(&event.user_id, &event.task_id));
    let scope = ids::scope(&event.user_id, spec.series_id.as_deref(), &series_id);
    let task_uuid = ids::task_uuid(&scope, next_index);
    let task_id = match event.version.integer_ids() {
        true => ids::integer_id(task_uuid).to_string(),
        false => task_uuid.to_string(),
    };
    let due_date = res.clock.format(next_wall, res.due_form);
    let ids = Ids {
        series_id: &series_id,
        scope: &scope,
        index: next_index,
        task_id: &task_id,
    };

    let what = format!("occurrence {next_index}");
    let mut emits = Vec::new();
    let created = task_created(event, spec, &res, &ids, &due_date);
    emits.push(emit(event, TASK_EVENTS, &what, created)?);
    if let Some((raw, lead)) = &event.payload.remind_before {
        let Some(remind_at) = remind_at(res.clock, next_wall, *lead, res.due_form) else {
            let msg = format!("remind_before '{raw}' puts the reminder outside the calendar");
            return Err(vec![Problem::at(
                codes::INVALID_DURATION,
                "/payload/remind_before",
                msg,
            )]);
        };
        let reminder = reminder_scheduled(event, &ids, &due_date, &remind_at);
        emits.push(emit(event, REMINDERS, &what, reminder)?);
    }
    Ok(emits)
}

/// Identifiers of the next occurrence.
struct Ids<'a> {
    series_id: &'a str,
    /// What task and event ids are derived from: names the user (plugin/ids.rs).
    scope: &'a str,
    index: u32,
    /// In the 2.0 view (decimal text of the integer id for 1.x).
    task_id: &'a str,
}

fn index_pointer(v: Version) -> &'static str {
    if v.has_recurrence_object() {
        "/payload/recurrence/occurrence_index"
    } else {
        "/payload/occurrence_index"
    }
}

/// The next occurrence's `task.created`, in the newest layout.
fn task_created(
    event: &TaskEvent,
    spec: &RecurrenceSpec,
    res: &Resolved,
    ids: &Ids,
    due: &str,
) -> Map<String, Value> {
    let mut payload = Map::new();
    if let Some(title) = &event.payload.title {
        payload.insert("title".into(), title.as_str().into());
    }
    payload.insert("due_date".into(), due.into());
    payload.insert("parent_task_id".into(), event.task_id.as_str().into());
    if let Some((raw, _)) = &spec.pattern {
        payload.insert("recurring_pattern".into(), raw.as_str().into());
    }
    payload.insert(
        "recurrence".into(),
        Value::Object(recurrence(spec, res, ids)),
    );
    if let Some((raw, _)) = &event.payload.remind_before {
        payload.insert("remind_before".into(), raw.as_str().into());
    }
    envelope(event, "task.created", ids, payload)
}

/// The recurrence echoed into the next task: what the input stated, defaults made explicit
/// (so each task carries its whole series definition), the series start, the next index.
fn recurrence(spec: &RecurrenceSpec, res: &Resolved, ids: &Ids) -> Map<String, Value> {
    let mut r = Map::new();
    if let Some(rrule) = &spec.rrule {
        r.insert("rrule".into(), rrule.as_str().into());
    }
    if let Some(n) = spec.interval {
        r.insert("interval".into(), n.into());
    }
    r.insert("dtstart".into(), res.dtstart_raw.as_str().into());
    if let Some(tz) = spec.tzid {
        r.insert("tzid".into(), tz.name().into());
    }
    let anchor = match res.series.anchor {
        Anchor::Schedule => "schedule",
        Anchor::Completion => "completion",
    };
    r.insert("anchor".into(), anchor.into());
    let missed = match res.series.missed {
        Missed::Skip => "skip",
        Missed::CatchUp => "catch_up",
    };
    r.insert("missed".into(), missed.into());
    // A rule with its own SKIP decides overflow itself; stating it too is a contradiction.
    let rule_skips = spec
        .rrule
        .as_deref()
        .is_some_and(|r| rule_parts(r).iter().any(|(n, _)| n == "SKIP"));
    if !rule_skips {
        let overflow = match res.series.month_overflow {
            MonthOverflow::Clamp => "clamp",
            MonthOverflow::Skip => "skip",
        };
        r.insert("month_overflow".into(), overflow.into());
    }
    if let Some(until) = &spec.until {
        r.insert("until".into(), until.raw.as_str().into());
    }
    if let Some(n) = spec.count {
        r.insert("count".into(), n.into());
    }
    // The exceptions travel with the series, as written, so every task can compute its next.
    for (key, dates) in [("exdates", &spec.exdates), ("rdates", &spec.rdates)] {
        if !dates.is_empty() {
            let raw: Vec<Value> = dates.iter().map(|d| d.raw.as_str().into()).collect();
            r.insert(key.into(), Value::Array(raw));
        }
    }
    r.insert("series_id".into(), ids.series_id.into());
    r.insert("occurrence_index".into(), ids.index.into());
    r
}

fn reminder_scheduled(
    event: &TaskEvent,
    ids: &Ids,
    due: &str,
    remind_at: &str,
) -> Map<String, Value> {
    let mut payload = Map::new();
    if let Some(title) = &event.payload.title {
        payload.insert("title".into(), title.as_str().into());
    }
    payload.insert("due_date".into(), due.into());
    payload.insert("remind_at".into(), remind_at.into());
    envelope(event, "reminder.scheduled", ids, payload)
}

/// The event envelope of a next-occurrence event.
fn envelope(
    event: &TaskEvent,
    event_type: &str,
    ids: &Ids,
    payload: Map<String, Value>,
) -> Map<String, Value> {
    let event_id = ids::event_id(event_type, ids.scope, ids.index);
    let timestamp = event.timestamp.raw.as_str();
    envelope_of(
        event,
        event_type,
        &event_id,
        ids.task_id,
        timestamp,
        payload,
    )
}
