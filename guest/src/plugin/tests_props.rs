//! Nothing panics, whatever arrives: arbitrary text, arbitrary JSON, and valid events with one
//! field replaced by arbitrary JSON (which reaches much deeper than random text does).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::handle;
use crate::migrate::migrate;
use crate::model::{Delivery, Outcome};
use crate::schema::validate;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        // Strings the schema gives meaning to, so mutations hit real code paths.
        prop_oneof![
            Just("2025-01-31"),
            Just("2025-01-31T09:00:00"),
            Just("2025-01-31T09:00:00+05:30"),
            Just("FREQ=MONTHLY;BYDAY=-1FR"),
            Just("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            Just("FREQ=DAILY;UNTIL=20250101T000000Z"),
            Just("DAILY"),
            Just("Europe/London"),
            Just("P1D"),
            Just("PT15M"),
            Just("clamp"),
            Just("completion"),
            Just("catch_up"),
            Just("1.0"),
            Just("2.0"),
            Just("task.completed"),
            Just("9999-12-31T23:59:59Z"),
            Just("0001-01-01"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,16}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Pointers into [`valid`] whose values the mutation test replaces.
const POINTERS: [&str; 16] = [
    "/event_id",
    "/event_type",
    "/event_version",
    "/task_id",
    "/user_id",
    "/timestamp",
    "/payload",
    "/payload/due_date",
    "/payload/remind_before",
    "/payload/recurring_pattern",
    "/payload/recurrence",
    "/payload/recurrence/rrule",
    "/payload/recurrence/tzid",
    "/payload/recurrence/until",
    "/payload/recurrence/dtstart",
    "/payload/recurrence/occurrence_index",
];

fn valid(version: &str) -> Value {
    json!({"event_id": "e", "event_type": "task.completed", "event_version": version, "task_id": 1,
           "user_id": "u", "timestamp": "2025-01-31T10:00:00Z",
           "payload": {"due_date": "2025-01-31", "remind_before": "PT15M", "recurring_pattern": "MONTHLY",
                       "recurrence": {"rrule": "FREQ=MONTHLY", "tzid": "Europe/London", "until": "2026-01-01",
                                      "dtstart": "2025-01-31", "occurrence_index": 1}}})
}

fn exercise(text: &str) {
    let _ = validate(text);
    for target in ["1.0", "1.1", "2.0", "3.0"] {
        if let Ok(out) = migrate(text, target) {
            // Whatever migrate produces is a valid event of the target version.
            assert_eq!(validate(&out), Ok(()), "{text} -> {target}: {out}");
        }
    }
    let d = Delivery {
        id: "i".into(),
        pubsub: "p".into(),
        topic: "t".into(),
        kind: "k".into(),
        source: "s".into(),
        data: text.to_string(),
        attempt: 1,
    };
    let first = handle(&d);
    assert_eq!(handle(&d), first, "deterministic");
    if let Outcome::Done { emits, .. } = first {
        for e in emits {
            assert_eq!(validate(&e.data), Ok(()), "emitted {}", e.data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        exercise(&text);
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        exercise(&value.to_string());
    }

    #[test]
    fn mutated_valid_events_never_panic(
        version in prop_oneof![Just("1.0"), Just("1.1"), Just("2.0")],
        at in 0..POINTERS.len(),
        replacement in arb_json(),
    ) {
        let mut event = valid(version);
        if version == "1.0" {
            event["payload"].as_object_mut().unwrap().shift_remove("recurrence");
        }
        if version == "2.0" {
            event["task_id"] = json!("t-1");
        }
        if let Some(slot) = event.pointer_mut(POINTERS[at]) {
            *slot = replacement;
        }
        exercise(&event.to_string());
    }
}
