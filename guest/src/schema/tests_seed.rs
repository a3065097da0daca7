//! What the seed's Python producers write is 1.0 (`seed`): accepted, read as UTC, and made
//! explicit in what the plugin writes onwards; 1.1 and 2.0 stay strict.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::{problems, set};
use super::*;
use crate::migrate::migrate;

/// The seed's Example 3 `TaskEvent`, as pydantic's `model_dump_json()` writes it.
fn pydantic(timestamp: &str) -> Value {
    json!({"event_id": "3f1c0a52-9b7e-4c1d-8e2f-6a5b4c3d2e1f", "event_type": "task.completed",
           "event_version": "1.0", "task_id": 123, "user_id": "user-456", "timestamp": timestamp,
           "payload": {"completed_at": "2025-12-29T10:00:00Z", "recurring_pattern": "DAILY"}})
}

fn without(v: Value, pointer: &str) -> Value {
    set(v, pointer, None)
}

#[test]
fn what_the_seed_writes_is_a_valid_1_0_event() {
    let rows: Vec<(&str, Value)> = vec![
        (
            "utcnow() with microseconds",
            pydantic("2025-12-29T10:00:00.123456"),
        ),
        (
            "utcnow() on a whole second",
            pydantic("2025-12-29T10:00:00"),
        ),
        ("milliseconds", pydantic("2025-12-29T10:00:00.123")),
        (
            "the publisher's isoformat() + 'Z'",
            pydantic("2025-12-29T10:00:00.123456Z"),
        ),
        (
            "no event_version",
            without(pydantic("2025-12-29T10:00:00.5"), "/event_version"),
        ),
        (
            "event_version null",
            set(
                pydantic("2025-12-29T10:00:00"),
                "/event_version",
                Some(Value::Null),
            ),
        ),
        (
            "naive completed_at",
            set(
                pydantic("2025-12-29T10:00:00.123456"),
                "/payload/completed_at",
                Some(json!("2025-12-29T09:59:58.000001")),
            ),
        ),
        (
            "Example 10: no version, bare payload",
            without(
                without(pydantic("2025-12-29T10:00:00.123456"), "/event_version"),
                "/payload/completed_at",
            ),
        ),
    ];
    for (what, event) in rows {
        assert_eq!(problems(&event.to_string()), vec![], "{what}: {event}");
        let parsed = parse(&event.to_string()).unwrap();
        assert_eq!(parsed.version, Version::V1_0, "{what}");
        assert!(parsed.timestamp.raw.ends_with('Z'), "{what}");
    }
}

#[test]
fn a_naive_instant_is_utc_and_the_parsed_event_says_so() {
    let seed = without(pydantic("2025-12-29T10:00:00.123456"), "/event_version");
    let seed = set(
        seed,
        "/payload/completed_at",
        Some(json!("2025-12-29T09:59:58")),
    );
    let e = parse(&seed.to_string()).unwrap();
    assert!(e.timestamp.naive);
    assert_eq!(e.timestamp.raw, "2025-12-29T10:00:00.123456Z");
    assert_eq!(
        e.timestamp.at.to_rfc3339(),
        "2025-12-29T10:00:00.123456+00:00"
    );
    assert_eq!(e.completion().raw, "2025-12-29T09:59:58Z");
    // The event as the plugin writes it onwards: version after event_type (the seed's key
    // order), `Z` on both instants, everything else untouched and in place.
    assert_eq!(
        Value::Object(e.raw).to_string(),
        concat!(
            r#"{"event_id":"3f1c0a52-9b7e-4c1d-8e2f-6a5b4c3d2e1f","event_type":"task.completed","#,
            r#""event_version":"1.0","task_id":123,"user_id":"user-456","#,
            r#""timestamp":"2025-12-29T10:00:00.123456Z","#,
            r#""payload":{"completed_at":"2025-12-29T09:59:58Z","recurring_pattern":"DAILY"}}"#
        )
    );
    // With an offset, nothing is rewritten.
    let explicit = pydantic("2025-12-29T10:00:00.123456+00:00");
    let e = parse(&explicit.to_string()).unwrap();
    assert!(!e.timestamp.naive);
    assert_eq!(e.raw, *explicit.as_object().unwrap());
}

