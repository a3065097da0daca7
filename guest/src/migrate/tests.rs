//! The ladder, both directions: exact outputs, lossy downgrades, invalid inputs and targets.

use serde_json::{Value, json};

use super::migrate;
use crate::schema::{codes, validate};

/// A 1.0 recurring event as the plugin emits it: flat series fields, an unknown field.
fn v1_0() -> Value {
    json!({"event_id": "e1", "event_type": "task.created", "event_version": "1.0", "task_id": 124,
           "user_id": "user-456", "timestamp": "2025-12-29T10:00:00Z", "x-trace": "abc",
           "payload": {"title": "Water", "due_date": "2025-12-30", "parent_task_id": 123,
                       "recurring_pattern": "DAILY", "dtstart": "2025-12-29", "series_id": "s-1",
                       "occurrence_index": 2, "colour": "green"}})
}

fn ok(event: &Value, target: &str) -> String {
    migrate(&event.to_string(), target).unwrap_or_else(|p| panic!("{target}: {p:?}"))
}

fn lossy(event: &Value, target: &str) -> Vec<String> {
    let problems = migrate(&event.to_string(), target).expect_err("must refuse");
    assert!(
        problems.iter().all(|p| p.code == codes::LOSSY_MIGRATION),
        "{problems:?}"
    );
    problems
        .into_iter()
        .map(|p| p.pointer.unwrap_or_default())
        .collect()
}

/// `v` with `value` at `pointer` (the parent must exist; the key is added or replaced).
fn patch(mut v: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let parent = v
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent is an object");
    parent.insert(key.to_string(), value);
    v
}

#[test]
fn up_the_ladder_exactly() {
    let v1_1 = ok(&v1_0(), "1.1");
    assert_eq!(
        v1_1,
        r#"{"event_id":"e1","event_type":"task.created","event_version":"1.1","task_id":124,"user_id":"user-456","timestamp":"2025-12-29T10:00:00Z","x-trace":"abc","payload":{"title":"Water","due_date":"2025-12-30","parent_task_id":123,"recurring_pattern":"DAILY","recurrence":{"dtstart":"2025-12-29","series_id":"s-1","occurrence_index":2},"colour":"green"}}"#
    );
    let v2_0 = ok(&v1_0(), "2.0");
    assert_eq!(
        v2_0,
        v1_1.replace("\"1.1\"", "\"2.0\"")
            .replace(":124", ":\"124\"")
            .replace(":123", ":\"123\"")
    );
    assert_eq!(validate(&v1_1), Ok(()));
    assert_eq!(validate(&v2_0), Ok(()));
}

#[test]
fn down_the_ladder_restores_the_original_bytes() {
    let original = v1_0().to_string();
    let v2_0 = ok(&v1_0(), "2.0");
    let back = migrate(&v2_0, "1.0").unwrap();
    assert_eq!(back, original);
    assert_eq!(migrate(&v2_0, "1.1").unwrap(), ok(&v1_0(), "1.1"));
}

#[test]
fn same_version_is_a_validated_copy() {
    assert_eq!(ok(&v1_0(), "1.0"), v1_0().to_string());
}

