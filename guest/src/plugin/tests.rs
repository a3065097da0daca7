//! Handler cases: each shorthand in 1.0, RRULEs with zones in 1.1, string ids in 2.0, ends,
//! anchors, reminders. Outcomes and determinism: `tests_outcomes`.

use serde_json::{Value, json};

use super::*;
use crate::model::Emit;

pub(super) fn delivery(event: &Value) -> Delivery {
    Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "task-service".into(),
        data: event.to_string(),
        attempt: 1,
    }
}

/// A task.completed in `version` with `payload`.
pub(super) fn completed(version: &str, task_id: Value, payload: Value) -> Value {
    json!({"event_id": "evt-1", "event_type": "task.completed", "event_version": version,
           "task_id": task_id, "user_id": "user-456", "timestamp": "2025-12-29T10:00:00Z",
           "payload": payload})
}

pub(super) fn emits(event: &Value) -> Vec<Emit> {
    match handle(&delivery(event)) {
        Outcome::Done { dedupe_key, emits } => {
            assert_eq!(dedupe_key, event["event_id"].as_str().unwrap());
            emits
        }
        other => panic!("expected done, got {other:?}"),
    }
}

pub(super) fn data(e: &Emit) -> Value {
    serde_json::from_str(&e.data).unwrap()
}

/// The next due date of a completion (the one task.created), and that event.
pub(super) fn next(event: &Value) -> (String, Value) {
    let out = emits(event);
    assert_eq!(out.len(), 1, "{out:?}");
    let created = data(&out[0]);
    (
        created["payload"]["due_date"].as_str().unwrap().to_string(),
        created,
    )
}

/// The emitted task.created, completed at `completed_at`, as the next input.
pub(super) fn complete_again(created: &Value, completed_at: &str) -> Value {
    let mut e = created.clone();
    e["event_type"] = json!("task.completed");
    e["event_id"] = json!(format!("done-{}", e["event_id"].as_str().unwrap()));
    e["timestamp"] = json!(completed_at);
    e["payload"]["completed_at"] = json!(completed_at);
    e
}

#[test]
fn daily_1_0_exact_output() {
    let event = completed(
        "1.0",
        json!(123),
        json!({"title": "Water the plants", "due_date": "2025-12-29T09:00:00Z",
        "completed_at": "2025-12-29T10:00:00Z", "recurring_pattern": "DAILY"}),
    );
    let out = emits(&event);
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(
        (e.topic.as_str(), e.key.as_str(), e.kind.as_str()),
        ("task-events", "user-456", "task.created")
    );
    let series = ids::series_id("user-456", "123");
    let task = ids::integer_id(ids::task_uuid(&series, 2));
    assert_eq!(e.id, ids::event_id("task.created", &series, 2));
    assert_eq!(
        e.data,
        format!(
            r#"{{"event_id":"{}","event_type":"task.created","event_version":"1.0","task_id":{task},"user_id":"user-456","timestamp":"2025-12-29T10:00:00Z","payload":{{"title":"Water the plants","due_date":"2025-12-30T09:00:00Z","parent_task_id":123,"recurring_pattern":"DAILY","dtstart":"2025-12-29T09:00:00Z","series_id":"{series}","occurrence_index":2}}}}"#,
            e.id
        )
    );
    assert!((1..=MAX_SAFE_INTEGER).contains(&task));
}

