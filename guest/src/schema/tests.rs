//! Validation: one row per problem code and pointer, every problem at once, the README examples.

use serde_json::{Value, json};

use super::*;

/// A valid 1.1 event touching every recurrence field the table mutates.
pub(crate) fn base_1_1() -> Value {
    json!({
        "event_id": "evt-1", "event_type": "task.completed", "event_version": "1.1",
        "task_id": 501, "user_id": "user-456", "timestamp": "2025-01-31T17:05:00Z",
        "payload": {
            "title": "Submit timesheet", "due_date": "2025-01-31T17:00:00",
            "completed_at": "2025-01-31T17:05:00Z", "remind_before": "PT15M",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=-1FR", "tzid": "Europe/London",
                           "series_id": "s-1", "occurrence_index": 1}
        }
    })
}

/// `v` with the value at `pointer` replaced (or added); `None` removes it.
pub(crate) fn set(mut v: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let obj = v
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent is an object");
    match value {
        Some(value) => {
            obj.insert(key.to_string(), value);
        }
        None => {
            obj.shift_remove(key);
        }
    }
    v
}

/// (code, pointer) of every problem, in report order.
pub(crate) fn problems(text: &str) -> Vec<(String, Option<String>)> {
    match validate(text) {
        Ok(()) => Vec::new(),
        Err(ps) => ps.into_iter().map(|p| (p.code, p.pointer)).collect(),
    }
}

type Found = Vec<(String, Option<String>)>;

fn one(code: &str, pointer: &str) -> Found {
    vec![(code.to_string(), Some(pointer.to_string()))]
}

#[test]
fn readme_examples_validate() {
    assert_eq!(problems(&base_1_1().to_string()), vec![]);
    let v1_0 = json!({"event_id": "e", "event_type": "task.completed", "event_version": "1.0",
        "task_id": 123, "user_id": "user-456", "timestamp": "2025-12-29T10:00:00.123456Z",
        "payload": {"completed_at": "2025-12-29T10:00:00Z", "recurring_pattern": "DAILY"}});
    assert_eq!(problems(&v1_0.to_string()), vec![]);
    let v2_0 = set(
        set(base_1_1(), "/event_version", Some(json!("2.0"))),
        "/task_id",
        Some(json!("t-9")),
    );
    assert_eq!(problems(&v2_0.to_string()), vec![]);
}

