//! A task event, parsed and checked in one pass: every problem is collected, none stops the
//! others from being found.
//!
//! Envelope (all versions): `event_id` (non-empty string), `event_type`, `event_version`,
//! `task_id`, `user_id` (non-empty string), `timestamp` (RFC 3339 instant), `payload` (object).
//! Other top-level keys are allowed and carried through migrations untouched. What the seed's
//! Python producers write is 1.0 as well: an absent `event_version` is 1.0, and a naive
//! `timestamp` / `completed_at` is UTC (see `seed`, which also says how the output shows it).
//!
//! Task ids (`task_id`, `payload.parent_task_id`) are JSON integers in 1.x and non-empty strings
//! in 2.0. The typed [`TaskEvent`] is the 2.0 view whatever the input version: integer ids are
//! held as their decimal text, which is exactly what 1.x -> 2.0 migration writes.
//!
//! Known payload fields, checked when present (the payload stays open for anything else):
//! `title` (string), `due_date`/`remind_at` (date value, see `time`), `completed_at` (instant),
//! `remind_before` (duration, see `duration`), `parent_task_id`, and the recurrence fields
//! (see `recurrence`). When `event_version` itself is unusable only the version-independent
//! fields are checked: which rules apply to the rest is unknown.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use super::codes;
use super::duration::{self, Lead};
use super::fields::{Obj, Problems};
use super::recurrence::{self, RecurrenceSpec};
use super::seed;
use super::time::{DateKind, DateValue, parse_instant, parse_naive_utc};
use super::version::Version;
use crate::problem::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    TaskCreated,
    TaskUpdated,
    TaskCompleted,
    TaskDeleted,
    ReminderDue,
    /// Emitted by this plugin next to a `task.created` with `remind_before`; it comes back on
    /// the `reminders` subscription, so it must validate.
    ReminderScheduled,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::TaskCreated,
        EventType::TaskUpdated,
        EventType::TaskCompleted,
        EventType::TaskDeleted,
        EventType::ReminderDue,
        EventType::ReminderScheduled,
    ];

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TaskCreated => "task.created",
            EventType::TaskUpdated => "task.updated",
            EventType::TaskCompleted => "task.completed",
            EventType::TaskDeleted => "task.deleted",
            EventType::ReminderDue => "reminder.due",
            EventType::ReminderScheduled => "reminder.scheduled",
        }
    }
}

/// An RFC 3339 instant and its text: as written, or, for a naive 1.0 time, as written plus
/// `Z`. Everything downstream (emitted `timestamp`, a `dtstart` taken from the completion, the
/// `Z` style of a computed due date) copies `raw`, so it carries the UTC reading onwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub raw: String,
    pub at: DateTime<FixedOffset>,
    /// Written without an offset and read as UTC (event_version 1.0 only).
    pub naive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub title: Option<String>,
    pub due_date: Option<DateValue>,
    pub completed_at: Option<Stamp>,
    /// `remind_before` as written and its meaning.
    pub remind_before: Option<(String, Lead)>,
    /// 2.0 view (decimal text for 1.x integers).
    pub parent_task_id: Option<String>,
    pub recurrence: Option<RecurrenceSpec>,
}

/// A valid task event, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvent {
    /// The version the event was written in (its fields below are the 2.0 view).
    pub version: Version,
    pub event_id: String,
    pub event_type: EventType,
    /// 2.0 view: a 1.x integer id as decimal text.
    pub task_id: String,
    pub user_id: String,
    pub timestamp: Stamp,
    pub payload: Payload,
    /// The event as parsed, for migrations, which rewrite it and keep unknown fields.
    pub raw: Map<String, Value>,
}

impl TaskEvent {
    /// When the task was completed: `payload.completed_at`, else the event's `timestamp`.
    pub fn completion(&self) -> &Stamp {
        self.payload
            .completed_at
            .as_ref()
            .unwrap_or(&self.timestamp)
    }
}

