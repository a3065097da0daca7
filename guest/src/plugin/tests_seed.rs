//! Seed-shaped events (no `event_version`, naive `utcnow()` times with microseconds) are handled
//! exactly as their explicit-UTC twins: same outcome, same bytes (schema/seed.rs).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::handle;
use super::tests::{data, delivery, emits};
use crate::model::Outcome;
use crate::schema::validate;

/// The seed's Example 10 completion: a bare `recurring_pattern`, naive `utcnow()` timestamp,
/// no `event_version`.
fn example_10(timestamp: &str) -> Value {
    json!({"event_id": "0b6c7f1e-2d3a-4e5f-9a8b-7c6d5e4f3a2b", "event_type": "task.completed",
           "task_id": 123, "user_id": "user-456", "timestamp": timestamp,
           "payload": {"recurring_pattern": "DAILY"}})
}

#[test]
fn the_next_task_says_utc_with_an_explicit_z() {
    let out = emits(&example_10("2025-12-29T10:00:00.123456"));
    assert_eq!(out.len(), 1);
    let created = data(&out[0]);
    assert_eq!(created["event_version"], "1.0");
    assert_eq!(created["timestamp"], "2025-12-29T10:00:00.123456Z");
    // No due date: the task recurs from its completion, now written as the UTC instant it is.
    assert_eq!(created["payload"]["dtstart"], "2025-12-29T10:00:00.123456Z");
    assert_eq!(created["payload"]["due_date"], "2025-12-30T10:00:00Z");
    assert!(created["task_id"].is_u64(), "1.0 ids stay integers");
    assert_eq!(validate(&out[0].data), Ok(()));
}

#[test]
fn seed_events_of_every_type_are_done() {
    for kind in [
        "task.created",
        "task.updated",
        "task.deleted",
        "task.completed",
    ] {
        let mut e = example_10("2025-12-29T10:00:00");
        e["event_type"] = json!(kind);
        let Outcome::Done { dedupe_key, .. } = handle(&delivery(&e)) else {
            panic!("{kind}: {:?}", handle(&delivery(&e)));
        };
        assert_eq!(dedupe_key, "0b6c7f1e-2d3a-4e5f-9a8b-7c6d5e4f3a2b");
    }
}

/// A naive time as the seed writes it, and its explicit-UTC twin.
fn arb_naive() -> impl Strategy<Value = (String, String)> {
    (
        1970i32..=2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        prop::option::of(0u32..1_000_000),
    )
        .prop_map(|(y, mo, d, h, mi, s, micros)| {
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            // isoformat() drops the fraction on a whole second, else writes six digits.
            if let Some(us) = micros.filter(|us| *us != 0) {
                t += &format!(".{us:06}");
            }
            let twin = format!("{t}Z");
            (t, twin)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn seed_completions_create_the_same_next_task_as_their_utc_twins(
        (ts, ts_twin) in arb_naive(),
        done in prop::option::of(arb_naive()),
        pattern in prop::sample::select(vec!["DAILY", "weekly", "MONTHLY", "YEARLY"]),
        due in prop::sample::select(vec![None, Some("2025-01-31"), Some("2025-01-31T09:00:00"),
                                         Some("2025-01-31T09:00:00Z"), Some("2025-01-31T09:00:00+05:30")]),
        remind in any::<bool>(),
        version in prop::sample::select(vec![None, Some(Value::Null), Some(json!("1.0"))]),
    ) {
        let mut seed = example_10(&ts);
        let mut twin = example_10(&ts_twin);
        twin["event_version"] = json!("1.0");
        if let Some(v) = version {
            seed["event_version"] = v;
        }
        for (e, completed_at) in [(&mut seed, done.as_ref().map(|d| &d.0)), (&mut twin, done.as_ref().map(|d| &d.1))] {
            e["payload"]["recurring_pattern"] = json!(pattern);
            if let Some(at) = completed_at {
                e["payload"]["completed_at"] = json!(at);
            }
            if let Some(due) = due {
                e["payload"]["due_date"] = json!(due);
            }
            if remind {
                e["payload"]["remind_before"] = json!("PT15M");
            }
        }
        let got = handle(&delivery(&seed));
        prop_assert_eq!(&got, &handle(&delivery(&twin)));
        let Outcome::Done { emits, .. } = got else {
            return Err(TestCaseError::fail(format!("{seed}: not done: {got:?}")));
        };
        prop_assert_eq!(emits.len(), if remind { 2 } else { 1 });
        for e in emits {
            prop_assert_eq!(validate(&e.data), Ok(()));
            let d = data(&e);
            prop_assert_eq!(&d["event_version"], "1.0");
            prop_assert_eq!(&d["timestamp"], ts_twin.as_str());
        }
    }
}
