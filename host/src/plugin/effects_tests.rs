//! Every rule of `effects`, one test each, and a property: any plugin output gets a verdict,
//! never a panic.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::plugin::bindings::{RetryPolicy, Subscription};

fn sub(topic: &str, dlq: Option<&str>) -> Subscription {
    Subscription {
        pubsub: "kafka-pubsub".into(),
        topic: topic.into(),
        route: format!("/events/{topic}"),
        dead_letter_topic: dlq.map(str::to_string),
    }
}

fn manifest(retries: Vec<RetryPolicy>) -> Manifest {
    Manifest {
        name: "p".into(),
        version: "1".into(),
        schema_versions: vec![],
        subscriptions: vec![sub("in", Some("in-dlq")), sub("loop", None)],
        retry_policies: retries,
    }
}

fn emit(topic: &str) -> Emit {
    Emit {
        topic: topic.into(),
        key: "user-1".into(),
        id: "id".into(),
        kind: "task.created".into(),
        data: "{}".into(),
    }
}

fn policy(declared: Option<&[&str]>, limits: EffectLimits) -> EffectPolicy {
    let declared = declared.map(|d| d.iter().map(|t| t.to_string()).collect());
    EffectPolicy::new(&manifest(vec![]), declared, limits).unwrap()
}

fn declared(topics: &[&str]) -> EffectPolicy {
    policy(Some(topics), EffectLimits::default())
}

fn served() -> Subscription {
    sub("in", Some("in-dlq"))
}

fn verdict(p: &EffectPolicy, emits: &[Emit]) -> Result<(), &'static str> {
    p.check(&served(), emits).map_err(|v| v.code())
}