/// Parses and checks `text`; every problem on failure.
pub fn parse(text: &str) -> Result<TaskEvent, Vec<Problem>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // Category and position only: the parser's wording may change between versions, and
        // problem messages are compared byte for byte by golden cases.
        let what = if e.is_eof() {
            "unexpected end"
        } else {
            "syntax error"
        };
        let msg = format!(
            "the event is not JSON ({what} at line {}, column {})",
            e.line(),
            e.column()
        );
        vec![Problem::new(codes::NOT_JSON, msg)]
    })?;
    match value {
        Value::Object(map) => parse_map(map),
        other => {
            let msg = format!(
                "the event must be a JSON object, not {}",
                super::fields::type_name(&other)
            );
            Err(vec![Problem::at(codes::NOT_AN_OBJECT, "", msg)])
        }
    }
}

/// [`parse`] for an already-decoded object. `raw` of the result is `map` with the seed's
/// implicit 1.0 made explicit (`seed::make_explicit`).
pub fn parse_map(mut map: Map<String, Value>) -> Result<TaskEvent, Vec<Problem>> {
    let mut p = Problems::default();
    let root = Obj::new(&map, "");
    let event_id = p.req_str(root, "event_id").map(str::to_string);
    if event_id.as_deref() == Some("") {
        p.push(
            codes::EMPTY_FIELD,
            "/event_id",
            "event_id must not be empty",
        );
    }
    let event_type = p.req_str(root, "event_type").and_then(|s| {
        let t = EventType::parse(s);
        if t.is_none() {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            p.push(
                codes::UNKNOWN_EVENT_TYPE,
                "/event_type",
                format!("'{s}' is not one of {known:?}"),
            );
        }
        t
    });
    // Absent (or null): 1.0, the seed's own reading (its migration defaults to "1.0").
    let implied_version = root.get("event_version").is_none();
    let version = if implied_version {
        Some(seed::IMPLIED_VERSION)
    } else {
        p.req_str(root, "event_version").and_then(|s| {
            let v = Version::parse(s);
            if v.is_none() {
                let msg = format!(
                    "event_version '{s}' is not one of {:?}",
                    Version::ALL.map(Version::as_str)
                );
                p.push(codes::UNSUPPORTED_VERSION, "/event_version", msg);
            }
            v
        })
    };
    // The seed's version is the only one whose producers wrote naive UTC times.
    let naive_is_utc = version == Some(Version::V1_0);
    let task_id = read_task_id(root, "task_id", version, true, &mut p);
    let user_id = p.req_str(root, "user_id").map(str::to_string);
    if user_id.as_deref() == Some("") {
        p.push(
            codes::EMPTY_USER_ID,
            "/user_id",
            "user_id must not be empty: it partitions and isolates users",
        );
    }
    let timestamp = read_stamp(root, "timestamp", true, naive_is_utc, &mut p);
    let payload_map = if root.get("payload").is_none() {
        p.missing("/payload".into());
        None
    } else {
        p.opt_object(root, "payload")
    };
    let payload = match (payload_map, version) {
        (Some(m), Some(v)) => Some(read_payload(
            Obj::new(m, "/payload"),
            v,
            naive_is_utc,
            &mut p,
        )),
        _ => None,
    };
    if let (Some(pl), Some(m)) = (&payload, payload_map) {
        check_rule(pl, m, timestamp.as_ref(), &mut p);
    }
    let (
        Some(event_id),
        Some(event_type),
        Some(version),
        Some(task_id),
        Some(user_id),
        Some(timestamp),
        Some(payload),
        true,
    ) = (
        event_id,
        event_type,
        version,
        task_id,
        user_id,
        timestamp,
        payload,
        p.is_empty(),
    )
    else {
        if p.is_empty() {
            // Unreachable: every missing piece above records a problem. Kept so an invalid
            // event can never come back as an empty problem list.
            p.push(codes::INTERNAL, "", "the event could not be read");
        }
        return Err(p.0);
    };
    seed::make_explicit(
        &mut map,
        implied_version,
        naive_text(Some(&timestamp)),
        naive_text(payload.completed_at.as_ref()),
    );
    Ok(TaskEvent {
        version,
        event_id,
        event_type,
        task_id,
        user_id,
        timestamp,
        payload,
        raw: map,
    })
}

