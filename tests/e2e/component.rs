//! The task plugin as users ship it: the compiled wasm32-wasip2 component, loaded with wasmtime
//! through the host's runtime, every export called. Where the native crate gives an answer, the
//! component must give the same one (the wit-bindgen glue is checked, not trusted).

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use task_events_host::config::Limits;
use task_events_host::plugin::bindings::{Delivery, Outcome, Problem};
use task_events_host::plugin::{Plugin, Runtime};

fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let runtime = Runtime::new(Limits::default()).expect("wasm runtime");
        Plugin::load(&runtime, task_events_tests::plugins::task_plugin_bytes())
            .expect("the task plugin loads")
    })
}

fn validate(event: &str) -> Result<(), Vec<Problem>> {
    plugin()
        .call(|p, s| p.task_events_plugin_schema().call_validate(s, event))
        .expect("validate runs")
}

fn migrate(event: &str, target: &str) -> Result<String, Vec<Problem>> {
    plugin()
        .call(|p, s| p.task_events_plugin_schema().call_migrate(s, event, target))
        .expect("migrate runs")
}

fn occurrences(
    rule: &str,
    dtstart: &str,
    tz: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<String>, Problem> {
    plugin()
        .call(|p, s| {
            p.task_events_plugin_recurrence()
                .call_occurrences_after(s, rule, dtstart, tz, after, limit)
        })
        .expect("occurrences-after runs")
}

fn delivery(data: &Value) -> Delivery {
    Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "todo-app".into(),
        data: data.to_string(),
        attempt: 1,
    }
}

fn completion(version: &str, task_id: Value, payload: Value) -> Value {
    json!({"event_id": "evt-42", "event_type": "task.completed", "event_version": version, "task_id": task_id,
           "user_id": "user-7", "timestamp": "2025-01-31T18:00:00Z", "payload": payload})
}

