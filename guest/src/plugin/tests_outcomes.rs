//! Handler outcomes: determinism, what comes back, what is left alone, what is rejected.

use serde_json::json;

use super::tests::{completed, data, delivery, emits, set_ts};
use super::*;
use crate::schema::codes;

#[test]
fn duplicates_are_byte_identical() {
    let event = completed(
        "1.1",
        json!(501),
        json!({"due_date": "2025-01-31T17:00:00", "remind_before": "PT15M",
        "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=-1FR", "tzid": "Europe/London"}}),
    );
    let first = handle(&delivery(&event));
    assert_eq!(handle(&delivery(&event)), first);
    // A redelivery (new CloudEvent id, later attempt) changes nothing either.
    let mut again = delivery(&event);
    again.id = "ce-2".into();
    again.attempt = 3;
    assert_eq!(handle(&again), first);
    // A second completion event for the same occurrence names the same new task and events.
    let other = set_ts(json!(event.clone()), "2025-12-29T11:00:00Z");
    let other = {
        let mut o = other;
        o["event_id"] = json!("evt-2");
        o
    };
    let (Outcome::Done { emits: a, .. }, Outcome::Done { emits: b, .. }) =
        (first, handle(&delivery(&other)))
    else {
        panic!()
    };
    assert_eq!(
        a.iter().map(|e| &e.id).collect::<Vec<_>>(),
        b.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    assert_eq!(data(&a[0])["task_id"], data(&b[0])["task_id"]);
}

#[test]
fn emitted_events_validate_and_come_back_quietly() {
    let event = completed(
        "1.0",
        json!(1),
        json!({"due_date": "2025-12-29", "recurring_pattern": "DAILY", "remind_before": "PT15M"}),
    );
    for e in emits(&event) {
        assert_eq!(crate::schema::validate(&e.data), Ok(()), "{}", e.data);
        let back = Delivery {
            data: e.data.clone(),
            ..delivery(&event)
        };
        assert!(
            matches!(handle(&back), Outcome::Done { emits, .. } if emits.is_empty()),
            "{}",
            e.kind
        );
    }
}

#[test]
fn other_events_are_done_without_emits() {
    let plain = completed(
        "1.0",
        json!(1),
        json!({"completed_at": "2025-12-29T10:00:00Z"}),
    );
    assert_eq!(emits(&plain), vec![]);
    for kind in [
        "task.created",
        "task.updated",
        "task.deleted",
        "reminder.due",
    ] {
        let mut e = completed("1.0", json!(1), json!({"recurring_pattern": "DAILY"}));
        e["event_type"] = json!(kind);
        assert_eq!(emits(&e), vec![], "{kind}");
    }
}

#[test]
fn invalid_deliveries_are_rejected_with_every_problem() {
    let not_json = Delivery {
        data: "{oops".into(),
        ..delivery(&json!({}))
    };
    assert!(
        matches!(handle(&not_json), Outcome::Reject(ps) if ps.len() == 1 && ps[0].code == codes::NOT_JSON)
    );
    let bad = completed(
        "1.0",
        json!("123"),
        json!({"recurring_pattern": "EVERY_SO_OFTEN"}),
    );
    let bad = {
        let mut b = bad;
        b["user_id"] = json!("");
        b
    };
    let Outcome::Reject(ps) = handle(&delivery(&bad)) else {
        panic!("must reject")
    };
    let got: Vec<(&str, Option<&str>)> = ps
        .iter()
        .map(|p| (p.code.as_str(), p.pointer.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (codes::WRONG_TYPE, Some("/task_id")),
            (codes::EMPTY_USER_ID, Some("/user_id")),
            (
                codes::INVALID_RECURRING_PATTERN,
                Some("/payload/recurring_pattern")
            ),
        ]
    );
}