/// Checks an explicit RRULE against the series' clock: the due date's, else the
/// completion's. A value that was given but is broken leaves the clock unknown rather than
/// guessing from another one.
fn check_rule(pl: &Payload, m: &Map<String, Value>, timestamp: Option<&Stamp>, p: &mut Problems) {
    let Some(spec) = &pl.recurrence else { return };
    let given = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    let completion = if given("completed_at") {
        pl.completed_at.as_ref()
    } else {
        timestamp
    };
    let reference = match &pl.due_date {
        Some(due) => Some(due.kind),
        None if given("due_date") => None,
        None => completion.map(|c| DateKind::Instant(c.at)),
    };
    recurrence::check_rule(spec, reference, p);
}

fn read_payload(o: Obj<'_>, version: Version, naive_is_utc: bool, p: &mut Problems) -> Payload {
    let title = p.opt_str(o, "title").map(str::to_string);
    let due_date = recurrence::read_date(o, "due_date", p);
    let completed_at = read_stamp(o, "completed_at", false, naive_is_utc, p);
    let remind_before = p
        .opt_str(o, "remind_before")
        .and_then(|s| match duration::parse(s) {
            Ok(lead) => Some((s.to_string(), lead)),
            Err(why) => {
                let msg = format!("remind_before '{s}' {why}");
                p.push(codes::INVALID_DURATION, o.ptr("remind_before"), msg);
                None
            }
        });
    let _ = recurrence::read_date(o, "remind_at", p);
    let parent_task_id = read_task_id(o, "parent_task_id", Some(version), false, p);
    let recurrence = recurrence::read(o, version, p);
    Payload {
        title,
        due_date,
        completed_at,
        remind_before,
        parent_task_id,
        recurrence,
    }
}

/// A task id in the 2.0 view. With the version unknown only presence is checked.
fn read_task_id(
    o: Obj<'_>,
    key: &str,
    version: Option<Version>,
    required: bool,
    p: &mut Problems,
) -> Option<String> {
    let Some(v) = o.get(key) else {
        if required {
            p.missing(o.ptr(key));
        }
        return None;
    };
    let version = version?;
    if version.integer_ids() {
        let text = match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            _ => None,
        };
        if text.is_none() {
            p.wrong_type(
                o.ptr(key),
                &format!("an integer in event_version {version}"),
                v,
            );
        }
        return text;
    }
    match v.as_str() {
        None => {
            p.wrong_type(
                o.ptr(key),
                &format!("a string in event_version {version}"),
                v,
            );
            None
        }
        Some("") => {
            p.push(
                codes::EMPTY_FIELD,
                o.ptr(key),
                format!("{} must not be empty", o.ptr(key)),
            );
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

/// The text a naive stamp is to be written as (None when it had an offset).
fn naive_text(stamp: Option<&Stamp>) -> Option<&str> {
    stamp.filter(|s| s.naive).map(|s| s.raw.as_str())
}

/// An instant; with `naive_is_utc` (1.0) a naive date-time too, read as UTC.
fn read_stamp(
    o: Obj<'_>,
    key: &str,
    required: bool,
    naive_is_utc: bool,
    p: &mut Problems,
) -> Option<Stamp> {
    let raw = if required {
        p.req_str(o, key)
    } else {
        p.opt_str(o, key)
    }?;
    if let Some(at) = parse_instant(raw) {
        return Some(Stamp {
            raw: raw.to_string(),
            at,
            naive: false,
        });
    }
    let naive = parse_naive_utc(raw);
    if let (Some(at), true) = (naive, naive_is_utc) {
        return Some(Stamp {
            raw: format!("{raw}Z"),
            at,
            naive: true,
        });
    }
    let msg = if naive.is_some() {
        // Only the seed's own version gets the UTC reading: 1.1 and 2.0 were always explicit.
        format!("'{raw}' has no offset; only event_version 1.0 reads that as UTC (write '{raw}Z')")
    } else {
        format!("'{raw}' is not an RFC 3339 date-time with an offset (e.g. 2025-12-29T10:00:00Z)")
    };
    p.push(codes::INVALID_TIMESTAMP, o.ptr(key), msg);
    None
}