#[test]
fn naive_instants_stay_errors_from_1_1_on_and_say_how_to_fix_them() {
    for version in ["1.1", "2.0"] {
        let mut e = super::tests::base_1_1();
        e["event_version"] = json!(version);
        if version == "2.0" {
            e["task_id"] = json!("t-1");
        }
        for pointer in ["/timestamp", "/payload/completed_at"] {
            let bad = set(
                e.clone(),
                pointer,
                Some(json!("2025-01-31T17:05:00.123456")),
            );
            let found = parse(&bad.to_string()).unwrap_err();
            assert_eq!(found.len(), 1, "{version} {pointer}: {found:?}");
            assert_eq!(found[0].code, codes::INVALID_TIMESTAMP);
            assert_eq!(found[0].pointer.as_deref(), Some(pointer));
            assert_eq!(
                found[0].message,
                "'2025-01-31T17:05:00.123456' has no offset; only event_version 1.0 reads that \
                 as UTC (write '2025-01-31T17:05:00.123456Z')"
            );
        }
    }
    // A version that cannot be read does not get the 1.0 leniency either.
    let unknown = set(
        pydantic("2025-12-29T10:00:00"),
        "/event_version",
        Some(json!("3.0")),
    );
    let found: Vec<String> = problems(&unknown.to_string())
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(
        found,
        [codes::UNSUPPORTED_VERSION, codes::INVALID_TIMESTAMP]
    );
}

#[test]
fn date_values_keep_their_wall_clock_meaning_in_1_0() {
    // A naive due_date is the task's wall clock (floating in 1.0), as before: not rewritten.
    let local = set(
        pydantic("2025-12-29T10:00:00"),
        "/payload/due_date",
        Some(json!("2025-12-29T09:00:00")),
    );
    let e = parse(&local.to_string()).unwrap();
    assert_eq!(e.raw["payload"]["due_date"], "2025-12-29T09:00:00");
    // Only whole seconds there: a fraction on a wall-clock time is refused, not guessed.
    let fraction = set(
        local,
        "/payload/due_date",
        Some(json!("2025-12-29T09:00:00.5")),
    );
    assert_eq!(
        problems(&fraction.to_string()),
        vec![(
            codes::INVALID_TIMESTAMP.to_string(),
            Some("/payload/due_date".to_string())
        )]
    );
}

/// A naive date-time in Python's isoformat shape: any valid date and time, 0 to 9 fraction
/// digits (0 = what isoformat writes on a whole second).
fn arb_naive() -> impl Strategy<Value = String> {
    (
        1i32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        0usize..=9,
        0u64..1_000_000_000,
    )
        .prop_map(|(y, mo, d, h, mi, s, digits, frac)| {
            let base = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            match digits {
                0 => base,
                n => format!("{base}.{}", &format!("{frac:09}")[..n]),
            }
        })
}

/// How a seed producer may leave the version: absent, null, or written.
fn arb_version() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!("1.0")))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// A seed-shaped event parses to its explicit-UTC twin (same instants, same text onwards)
    /// and migrates to every version exactly as the twin does.
    #[test]
    fn seed_events_read_as_their_explicit_utc_twins(
        ts in arb_naive(),
        done in prop::option::of(arb_naive()),
        version in arb_version(),
    ) {
        // The seed's version, if any, stays in place; the twin's is after event_type.
        let mut seed = match version {
            None => without(pydantic(&ts), "/event_version"),
            v => set(pydantic(&ts), "/event_version", v),
        };
        let mut twin = pydantic(&format!("{ts}Z"));
        let done_twin = done.as_ref().map(|d| json!(format!("{d}Z")));
        seed = set(seed, "/payload/completed_at", done.map(Value::from));
        twin = set(twin, "/payload/completed_at", done_twin);
        let (s, t) = (parse(&seed.to_string()), parse(&twin.to_string()));
        let (s, t) = (s.unwrap(), t.unwrap());
        prop_assert_eq!(&s.timestamp.raw, &t.timestamp.raw);
        prop_assert_eq!(s.timestamp.at, t.timestamp.at);
        prop_assert_eq!(&s.completion().raw, &t.completion().raw);
        prop_assert_eq!(s.completion().at, t.completion().at);
        prop_assert_eq!(s.raw, t.raw);
        for target in ["1.0", "1.1", "2.0"] {
            let (ms, mt) = (migrate(&seed.to_string(), target), migrate(&twin.to_string(), target));
            prop_assert_eq!(&ms, &mt, "{}", target);
            prop_assert_eq!(validate(&ms.unwrap()), Ok(()));
        }
    }
}
