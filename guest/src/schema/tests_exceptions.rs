//! `payload.recurrence.exdates` / `rdates`: validation, resolution onto the series' clock, the
//! next due date they produce, and their echo into the next task.

use serde_json::{Value, json};

use super::codes::*;
use super::resolve::series_of;
use super::tests::{base_1_1, problems, set};
use super::*;
use crate::model::{Delivery, Outcome};
use crate::recurrence::exceptions::ExceptionDate;
use crate::series::next_due;

fn at(code: &str, pointer: &str) -> (String, Option<String>) {
    (code.to_string(), Some(pointer.to_string()))
}

/// The monthly "last Friday" timesheet of `base_1_1`, with `exdates` and `rdates` set.
fn with(exdates: Value, rdates: Value) -> Value {
    let e = set(base_1_1(), "/payload/recurrence/exdates", Some(exdates));
    set(e, "/payload/recurrence/rdates", Some(rdates))
}

#[test]
fn bad_exception_lists_are_reported_per_item() {
    assert_eq!(problems(&with(json!([]), json!([])).to_string()), vec![]);
    let e = with(json!(["2025-02-28", 7, "soon"]), json!("2025-03-01"));
    assert_eq!(
        problems(&e.to_string()),
        vec![
            at(WRONG_TYPE, "/payload/recurrence/exdates/1"),
            at(INVALID_TIMESTAMP, "/payload/recurrence/exdates/2"),
            at(WRONG_TYPE, "/payload/recurrence/rdates"),
        ]
    );
    let many: Vec<String> = (0..1001).map(|_| "2025-02-28".to_string()).collect();
    let e = with(json!(many), json!([]));
    assert_eq!(
        problems(&e.to_string()),
        vec![at(INVALID_RECURRENCE, "/payload/recurrence")]
    );
}

#[test]
fn exceptions_resolve_onto_the_series_clock() {
    let e = with(
        json!(["2025-02-28", "2025-03-28T17:00:00"]),
        json!(["2025-03-03T09:00:00Z"]),
    );
    let r = series_of(&parse(&e.to_string()).unwrap()).unwrap();
    let local = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap();
    assert_eq!(
        r.series.exceptions.exdates,
        [
            ExceptionDate::Day(chrono::NaiveDate::from_ymd_opt(2025, 2, 28).unwrap()),
            ExceptionDate::At(local("2025-03-28T17:00:00")),
        ]
    );
    // An instant is read on the Europe/London clock (GMT in March before the change).
    assert_eq!(
        r.series.exceptions.rdates,
        [ExceptionDate::At(local("2025-03-03T09:00:00"))]
    );
    // The last Friday of February is excluded; the added Monday comes first.
    let next = next_due(&r.series, "2025-01-31T17:00:00", &r.completed_at, 1).unwrap();
    assert_eq!(next.as_deref(), Some("2025-03-03T09:00:00"));
    let after_it = next_due(&r.series, "2025-03-03T09:00:00", "2025-03-03T09:30:00Z", 2);
    assert_eq!(after_it.unwrap().as_deref(), Some("2025-04-25T17:00:00"));
}

#[test]
fn the_next_task_carries_its_exceptions() {
    let e = with(json!(["2025-02-28"]), json!([]));
    let delivery = Delivery {
        id: "d".into(),
        pubsub: "p".into(),
        topic: "task-events".into(),
        kind: "task.completed".into(),
        source: "test".into(),
        data: e.to_string(),
        attempt: 1,
    };
    let Outcome::Done { emits, .. } = crate::plugin::handle(&delivery) else {
        panic!("a valid completion is handled");
    };
    let created: Value = serde_json::from_str(&emits[0].data).unwrap();
    assert_eq!(created["payload"]["due_date"], "2025-03-28T17:00:00");
    assert_eq!(
        created["payload"]["recurrence"]["exdates"],
        json!(["2025-02-28"])
    );
    assert!(created["payload"]["recurrence"].get("rdates").is_none());
}