#[test]
fn manifest_names_the_plugin_its_subscriptions_and_retry_schedules() {
    let m = &plugin().manifest;
    assert_eq!(m.name, "task-plugin");
    assert_eq!(m.schema_versions, ["1.0", "1.1", "2.0"]);
    let topics: Vec<(&str, &str, Option<&str>)> = m
        .subscriptions
        .iter()
        .map(|s| {
            (
                s.pubsub.as_str(),
                s.topic.as_str(),
                s.dead_letter_topic.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        topics,
        [
            ("kafka-pubsub", "task-events", Some("task-events-dlq")),
            ("kafka-pubsub", "reminders", Some("reminders-dlq")),
            ("kafka-pubsub", "task-updates", Some("task-updates-dlq")),
        ]
    );
    let delays = |t: &str| {
        m.retry_policies
            .iter()
            .find(|p| p.event_type == t)
            .map(|p| p.delays_ms.clone())
    };
    assert_eq!(
        delays("task.completed"),
        Some(vec![30_000, 300_000, 1_800_000])
    );
    assert_eq!(
        delays("reminder.due"),
        Some((0..10).map(|i| 1000 << i).collect())
    );
    assert_eq!(
        delays("task.updated"),
        Some(vec![1_000, 2_000, 4_000, 8_000, 16_000])
    );
    // The seed's generic backoff for the types it has no strategy for.
    assert_eq!(delays("task.created"), Some(vec![1_000, 2_000]));
    assert_eq!(delays("task.deleted"), Some(vec![1_000, 2_000]));
}

#[test]
fn occurrences_after_follows_rfc_5545_in_the_component() {
    // RFC 5545 §3.8.5.3: monthly on the first Friday, from 1997-09-05 09:00 New York.
    let got = occurrences(
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        "1997-09-05T09:00:00",
        Some("America/New_York"),
        "1997-01-01T00:00:00",
        3,
    );
    assert_eq!(
        got.unwrap(),
        [
            "1997-09-05T09:00:00",
            "1997-10-03T09:00:00",
            "1997-11-07T09:00:00"
        ]
    );
    // Invalid dates are skipped: monthly from Jan 31 gives Mar 31.
    let got = occurrences(
        "FREQ=MONTHLY",
        "2025-01-31T09:00:00",
        None,
        "2025-01-31T09:00:00",
        2,
    );
    assert_eq!(got.unwrap(), ["2025-03-31T09:00:00", "2025-05-31T09:00:00"]);
    let err = occurrences(
        "FREQ=DAILY;COUNT=2;UNTIL=20250101T000000Z",
        "2025-01-01T09:00:00",
        Some("UTC"),
        "2025-01-01T00:00:00",
        1,
    )
    .unwrap_err();
    assert_eq!(err.code, "invalid-rrule");
}

#[test]
fn validate_reports_every_problem_with_a_pointer() {
    let bad = json!({"event_id": "", "event_type": "task.exploded", "event_version": "1.0", "task_id": "x", "timestamp": "nope", "payload": []});
    let problems = validate(&bad.to_string()).unwrap_err();
    let pointers: Vec<&str> = problems
        .iter()
        .filter_map(|p| p.pointer.as_deref())
        .collect();
    for expected in [
        "/event_type",
        "/task_id",
        "/user_id",
        "/timestamp",
        "/payload",
    ] {
        assert!(
            pointers.contains(&expected),
            "no problem at {expected}: {problems:?}"
        );
    }
    assert!(
        validate(
            &completion(
                "1.0",
                json!(1),
                json!({"recurring_pattern": "DAILY", "due_date": "2025-01-31T09:00:00Z"})
            )
            .to_string()
        )
        .is_ok()
    );
}

#[test]
fn migrate_goes_up_and_down_and_refuses_to_lose_information() {
    let v1 = completion(
        "1.0",
        json!(123),
        json!({"recurring_pattern": "WEEKLY", "due_date": "2025-01-31T09:00:00Z"}),
    );
    let v2: Value = serde_json::from_str(&migrate(&v1.to_string(), "2.0").unwrap()).unwrap();
    assert_eq!(
        (v2["event_version"].as_str(), v2["task_id"].as_str()),
        (Some("2.0"), Some("123"))
    );
    let back: Value = serde_json::from_str(&migrate(&v2.to_string(), "1.0").unwrap()).unwrap();
    assert_eq!(back["task_id"], 123);
    let uuid_task = completion(
        "2.0",
        json!("6f1c1f9e-2b1a-4c6e-9d0e-3f1a2b3c4d5e"),
        json!({}),
    );
    let problems = migrate(&uuid_task.to_string(), "1.0").unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.code == "lossy-migration" && p.pointer.as_deref() == Some("/task_id")),
        "{problems:?}"
    );
}

#[test]
fn handle_creates_the_next_occurrence_deterministically() {
    let event = completion(
        "1.1",
        json!(9),
        json!({
            "due_date": "2025-01-31T09:00:00", "completed_at": "2025-01-31T18:00:00Z", "title": "Pay rent",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=-1FR", "tzid": "Europe/London"},
        }),
    );
    let first = plugin().handle(&delivery(&event)).unwrap();
    let second = plugin().handle(&delivery(&event)).unwrap();
    let (Outcome::Done(a), Outcome::Done(b)) = (&first, &second) else {
        panic!("not done: {first:?}")
    };
    assert_eq!(a.dedupe_key, "evt-42");
    assert_eq!(a.emits.len(), 1);
    assert_eq!(
        (a.emits[0].data.as_str(), a.emits[0].id.as_str()),
        (b.emits[0].data.as_str(), b.emits[0].id.as_str()),
        "byte-identical output"
    );
    let created: Value = serde_json::from_str(&a.emits[0].data).unwrap();
    assert_eq!(
        (a.emits[0].topic.as_str(), a.emits[0].key.as_str()),
        ("task-events", "user-7")
    );
    assert_eq!(created["event_type"], "task.created");
    assert_eq!(created["event_version"], "1.1");
    assert!(
        created["payload"]["due_date"]
            .as_str()
            .unwrap()
            .starts_with("2025-02-28T09:00:00"),
        "{created}"
    );
}

