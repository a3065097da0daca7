//! Validation of the recurrence layout per version, and how a series is resolved from it.

use serde_json::{Value, json};

use super::codes::*;
use super::resolve::series_of;
use super::tests::{base_1_1, problems, set};
use super::*;
use crate::series::{Anchor, End, Missed, MonthOverflow};

fn base_1_0() -> Value {
    json!({"event_id": "e", "event_type": "task.completed", "event_version": "1.0", "task_id": 123,
           "user_id": "user-456", "timestamp": "2025-01-31T10:00:00Z",
           "payload": {"due_date": "2025-01-31", "recurring_pattern": "MONTHLY"}})
}

fn at(code: &str, pointer: &str) -> (String, Option<String>) {
    (code.to_string(), Some(pointer.to_string()))
}

#[test]
fn version_1_0_keeps_series_fields_flat() {
    let flat = set(
        set(base_1_0(), "/payload/series_id", Some(json!("s"))),
        "/payload/dtstart",
        Some(json!("2025-01-31")),
    );
    assert_eq!(problems(&flat.to_string()), vec![]);
    let nested = set(
        base_1_0(),
        "/payload/recurrence",
        Some(json!({"rrule": "FREQ=DAILY"})),
    );
    assert_eq!(
        problems(&nested.to_string()),
        vec![at(UNKNOWN_FIELD, "/payload/recurrence")]
    );
    // Presence decides the layout, even for null.
    let null = set(base_1_0(), "/payload/recurrence", Some(Value::Null));
    assert_eq!(
        problems(&null.to_string()),
        vec![at(UNKNOWN_FIELD, "/payload/recurrence")]
    );
    let orphan = set(
        set(base_1_0(), "/payload/recurring_pattern", None),
        "/payload/occurrence_index",
        Some(json!(2)),
    );
    assert_eq!(
        problems(&orphan.to_string()),
        vec![at(MISSING_FIELD, "/payload/recurring_pattern")]
    );
}

#[test]
fn version_1_1_nests_them() {
    let flat = set(base_1_1(), "/payload/occurrence_index", Some(Value::Null));
    assert_eq!(
        problems(&flat.to_string()),
        vec![at(UNKNOWN_FIELD, "/payload/occurrence_index")]
    );
    // Shorthand alone, shorthand with interval, and both forms (rrule wins) are fine.
    let shorthand = set(base_1_1(), "/payload/recurrence", None);
    let shorthand = set(
        shorthand,
        "/payload/recurring_pattern",
        Some(json!("WEEKLY")),
    );
    assert_eq!(problems(&shorthand.to_string()), vec![]);
    let with_interval = set(
        shorthand.clone(),
        "/payload/recurrence",
        Some(json!({"interval": 2})),
    );
    assert_eq!(problems(&with_interval.to_string()), vec![]);
    let huge = set(
        shorthand,
        "/payload/recurrence",
        Some(json!({"interval": 5000})),
    );
    assert_eq!(
        problems(&huge.to_string()),
        vec![at(
            INVALID_RECURRING_PATTERN,
            "/payload/recurrence/interval"
        )]
    );
    let both = set(
        base_1_1(),
        "/payload/recurring_pattern",
        Some(json!("DAILY")),
    );
    assert_eq!(problems(&both.to_string()), vec![]);
}

#[test]
fn contradictions() {
    let skip = set(
        base_1_1(),
        "/payload/recurrence/rrule",
        Some(json!("FREQ=MONTHLY;RSCALE=GREGORIAN;SKIP=BACKWARD")),
    );
    assert_eq!(problems(&skip.to_string()), vec![]);
    let both = set(
        skip,
        "/payload/recurrence/month_overflow",
        Some(json!("clamp")),
    );
    assert_eq!(
        problems(&both.to_string()),
        vec![at(INVALID_RECURRENCE, "/payload/recurrence/month_overflow")]
    );
    let ends = set(
        set(base_1_1(), "/payload/recurrence/count", Some(json!(2))),
        "/payload/recurrence/until",
        Some(json!("2025-12-31")),
    );
    assert_eq!(
        problems(&ends.to_string()),
        vec![at(INVALID_RECURRENCE, "/payload/recurrence")]
    );
}

#[test]
fn series_from_a_zoned_rrule() {
    let e = parse(&base_1_1().to_string()).unwrap();
    let r = series_of(&e).unwrap();
    assert_eq!(r.series.rule, "FREQ=MONTHLY;BYDAY=-1FR");
    assert_eq!(r.series.tzid.as_deref(), Some("Europe/London"));
    assert_eq!(r.series.dtstart, "2025-01-31T17:00:00");
    assert_eq!(
        (r.series.anchor, r.series.missed),
        (Anchor::Schedule, Missed::Skip)
    );
    assert_eq!(
        r.series.month_overflow,
        MonthOverflow::Skip,
        "explicit RRULEs follow the RFC"
    );
    assert_eq!(r.series.end, End::Never);
    assert_eq!(r.completed_at, "2025-01-31T17:05:00+00:00");
    assert_eq!(r.dtstart_raw, "2025-01-31T17:00:00");
}

#[test]
fn series_from_the_seed_shorthand() {
    let e = parse(&base_1_0().to_string()).unwrap();
    let r = series_of(&e).unwrap();
    assert_eq!(r.series.rule, "FREQ=MONTHLY");
    assert_eq!(r.series.tzid, None, "a date-only due date is floating");
    assert_eq!(r.series.dtstart, "2025-01-31T00:00:00");
    assert_eq!(
        r.series.month_overflow,
        MonthOverflow::Clamp,
        "shorthand clamps"
    );
    // Without a due date the task recurs from its completion, on the completion's offset.
    let no_due = set(base_1_0(), "/payload/due_date", None);
    let no_due = set(
        no_due,
        "/timestamp",
        Some(json!("2025-01-31T10:00:00+02:00")),
    );
    let r = series_of(&parse(&no_due.to_string()).unwrap()).unwrap();
    assert_eq!(r.series.tzid.as_deref(), Some("Etc/GMT-2"));
    assert_eq!(r.series.dtstart, "2025-01-31T10:00:00");
    assert_eq!(r.dtstart_raw, "2025-01-31T10:00:00+02:00");
}

#[test]
fn instants_map_onto_the_series_clock() {
    let zulu = set(
        base_1_0(),
        "/payload/due_date",
        Some(json!("2025-01-31T09:00:00Z")),
    );
    let r = series_of(&parse(&zulu.to_string()).unwrap()).unwrap();
    assert_eq!(
        (r.series.tzid.as_deref(), r.series.dtstart.as_str()),
        (Some("UTC"), "2025-01-31T09:00:00")
    );
    let india = set(
        base_1_0(),
        "/payload/due_date",
        Some(json!("2025-01-31T09:00:00+05:30")),
    );
    let r = series_of(&parse(&india.to_string()).unwrap()).unwrap();
    assert_eq!(
        r.series.tzid, None,
        "no Etc zone for +05:30: floating, instants converted"
    );
    assert_eq!(r.completed_at, "2025-01-31T15:30:00+05:30");
    let until = set(
        base_1_1(),
        "/payload/recurrence/until",
        Some(json!("2025-06-30T23:00:00-04:00")),
    );
    let r = series_of(&parse(&until.to_string()).unwrap()).unwrap();
    assert_eq!(
        r.series.end,
        End::Until("2025-06-30T23:00:00-04:00".into()),
        "zoned: the instant as is"
    );
}