#[test]
fn validation_table() {
    use codes::*;
    let rows: Vec<(&str, Option<Value>, Found)> = vec![
        ("/event_id", None, one(MISSING_FIELD, "/event_id")),
        ("/event_id", Some(json!("")), one(EMPTY_FIELD, "/event_id")),
        ("/event_id", Some(json!(7)), one(WRONG_TYPE, "/event_id")),
        (
            "/event_id",
            Some(Value::Null),
            one(MISSING_FIELD, "/event_id"),
        ),
        (
            "/event_type",
            Some(json!("task.exploded")),
            one(UNKNOWN_EVENT_TYPE, "/event_type"),
        ),
        (
            "/event_version",
            Some(json!("3.0")),
            one(UNSUPPORTED_VERSION, "/event_version"),
        ),
        (
            "/event_version",
            Some(json!(1.1)),
            one(WRONG_TYPE, "/event_version"),
        ),
        // Absent means 1.0 (the seed's reading), where payload.recurrence does not exist.
        (
            "/event_version",
            None,
            one(UNKNOWN_FIELD, "/payload/recurrence"),
        ),
        ("/task_id", Some(json!("501")), one(WRONG_TYPE, "/task_id")),
        ("/task_id", Some(json!(501.5)), one(WRONG_TYPE, "/task_id")),
        ("/task_id", None, one(MISSING_FIELD, "/task_id")),
        ("/user_id", Some(json!("")), one(EMPTY_USER_ID, "/user_id")),
        ("/user_id", None, one(MISSING_FIELD, "/user_id")),
        (
            "/timestamp",
            Some(json!("2025-01-31 17:05")),
            one(INVALID_TIMESTAMP, "/timestamp"),
        ),
        (
            "/timestamp",
            Some(json!("2025-01-31T17:05:00")),
            one(INVALID_TIMESTAMP, "/timestamp"),
        ),
        ("/payload", Some(json!([])), one(WRONG_TYPE, "/payload")),
        ("/payload", None, one(MISSING_FIELD, "/payload")),
        (
            "/payload/title",
            Some(json!(["x"])),
            one(WRONG_TYPE, "/payload/title"),
        ),
        (
            "/payload/due_date",
            Some(json!("31/01/2025")),
            one(INVALID_TIMESTAMP, "/payload/due_date"),
        ),
        (
            "/payload/completed_at",
            Some(json!("2025-01-31")),
            one(INVALID_TIMESTAMP, "/payload/completed_at"),
        ),
        (
            "/payload/remind_before",
            Some(json!("15 minutes")),
            one(INVALID_DURATION, "/payload/remind_before"),
        ),
        (
            "/payload/remind_before",
            Some(json!("P1M")),
            one(INVALID_DURATION, "/payload/remind_before"),
        ),
        (
            "/payload/remind_at",
            Some(json!("soon")),
            one(INVALID_TIMESTAMP, "/payload/remind_at"),
        ),
        (
            "/payload/parent_task_id",
            Some(json!("7")),
            one(WRONG_TYPE, "/payload/parent_task_id"),
        ),
        (
            "/payload/recurring_pattern",
            Some(json!("HOURLY")),
            one(INVALID_RECURRING_PATTERN, "/payload/recurring_pattern"),
        ),
        (
            "/payload/recurring_pattern",
            Some(json!(1)),
            one(WRONG_TYPE, "/payload/recurring_pattern"),
        ),
        (
            "/payload/series_id",
            Some(json!("s")),
            one(UNKNOWN_FIELD, "/payload/series_id"),
        ),
        (
            "/payload/recurrence",
            Some(json!("FREQ=DAILY")),
            one(WRONG_TYPE, "/payload/recurrence"),
        ),
        (
            "/payload/recurrence/rrule",
            Some(json!("FREQ=FORTNIGHTLY")),
            one(INVALID_RRULE, "/payload/recurrence/rrule"),
        ),
        (
            "/payload/recurrence/rrule",
            Some(json!("FREQ=YEARLY;BYEASTER=0")),
            one(UNSUPPORTED_RRULE, "/payload/recurrence/rrule"),
        ),
        // A zoned series needs a UTC UNTIL: only the engine, given the zone, can tell.
        (
            "/payload/recurrence/rrule",
            Some(json!("FREQ=DAILY;UNTIL=20250301T000000")),
            one(INVALID_RRULE, "/payload/recurrence/rrule"),
        ),
        (
            "/payload/recurrence/rrule",
            None,
            one(MISSING_FIELD, "/payload/recurrence/rrule"),
        ),
        (
            "/payload/recurrence/tzid",
            Some(json!("Mars/Base")),
            one(UNKNOWN_TIMEZONE, "/payload/recurrence/tzid"),
        ),
        (
            "/payload/recurrence/anchor",
            Some(json!("due")),
            one(INVALID_RECURRENCE, "/payload/recurrence/anchor"),
        ),
        (
            "/payload/recurrence/missed",
            Some(json!("catchup")),
            one(INVALID_RECURRENCE, "/payload/recurrence/missed"),
        ),
        (
            "/payload/recurrence/month_overflow",
            Some(json!("wrap")),
            one(INVALID_RECURRENCE, "/payload/recurrence/month_overflow"),
        ),
        (
            "/payload/recurrence/until",
            Some(json!("next year")),
            one(INVALID_TIMESTAMP, "/payload/recurrence/until"),
        ),
        (
            "/payload/recurrence/count",
            Some(json!(0)),
            one(WRONG_TYPE, "/payload/recurrence/count"),
        ),
        (
            "/payload/recurrence/count",
            Some(json!(5_000_000_000u64)),
            one(INVALID_RECURRENCE, "/payload/recurrence/count"),
        ),
        (
            "/payload/recurrence/interval",
            Some(json!(2)),
            one(INVALID_RECURRENCE, "/payload/recurrence/interval"),
        ),
        (
            "/payload/recurrence/series_id",
            Some(json!("")),
            one(EMPTY_FIELD, "/payload/recurrence/series_id"),
        ),
        (
            "/payload/recurrence/occurrence_index",
            Some(json!(-1)),
            one(WRONG_TYPE, "/payload/recurrence/occurrence_index"),
        ),
        (
            "/payload/recurrence/dtstart",
            Some(json!("2025-13-01")),
            one(INVALID_TIMESTAMP, "/payload/recurrence/dtstart"),
        ),
        (
            "/payload/recurrence/freq",
            Some(json!("DAILY")),
            one(UNKNOWN_FIELD, "/payload/recurrence/freq"),
        ),
        (
            "/payload/recurrence/a~b",
            Some(json!(1)),
            one(UNKNOWN_FIELD, "/payload/recurrence/a~0b"),
        ),
    ];
    for (pointer, value, expected) in rows {
        let text = set(base_1_1(), pointer, value.clone()).to_string();
        assert_eq!(problems(&text), expected, "{pointer} = {value:?}");
    }
}