#[test]
fn shorthand_rrules_go_down_as_patterns() {
    let v = json!({"event_id": "e", "event_type": "task.created", "event_version": "1.1", "task_id": 1,
                   "user_id": "u", "timestamp": "2025-01-01T00:00:00Z",
                   "payload": {"recurrence": {"rrule": "FREQ=WEEKLY;INTERVAL=1", "anchor": "schedule",
                               "missed": "skip", "month_overflow": "skip", "series_id": "s"}}});
    assert_eq!(
        ok(&v, "1.0"),
        r#"{"event_id":"e","event_type":"task.created","event_version":"1.0","task_id":1,"user_id":"u","timestamp":"2025-01-01T00:00:00Z","payload":{"recurring_pattern":"WEEKLY","series_id":"s"}}"#
    );
    // MONTHLY clamps in 1.0, so an RRULE must say so to go down.
    let monthly = patch(
        patch(v, "/payload/recurrence/rrule", json!("FREQ=MONTHLY")),
        "/payload/recurrence/month_overflow",
        json!("clamp"),
    );
    assert!(ok(&monthly, "1.0").contains(r#""recurring_pattern":"MONTHLY""#));
}

#[test]
fn lossy_downgrades_name_every_field() {
    let rich = json!({"event_id": "e", "event_type": "task.created", "event_version": "2.0",
        "task_id": "7f3c2a9e-0000-5000-8000-000000000000", "user_id": "u",
        "timestamp": "2025-01-01T00:00:00Z",
        "payload": {"parent_task_id": "007", "recurrence": {
            "rrule": "FREQ=MONTHLY;BYDAY=-1FR", "tzid": "Europe/London", "anchor": "completion",
            "missed": "catch_up", "count": 12}}});
    assert_eq!(
        lossy(&rich, "1.0"),
        [
            "/task_id",
            "/payload/parent_task_id",
            "/payload/recurrence/rrule",
            "/payload/recurrence/tzid",
            "/payload/recurrence/anchor",
            "/payload/recurrence/missed",
            "/payload/recurrence/count",
        ]
    );
    // The ids alone stop 2.0 -> 1.1; the recurrence fits 1.1.
    assert_eq!(lossy(&rich, "1.1"), ["/task_id", "/payload/parent_task_id"]);
}

#[test]
fn lossy_recurrence_details() {
    let base = json!({"event_id": "e", "event_type": "task.created", "event_version": "1.1", "task_id": 1,
                      "user_id": "u", "timestamp": "2025-01-01T00:00:00Z",
                      "payload": {"recurring_pattern": "MONTHLY", "recurrence": {}}});
    let with = |k: &str, v: Value| patch(base.clone(), &format!("/payload/recurrence/{k}"), v);
    let rows = [
        (with("interval", json!(2)), "/payload/recurrence/interval"),
        (
            with("month_overflow", json!("skip")),
            "/payload/recurrence/month_overflow",
        ),
        (
            with("until", json!("2025-12-31")),
            "/payload/recurrence/until",
        ),
        (
            with("rrule", json!("FREQ=MONTHLY")),
            "/payload/recurrence/rrule",
        ), // skips, 1.0 clamps
        (
            with("rrule", json!("FREQ=DAILY")),
            "/payload/recurrence/rrule",
        ), // disagrees with MONTHLY
    ];
    for (event, pointer) in rows {
        assert_eq!(lossy(&event, "1.0"), [pointer], "{event}");
    }
    // Restating 1.0's implied values loses nothing.
    let implied = with("anchor", json!("schedule"));
    let implied = patch(implied, "/payload/recurrence/missed", json!("skip"));
    let implied = patch(
        implied,
        "/payload/recurrence/month_overflow",
        json!("clamp"),
    );
    let implied = patch(implied, "/payload/recurrence/interval", json!(1));
    let implied = patch(implied, "/payload/recurrence/tzid", Value::Null);
    assert!(ok(&implied, "1.0").ends_with(r#""payload":{"recurring_pattern":"MONTHLY"}}"#));
}

#[test]
fn invalid_inputs_and_targets() {
    let bad = migrate("{\"event_id\": 1}", "9.9").unwrap_err();
    assert_eq!(bad[0].code, codes::UNSUPPORTED_VERSION);
    assert_eq!(bad[0].pointer, None);
    assert!(
        bad.len() > 1,
        "the event's own problems are reported too: {bad:?}"
    );
    assert_eq!(
        migrate("not json", "1.0").unwrap_err()[0].code,
        codes::NOT_JSON
    );
    assert_eq!(
        migrate(&v1_0().to_string(), "1.0.0").unwrap_err()[0].code,
        codes::UNSUPPORTED_VERSION
    );
}

#[test]
fn integer_ids_of_any_size_survive_the_ladder() {
    for id in [json!(0), json!(-42), json!(u64::MAX), json!(i64::MIN)] {
        let v = patch(v1_0(), "/task_id", id.clone());
        let up = ok(&v, "2.0");
        assert_eq!(migrate(&up, "1.0").unwrap(), v.to_string(), "{id}");
    }
}

#[test]
fn exceptions_need_1_1_and_travel_between_1_1_and_2_0() {
    let base = json!({"event_id": "e", "event_type": "task.created", "event_version": "1.1", "task_id": 1,
                      "user_id": "u", "timestamp": "2025-01-01T00:00:00Z",
                      "payload": {"recurring_pattern": "DAILY", "recurrence": {
                          "exdates": ["2025-12-25"], "rdates": ["2025-12-27T10:00:00"]}}});
    assert_eq!(
        lossy(&base, "1.0"),
        ["/payload/recurrence/exdates", "/payload/recurrence/rdates"]
    );
    // An empty list says nothing 1.0 cannot.
    let empty = patch(base.clone(), "/payload/recurrence/exdates", json!([]));
    let empty = patch(empty, "/payload/recurrence/rdates", json!([]));
    let down: Value = serde_json::from_str(&ok(&empty, "1.0")).unwrap();
    assert!(down["payload"].get("recurrence").is_none(), "{down}");
    // 1.1 -> 2.0 -> 1.1 keeps them exactly.
    let up = ok(&base, "2.0");
    let up: Value = serde_json::from_str(&up).unwrap();
    assert_eq!(up["payload"]["recurrence"], base["payload"]["recurrence"]);
    let back: Value = serde_json::from_str(&ok(&up, "1.1")).unwrap();
    assert_eq!(back, base);
}