#[test]
fn weekly_monthly_yearly_1_0() {
    let shorthand = |pattern: &str, due: &str| {
        completed(
            "1.0",
            json!(7),
            json!({"due_date": due, "recurring_pattern": pattern}),
        )
    };
    // 2025-12-29 is a Monday; completed the same morning.
    assert_eq!(next(&shorthand("WEEKLY", "2025-12-29")).0, "2026-01-05");
    // Month ends clamp, anchored on the series start: Jan 31 -> Feb 28 -> Mar 31.
    let (due, created) = next(&set_ts(
        shorthand("MONTHLY", "2025-01-31"),
        "2025-01-31T12:00:00Z",
    ));
    assert_eq!(due, "2025-02-28");
    assert_eq!(created["payload"]["dtstart"], "2025-01-31");
    assert_eq!(
        next(&complete_again(&created, "2025-02-28T12:00:00Z")).0,
        "2025-03-31"
    );
    // Feb 29 yearly: Feb 28 in common years, Feb 29 again in leap years.
    let (due, created) = next(&set_ts(
        shorthand("YEARLY", "2024-02-29"),
        "2024-02-29T12:00:00Z",
    ));
    assert_eq!(due, "2025-02-28");
    let (due, created) = next(&complete_again(&created, "2025-02-28T12:00:00Z"));
    assert_eq!(due, "2026-02-28");
    let (due, created) = next(&complete_again(&created, "2026-02-28T12:00:00Z"));
    assert_eq!(due, "2027-02-28");
    assert_eq!(
        next(&complete_again(&created, "2027-02-28T12:00:00Z")).0,
        "2028-02-29"
    );
}

pub(super) fn set_ts(mut e: Value, ts: &str) -> Value {
    e["timestamp"] = json!(ts);
    e
}

#[test]
fn seed_event_without_due_date_recurs_from_completion() {
    let seed = completed(
        "1.0",
        json!(123),
        json!({"recurring_pattern": "DAILY", "completed_at": "2025-12-29T10:00:00Z"}),
    );
    let (due, created) = next(&seed);
    assert_eq!(due, "2025-12-30T10:00:00Z");
    assert_eq!(created["payload"]["dtstart"], "2025-12-29T10:00:00Z");
}

#[test]
fn rrule_1_1_last_friday_in_london_across_dst() {
    let rec = json!({"rrule": "FREQ=MONTHLY;BYDAY=-1FR", "tzid": "Europe/London"});
    // Local due date: stays local. 2025-01-31 is the last Friday of January.
    let local = completed(
        "1.1",
        json!(501),
        json!({"due_date": "2025-01-31T17:00:00", "completed_at": "2025-01-31T17:05:00Z", "recurrence": rec}),
    );
    let (due, created) = next(&local);
    assert_eq!(due, "2025-02-28T17:00:00");
    let r = &created["payload"]["recurrence"];
    assert_eq!(
        r.to_string(),
        format!(
            r#"{{"rrule":"FREQ=MONTHLY;BYDAY=-1FR","dtstart":"2025-01-31T17:00:00","tzid":"Europe/London","anchor":"schedule","missed":"skip","month_overflow":"skip","series_id":"{}","occurrence_index":2}}"#,
            ids::series_id("user-456", "501")
        )
    );
    assert_eq!(created["event_version"], "1.1");
    assert!(created["task_id"].is_u64());
    // Instant due date: 17:00 GMT on Mar 28; the next last Friday is in BST, 17:00 = 16:00Z.
    let zulu = completed(
        "1.1",
        json!(501),
        json!({"due_date": "2025-03-28T17:00:00Z", "completed_at": "2025-03-28T17:05:00Z", "recurrence": rec}),
    );
    assert_eq!(next(&zulu).0, "2025-04-25T16:00:00Z");
    let offset = completed(
        "1.1",
        json!(501),
        json!({"due_date": "2025-03-28T17:00:00+00:00", "completed_at": "2025-03-28T17:05:00Z", "recurrence": rec}),
    );
    assert_eq!(next(&offset).0, "2025-04-25T17:00:00+01:00");
}

#[test]
fn string_ids_2_0() {
    let event = completed(
        "2.0",
        json!("task-abc"),
        json!({"due_date": "2025-12-29", "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=2"}}),
    );
    let (due, created) = next(&event);
    assert_eq!(due, "2025-12-31");
    let series = ids::series_id("user-456", "task-abc");
    assert_eq!(created["task_id"], ids::task_uuid(&series, 2).to_string());
    assert_eq!(created["payload"]["parent_task_id"], "task-abc");
    assert_eq!(created["event_version"], "2.0");
}