#[test]
fn declared_topics_pass_and_nothing_else_does() {
    let p = declared(&["out", "loop"]);
    assert_eq!(verdict(&p, &[emit("out"), emit("loop")]), Ok(()));
    assert_eq!(verdict(&p, &[]), Ok(()));
    assert_eq!(
        verdict(&p, &[emit("out"), emit("elsewhere")]),
        Err("undeclared-topic")
    );
    assert_eq!(verdict(&p, &[emit("in")]), Err("undeclared-loop"));
    assert_eq!(verdict(&p, &[emit("in-dlq")]), Err("dead-letter-topic"));
    let err = p.check(&served(), &[emit("elsewhere")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "emit 0 publishes to \"elsewhere\", which the plugin did not declare (it declares \"[\\\"loop\\\", \\\"out\\\"]\")"
    );
}

#[test]
fn the_served_route_counts_even_when_the_manifest_changed() {
    // After a swap the delivery may come through a route of the start-up plugin.
    let p = declared(&["out"]);
    let old = sub("old-in", Some("old-dlq"));
    assert_eq!(
        p.check(&old, &[emit("old-dlq")]).unwrap_err().code(),
        "dead-letter-topic"
    );
    assert_eq!(
        p.check(&old, &[emit("old-in")]).unwrap_err().code(),
        "undeclared-loop"
    );
}

#[test]
fn a_plugin_that_declares_nothing_publishes_nothing_unless_the_operator_allows_it() {
    let strict = policy(None, EffectLimits::default());
    let err = strict.check(&served(), &[emit("out")]).unwrap_err();
    assert_eq!(err.code(), "undeclared-topic");
    assert!(
        err.to_string().contains("--allow-undeclared-topics"),
        "{err}"
    );

    let allowed = EffectLimits {
        allow_undeclared_topics: true,
        ..EffectLimits::default()
    };
    let lenient = policy(None, allowed);
    assert_eq!(verdict(&lenient, &[emit("out")]), Ok(()));
    // Still never a loop or a dead-letter topic.
    assert_eq!(verdict(&lenient, &[emit("loop")]), Err("undeclared-loop"));
    assert_eq!(
        verdict(&lenient, &[emit("in-dlq")]),
        Err("dead-letter-topic")
    );
}

#[test]
fn emits_are_capped_in_number_and_size() {
    let limits = EffectLimits {
        max_emits: 2,
        max_emit_bytes: 100,
        ..EffectLimits::default()
    };
    let p = policy(Some(&["out"]), limits);
    assert_eq!(verdict(&p, &[emit("out"), emit("out")]), Ok(()));
    assert_eq!(verdict(&p, &vec![emit("out"); 3]), Err("too-many-emits"));
    let mut big = emit("out");
    big.data = "x".repeat(100);
    assert_eq!(verdict(&p, &[big]), Err("emit-too-large"));
}

#[test]
fn malformed_topics_and_keys_are_refused() {
    let p = declared(&["out"]);
    for bad in ["", "a b", "a\nb", &"t".repeat(250)] {
        assert_eq!(verdict(&p, &[emit(bad)]), Err("bad-topic"), "{bad:?}");
    }
    for bad in ["k\r\nforged".to_string(), "k".repeat(257)] {
        let mut e = emit("out");
        e.key = bad;
        assert_eq!(verdict(&p, &[e]), Err("bad-partition-key"));
    }
    let mut e = emit("out");
    e.key = "\u{1b}[31mred".into();
    let message = p.check(&served(), &[e]).unwrap_err().to_string();
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

#[test]
fn load_refuses_dead_letter_or_malformed_declarations_and_long_retry_schedules() {
    let limits = EffectLimits::default();
    let refuse = |declared: Vec<&str>, retries: Vec<RetryPolicy>| {
        let declared = Some(declared.into_iter().map(str::to_string).collect());
        EffectPolicy::new(&manifest(retries), declared, limits).unwrap_err()
    };
    assert!(matches!(
        refuse(vec!["out", "in-dlq"], vec![]),
        ManifestViolation::DeadLetterTopic { .. }
    ));
    assert!(matches!(
        refuse(vec!["a\u{7}"], vec![]),
        ManifestViolation::BadTopic { .. }
    ));
    let many: Vec<String> = (0..65).map(|n| format!("t{n}")).collect();
    let declared = Some(many);
    assert!(matches!(
        EffectPolicy::new(&manifest(vec![]), declared, limits).unwrap_err(),
        ManifestViolation::TooManyTopics { count: 65 }
    ));
    let endless = RetryPolicy {
        event_type: "*".into(),
        delays_ms: vec![1; 17],
    };
    let err = refuse(vec![], vec![endless]);
    assert_eq!(
        err.to_string(),
        "the retry policy for \"*\" lists 17 delays; the limit is 16 (--max-retry-delays)"
    );
    let weeks = RetryPolicy {
        event_type: "task.completed".into(),
        delays_ms: vec![u32::MAX; 3],
    };
    assert!(matches!(
        refuse(vec![], vec![weeks]),
        ManifestViolation::RetriesTooLong { .. }
    ));
    // Exactly at the limits is fine; the seed's schedules are far below them.
    let at_limit = RetryPolicy {
        event_type: "*".into(),
        delays_ms: vec![225_000; 16],
    };
    let ok = EffectPolicy::new(&manifest(vec![at_limit]), Some(vec![]), limits);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(limits.max_retry_total, Duration::from_secs(3_600));
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("out".to_string()),
        Just("in".to_string()),
        Just("in-dlq".to_string()),
        Just("loop".to_string()),
        any::<String>(),
        "[a-z\\-\\n\\r\\u{1b}\\u{2028}]{0,300}",
    ]
}

fn any_emit() -> impl Strategy<Value = Emit> {
    (any_text(), any_text(), any_text(), any_text(), any_text()).prop_map(
        |(topic, key, id, kind, data)| Emit {
            topic,
            key,
            id,
            kind,
            data,
        },
    )
}

proptest! {
    #[test]
    fn any_output_gets_a_verdict_and_never_a_panic(
        emits in proptest::collection::vec(any_emit(), 0..80),
        declared_topics in proptest::option::of(proptest::collection::vec(any_text(), 0..5)),
        max_emits in 0usize..100,
        max_emit_bytes in 0usize..1000,
        lenient in any::<bool>(),
    ) {
        let limits = EffectLimits {
            max_emits,
            max_emit_bytes,
            allow_undeclared_topics: lenient,
            ..EffectLimits::default()
        };
        let Ok(p) = EffectPolicy::new(&manifest(vec![]), declared_topics.clone(), limits) else {
            return Ok(());
        };
        let declared_in = declared_topics.is_some_and(|d| d.iter().any(|t| t == "in"));
        match p.check(&served(), &emits) {
            Ok(()) => {
                prop_assert!(emits.len() <= max_emits);
                for e in &emits {
                    prop_assert!(e.topic != "in-dlq");
                    prop_assert!(e.topic != "in" || declared_in);
                    prop_assert!(!e.key.chars().any(char::is_control));
                }
            }
            Err(v) => {
                let problem = v.problem();
                prop_assert!(problem.code.starts_with("effect-refused:"));
                prop_assert!(!problem.message.chars().any(char::is_control));
            }
        }
    }
}