#[test]
fn golden_cases_pass_in_the_component() {
    let cases = plugin().golden_cases().unwrap();
    assert!(cases.len() >= 5, "the plugin ships its canary cases");
    for case in cases {
        let got = plugin().handle(&case.delivery).unwrap();
        assert_eq!(
            format!("{got:?}"),
            format!("{:?}", case.expected),
            "golden case {}",
            case.name
        );
    }
}

fn arbitrary_event() -> impl Strategy<Value = Value> {
    let version = prop::sample::select(vec!["1.0", "1.1", "2.0", "3.0"]);
    let kind = prop::sample::select(vec![
        "task.created",
        "task.updated",
        "task.completed",
        "task.deleted",
        "reminder.due",
        "bogus",
    ]);
    let pattern = prop::sample::select(vec!["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY"]);
    let due = prop::sample::select(vec![
        "2025-01-31T09:00:00Z",
        "2024-02-29T23:30:00Z",
        "2025-03-09T02:30:00",
        "2025-12-31",
        "not a date",
    ]);
    let rrule = prop::option::of(prop::sample::select(vec![
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;INTERVAL=0",
    ]));
    // Naive: what the seed's Python writes (`utcnow()`), UTC in 1.0 and an error from 1.1 on.
    let timestamp =
        prop::sample::select(vec!["2025-02-01T08:00:00Z", "2025-02-01T08:00:00.123456"]);
    (version, kind, pattern, due, rrule, 0i64..5000, any::<bool>(), timestamp).prop_map(|(version, kind, pattern, due, rrule, task, remind, timestamp)| {
        let mut payload = json!({"recurring_pattern": pattern, "due_date": due, "completed_at": "2025-02-01T08:00:00Z", "title": "t"});
        if let Some(rrule) = rrule {
            payload["recurrence"] = json!({"rrule": rrule, "tzid": "America/New_York"});
        }
        if remind {
            payload["remind_before"] = json!("PT15M");
        }
        let task_id = if version == "2.0" { json!(task.to_string()) } else { json!(task) };
        json!({"event_id": format!("e{task}"), "event_type": kind, "event_version": version, "task_id": task_id,
               "user_id": "u", "timestamp": timestamp, "payload": payload})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The component answers exactly what the native crate answers, for any event.
    #[test]
    fn the_component_agrees_with_the_native_crate(event in arbitrary_event()) {
        let wasm = plugin().handle(&delivery(&event)).unwrap();
        let native = task_plugin::plugin::handle(&task_plugin::model::Delivery {
            id: "ce-1".into(), pubsub: "kafka-pubsub".into(), topic: "task-events".into(),
            kind: "com.dapr.event.sent".into(), source: "todo-app".into(), data: event.to_string(), attempt: 1,
        });
        let native = match native {
            task_plugin::model::Outcome::Done { dedupe_key, emits } => format!("done {dedupe_key} {:?}", emits.iter().map(|e| (&e.topic, &e.key, &e.id, &e.kind, &e.data)).collect::<Vec<_>>()),
            task_plugin::model::Outcome::Retry(p) => format!("retry {}", p.code),
            task_plugin::model::Outcome::Reject(ps) => format!("reject {:?}", ps.iter().map(|p| (&p.code, &p.pointer)).collect::<Vec<_>>()),
        };
        let wasm = match wasm {
            Outcome::Done(h) => format!("done {} {:?}", h.dedupe_key, h.emits.iter().map(|e| (&e.topic, &e.key, &e.id, &e.kind, &e.data)).collect::<Vec<_>>()),
            Outcome::Retry(p) => format!("retry {}", p.code),
            Outcome::Reject(ps) => format!("reject {:?}", ps.iter().map(|p| (&p.code, &p.pointer)).collect::<Vec<_>>()),
        };
        prop_assert_eq!(wasm, native);
    }
}
