//! Property: up then down is the identity (as JSON values) for any event of the lower version.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::migrate;
use crate::schema::validate;

fn optional<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

fn date_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2025-01-31".to_string()),
        Just("2025-01-31T09:00:00".to_string()),
        Just("2025-01-31T09:00:00Z".to_string()),
        Just("2024-02-29T23:30:00+05:30".to_string()),
    ]
}

/// Extra payload keys that mean nothing to the schema.
fn extras() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(
        (
            "x_[a-z]{1,6}",
            prop_oneof![
                Just(Value::Null),
                any::<i32>().prop_map(Value::from),
                "[ -~]{0,8}".prop_map(Value::from)
            ],
        ),
        0..3,
    )
}

/// A valid 1.0 event, series fields flat and in random places among other keys.
fn event_1_0() -> impl Strategy<Value = Value> {
    (
        any::<i64>(),
        optional(any::<u32>()),
        optional(prop_oneof![
            Just("DAILY"),
            Just("WEEKLY"),
            Just("MONTHLY"),
            Just("YEARLY")
        ]),
        optional(date_value()),
        optional("[a-z0-9-]{1,12}"),
        optional(1u32..1000),
        extras(),
        prop_oneof![
            Just("task.created"),
            Just("task.completed"),
            Just("task.deleted")
        ],
    )
        .prop_map(
            |(task, parent, pattern, dtstart, series, index, extras, kind)| {
                let mut payload = Map::new();
                for (k, v) in extras {
                    payload.insert(k, v);
                }
                if let Some(p) = parent {
                    payload.insert("parent_task_id".into(), p.into());
                }
                if let Some(p) = pattern {
                    payload.insert("recurring_pattern".into(), p.into());
                    // Series fields only come with a pattern (1.0 validation requires it).
                    if let Some(d) = dtstart {
                        payload.insert("dtstart".into(), d.into());
                    }
                    payload.insert("title".into(), "t".into());
                    if let Some(s) = series {
                        payload.insert("series_id".into(), s.into());
                    }
                    if let Some(i) = index {
                        payload.insert("occurrence_index".into(), i.into());
                    }
                }
                json!({"event_id": "e", "event_type": kind, "event_version": "1.0", "task_id": task,
                   "user_id": "u", "timestamp": "2025-01-01T00:00:00Z", "payload": payload})
            },
        )
}

/// A valid 1.1 event with a rich recurrence (integer ids, so it fits 1.1).
fn event_1_1() -> impl Strategy<Value = Value> {
    (
        any::<u64>(),
        prop_oneof![Just("FREQ=MONTHLY;BYDAY=-1FR"), Just("FREQ=WEEKLY;BYDAY=MO,WE"), Just("FREQ=DAILY;COUNT=3")],
        optional(prop_oneof![Just("Europe/London"), Just("America/New_York")]),
        optional(prop_oneof![Just("schedule"), Just("completion")]),
        optional(1u32..50),
        extras(),
    )
        .prop_map(|(task, rrule, tzid, anchor, index, extras)| {
            let mut rec = Map::new();
            rec.insert("rrule".into(), rrule.into());
            if let Some(t) = tzid {
                rec.insert("tzid".into(), t.into());
            }
            if let Some(a) = anchor {
                rec.insert("anchor".into(), a.into());
            }
            if let Some(i) = index {
                rec.insert("occurrence_index".into(), i.into());
            }
            let mut payload = Map::new();
            payload.insert("due_date".into(), "2025-01-31T09:00:00Z".into());
            payload.insert("recurrence".into(), Value::Object(rec));
            for (k, v) in extras {
                payload.insert(k, v);
            }
            json!({"event_id": "e", "event_type": "task.completed", "event_version": "1.1", "task_id": task,
                   "user_id": "u", "timestamp": "2025-01-01T00:00:00Z", "payload": payload})
        })
}

fn round_trip(event: &Value, up: &str, down: &str) -> Result<(), TestCaseError> {
    let text = event.to_string();
    prop_assert_eq!(validate(&text), Ok(()));
    let raised = migrate(&text, up).map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
    prop_assert_eq!(validate(&raised), Ok(()), "{}", raised);
    let lowered = migrate(&raised, down).map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
    // Identity as JSON values. The bytes come back too unless the 1.0 series fields were
    // interleaved with other keys: nesting them cannot remember their individual positions.
    let lowered: Value =
        serde_json::from_str(&lowered).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&lowered, event);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn up_then_down_is_identity_from_1_0(event in event_1_0()) {
        round_trip(&event, "1.1", "1.0")?;
        round_trip(&event, "2.0", "1.0")?;
    }

    #[test]
    fn up_then_down_is_identity_from_1_1(event in event_1_1()) {
        round_trip(&event, "2.0", "1.1")?;
    }
}