#[test]
fn not_json_and_not_an_object() {
    for text in ["", "{", "nul", "{\"a\":1} x", "\u{feff}{}"] {
        assert_eq!(
            problems(text),
            vec![(codes::NOT_JSON.to_string(), None)],
            "{text:?}"
        );
    }
    for text in ["null", "[]", "1", "\"event\"", "true"] {
        assert_eq!(problems(text), one(codes::NOT_AN_OBJECT, ""), "{text:?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let bad = json!({
        "event_id": "", "event_type": "task.done", "event_version": "1.1", "task_id": "x",
        "user_id": "", "timestamp": "yesterday",
        "payload": {"due_date": "soon", "remind_before": "PT", "recurrence": {
            "rrule": "FREQ=DAILY;COUNT=3", "count": 3, "until": "2025-12-31", "tzid": "Nowhere/City",
            "anchor": "whenever", "occurrence_index": 0, "colour": "red"}}
    });
    use codes::*;
    let expect: Vec<(&str, &str)> = vec![
        (EMPTY_FIELD, "/event_id"),
        (UNKNOWN_EVENT_TYPE, "/event_type"),
        (WRONG_TYPE, "/task_id"),
        (EMPTY_USER_ID, "/user_id"),
        (INVALID_TIMESTAMP, "/timestamp"),
        (INVALID_TIMESTAMP, "/payload/due_date"),
        (INVALID_DURATION, "/payload/remind_before"),
        (UNKNOWN_FIELD, "/payload/recurrence/colour"),
        (WRONG_TYPE, "/payload/recurrence/occurrence_index"),
        (UNKNOWN_TIMEZONE, "/payload/recurrence/tzid"),
        (INVALID_RECURRENCE, "/payload/recurrence/anchor"),
        (INVALID_RECURRENCE, "/payload/recurrence"),
        (INVALID_RECURRENCE, "/payload/recurrence/until"),
        (INVALID_RECURRENCE, "/payload/recurrence/count"),
    ];
    let expect: Vec<(String, Option<String>)> = expect
        .into_iter()
        .map(|(c, p)| (c.to_string(), Some(p.to_string())))
        .collect();
    assert_eq!(problems(&bad.to_string()), expect);
}

#[test]
fn unusable_version_still_checks_the_envelope() {
    let v = json!({"event_id": 1, "event_version": "9.9", "task_id": "anything", "user_id": "u",
                   "timestamp": "2025-01-01T00:00:00Z", "event_type": "task.created",
                   "payload": {"due_date": "not checked without a version"}});
    assert_eq!(
        problems(&v.to_string()),
        vec![
            (codes::WRONG_TYPE.to_string(), Some("/event_id".to_string())),
            (
                codes::UNSUPPORTED_VERSION.to_string(),
                Some("/event_version".to_string())
            ),
        ]
    );
}

#[test]
fn ids_are_integers_before_2_0_and_strings_after() {
    let v2 = set(base_1_1(), "/event_version", Some(json!("2.0")));
    assert_eq!(
        problems(&v2.to_string()),
        one(codes::WRONG_TYPE, "/task_id")
    );
    let empty = set(v2.clone(), "/task_id", Some(json!("")));
    assert_eq!(
        problems(&empty.to_string()),
        one(codes::EMPTY_FIELD, "/task_id")
    );
    let parent = set(
        set(v2, "/task_id", Some(json!("a"))),
        "/payload/parent_task_id",
        Some(json!(5)),
    );
    assert_eq!(
        problems(&parent.to_string()),
        one(codes::WRONG_TYPE, "/payload/parent_task_id")
    );
    // Negative and u64-sized integers are integers.
    for id in [json!(-3), json!(u64::MAX)] {
        assert_eq!(
            problems(&set(base_1_1(), "/task_id", Some(id)).to_string()),
            vec![]
        );
    }
}

#[test]
fn parse_gives_the_2_0_view() {
    let e = parse(&base_1_1().to_string()).unwrap();
    assert_eq!(e.version, Version::V1_1);
    assert_eq!(e.task_id, "501");
    assert_eq!(e.event_type, EventType::TaskCompleted);
    assert_eq!(e.completion().raw, "2025-01-31T17:05:00Z");
    let spec = e.payload.recurrence.unwrap();
    assert_eq!(spec.rule_text().as_deref(), Some("FREQ=MONTHLY;BYDAY=-1FR"));
}
