//! Reminders that fire: which timers each event type sets or cancels, when they fire, and that
//! a completion and the `task.created` it emits set the identical timer.

use serde_json::{Value, json};

use super::tests::{completed, data, delivery};
use super::*;
use crate::model::Timer;

fn timers(event: &Value) -> Vec<TimerChange> {
    match handle_timed(&delivery(event)) {
        (Outcome::Done { .. }, timers) => timers,
        other => panic!("expected done, got {other:?}"),
    }
}

fn set(event: &Value) -> Timer {
    match timers(event).as_slice() {
        [TimerChange::Set(t)] => t.clone(),
        other => panic!("expected one set, got {other:?}"),
    }
}

fn task(event_type: &str, version: &str, task_id: Value, payload: Value) -> Value {
    json!({"event_id": "evt-9", "event_type": event_type, "event_version": version,
           "task_id": task_id, "user_id": "user-456", "timestamp": "2025-12-29T10:00:00Z",
           "payload": payload})
}

#[test]
fn a_created_task_with_a_reminder_sets_a_timer_for_due_minus_lead() {
    let payload =
        json!({"title": "Gym", "due_date": "2026-01-05T09:00:00Z", "remind_before": "PT15M"});
    let t = set(&task("task.created", "2.0", json!("t-1"), payload));
    assert_eq!(t.name, "reminder:t-1");
    assert_eq!(t.at, "2026-01-05T08:45:00Z");
    assert_eq!(
        (t.emit.topic.as_str(), t.emit.key.as_str()),
        ("reminders", "user-456")
    );
    assert_eq!(t.emit.kind, "reminder.due");
    let due = data(&t.emit);
    assert_eq!(due["event_type"], "reminder.due");
    assert_eq!(due["event_version"], "2.0");
    assert_eq!(due["task_id"], "t-1");
    assert_eq!(due["user_id"], "user-456");
    assert_eq!(due["timestamp"], "2026-01-05T08:45:00Z");
    assert_eq!(due["event_id"], t.emit.id.as_str());
    assert_eq!(
        due["payload"],
        json!({"title": "Gym", "due_date": "2026-01-05T09:00:00Z", "remind_at": "2026-01-05T08:45:00Z"})
    );
    // It is a valid reminder.due: the `reminders` subscription accepts it.
    assert!(crate::schema::parse(&t.emit.data).is_ok());
}

#[test]
fn zones_and_nominal_days_decide_the_instant() {
    // P1D before 09:00 Berlin on the day after the spring change is 09:00 (+01:00) the day before.
    let payload = json!({"due_date": "2026-03-30T09:00:00", "remind_before": "P1D",
                         "recurrence": {"rrule": "FREQ=DAILY", "tzid": "Europe/Berlin"}});
    let t = set(&task("task.created", "2.0", json!("t-2"), payload));
    assert_eq!(t.at, "2026-03-29T07:00:00Z");
    // A floating due date has no zone: it fires at that wall time read as UTC.
    let floating = json!({"due_date": "2026-01-05", "remind_before": "PT1H"});
    assert_eq!(
        set(&task("task.created", "2.0", json!("t-3"), floating)).at,
        "2026-01-04T23:00:00Z"
    );
}

#[test]
fn updates_reschedule_clear_or_leave_the_reminder() {
    let both = json!({"due_date": "2026-01-06T09:00:00Z", "remind_before": "PT30M"});
    let t = set(&task("task.updated", "2.0", json!("t-1"), both));
    assert_eq!(
        (t.name.as_str(), t.at.as_str()),
        ("reminder:t-1", "2026-01-06T08:30:00Z")
    );
    let cleared = json!({"remind_before": null});
    assert_eq!(
        timers(&task("task.updated", "2.0", json!("t-1"), cleared)),
        [TimerChange::Cancel("reminder:t-1".into())]
    );
    let partial = json!({"title": "Gym at 10"});
    assert!(timers(&task("task.updated", "2.0", json!("t-1"), partial)).is_empty());
}

#[test]
fn deleting_or_completing_a_task_cancels_its_reminder() {
    let cancel = [TimerChange::Cancel("reminder:42".into())];
    assert_eq!(
        timers(&task("task.deleted", "1.0", json!(42), json!({}))),
        cancel
    );
    assert_eq!(timers(&completed("1.0", json!(42), json!({}))), cancel);
    assert!(timers(&task("reminder.due", "2.0", json!("t"), json!({}))).is_empty());
}

#[test]
fn a_completion_and_the_task_created_it_emits_set_the_same_timer() {
    for version in ["1.0", "1.1", "2.0"] {
        let payload = match version {
            "1.0" => json!({"recurring_pattern": "DAILY", "due_date": "2025-12-29T09:00:00Z",
                            "remind_before": "PT1H"}),
            _ => json!({"recurrence": {"rrule": "FREQ=DAILY", "tzid": "America/New_York"},
                        "due_date": "2025-12-29T09:00:00", "remind_before": "PT1H", "title": "Gym"}),
        };
        let task_id = if version == "2.0" {
            json!("t-7")
        } else {
            json!(7)
        };
        let completion = completed(version, task_id, payload);
        let (outcome, changes) = handle_timed(&delivery(&completion));
        let Outcome::Done { emits, .. } = outcome else {
            panic!("{outcome:?}")
        };
        let created = data(&emits[0]);
        let [TimerChange::Cancel(old), TimerChange::Set(next)] = changes.as_slice() else {
            panic!("{changes:?}")
        };
        assert_eq!(
            old,
            &format!(
                "reminder:{}",
                completion["task_id"].to_string().trim_matches('"')
            )
        );
        assert_eq!(
            next.name,
            format!(
                "reminder:{}",
                created["task_id"].to_string().trim_matches('"')
            )
        );
        assert_eq!(
            data(&next.emit)["task_id"],
            created["task_id"],
            "{version}: the new task's id"
        );
        assert_eq!(data(&next.emit)["event_version"], version);
        // The emitted task.created comes back on task-events and sets the identical timer.
        assert_eq!(set(&created), *next, "{version}");
    }
}

#[test]
fn a_moved_reminder_is_a_new_event_and_the_same_one_keeps_its_id() {
    let at = |due: &str| {
        let payload = json!({"due_date": due, "remind_before": "PT15M"});
        set(&task("task.updated", "2.0", json!("t-1"), payload)).emit
    };
    assert_eq!(at("2026-01-05T09:00:00Z"), at("2026-01-05T09:00:00Z"));
    assert_ne!(at("2026-01-05T09:00:00Z").id, at("2026-01-05T10:00:00Z").id);
    let mut other_user = task(
        "task.updated",
        "2.0",
        json!("t-1"),
        json!({"due_date": "2026-01-05T09:00:00Z", "remind_before": "PT15M"}),
    );
    other_user["user_id"] = json!("user-789");
    assert_ne!(set(&other_user).emit.id, at("2026-01-05T09:00:00Z").id);
}