#[test]
fn count_and_until_end_the_series() {
    let with = |rec: Value| {
        completed(
            "1.1",
            json!(9),
            json!({"due_date": "2025-12-29", "recurring_pattern": "DAILY", "recurrence": rec}),
        )
    };
    assert_eq!(
        emits(&with(json!({"count": 3, "occurrence_index": 2}))).len(),
        1
    );
    assert_eq!(
        emits(&with(json!({"count": 3, "occurrence_index": 3}))),
        vec![]
    );
    assert_eq!(emits(&with(json!({"until": "2025-12-30"}))).len(), 1);
    assert_eq!(emits(&with(json!({"until": "2025-12-29"}))), vec![]);
    // A COUNT inside the rule ends it too (the RFC counts it from the series start).
    let rule = |dtstart: &str| {
        completed(
            "1.1",
            json!(9),
            json!({"due_date": "2025-12-29",
        "recurrence": {"rrule": "FREQ=DAILY;COUNT=2", "dtstart": dtstart, "occurrence_index": 2}}),
        )
    };
    assert_eq!(emits(&rule("2025-12-28")), vec![]);
    assert_eq!(next(&rule("2025-12-29")).0, "2025-12-30");
}

#[test]
fn anchor_and_missed() {
    // Due Dec 29, completed three days late on Jan 1 at 15:00.
    let with = |rec: Value| {
        let e = completed(
            "1.1",
            json!(9),
            json!({"due_date": "2025-12-29T09:00:00", "completed_at": "2026-01-01T15:00:00Z", "recurring_pattern": "DAILY", "recurrence": rec}),
        );
        next(&e).0
    };
    assert_eq!(
        with(json!({})),
        "2026-01-02T09:00:00",
        "skip: never born overdue"
    );
    assert_eq!(with(json!({"missed": "catch_up"})), "2025-12-30T09:00:00");
    assert_eq!(with(json!({"anchor": "completion"})), "2026-01-02T09:00:00");
    let weekly = completed(
        "1.1",
        json!(9),
        json!({"due_date": "2025-12-29T09:00:00", "completed_at": "2026-01-01T15:00:00Z", "recurring_pattern": "WEEKLY", "recurrence": {"anchor": "completion"}}),
    );
    assert_eq!(
        next(&weekly).0,
        "2026-01-08T09:00:00",
        "a week after the completion day"
    );
}

#[test]
fn remind_before_emits_a_reminder() {
    let event = completed(
        "1.1",
        json!(77),
        json!({"title": "Standup", "due_date": "2025-03-29T09:00:00", "remind_before": "P1DT15M",
        "recurring_pattern": "DAILY", "recurrence": {"tzid": "Europe/London"}, "completed_at": "2025-03-29T09:30:00Z"}),
    );
    let out = emits(&event);
    assert_eq!(out.len(), 2);
    let created = data(&out[0]);
    let reminder = data(&out[1]);
    assert_eq!(
        (
            out[1].topic.as_str(),
            out[1].key.as_str(),
            out[1].kind.as_str()
        ),
        ("reminders", "user-456", "reminder.scheduled")
    );
    assert_eq!(created["payload"]["due_date"], "2025-03-30T09:00:00");
    assert_eq!(created["payload"]["remind_before"], "P1DT15M");
    // Due 09:00 BST on Mar 30; one nominal day back is 09:00 GMT on Mar 29, minus 15 min.
    assert_eq!(
        out[1].data,
        format!(
            r#"{{"event_id":"{}","event_type":"reminder.scheduled","event_version":"1.1","task_id":{},"user_id":"user-456","timestamp":"2025-12-29T10:00:00Z","payload":{{"title":"Standup","due_date":"2025-03-30T09:00:00","remind_at":"2025-03-29T08:45:00+00:00"}}}}"#,
            out[1].id, created["task_id"]
        )
    );
    assert_eq!(reminder["task_id"], created["task_id"]);
    assert_ne!(out[0].id, out[1].id);
    // Floating series: the reminder is local wall clock too.
    let floating = completed(
        "1.0",
        json!(1),
        json!({"due_date": "2025-12-29", "recurring_pattern": "DAILY", "remind_before": "PT15M"}),
    );
    assert_eq!(
        data(&emits(&floating)[1])["payload"]["remind_at"],
        "2025-12-29T23:45:00"
    );
}
