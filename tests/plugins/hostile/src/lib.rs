//! A hostile plugin for the host's tests: what it does depends on the delivery's data.
//!
//! `{"do":"trap"}` panics (a trap), `{"do":"loop"}` never returns (the deadline must end it),
//! `{"do":"alloc"}` allocates until the memory limit stops it, `{"do":"retry"}` asks for a retry,
//! `{"do":"retry-once"}` asks for one retry and then echoes (with `"event_type":"slow-retry"`
//! its retry waits 3 s),
//! `{"do":"reject"}` rejects. Effects the host must refuse: `{"do":"forbidden","topic":"T"}`
//! emits to topic T (undeclared, subscribed or dead-letter), `{"do":"flood"}` makes 10 000
//! emits, `{"do":"huge"}` one emit of 4 MiB. `{"do":"spin"}` computes for a while and then
//! echoes (a long call that ends), `{"do":"random"}` logs a value derived from std's `HashMap`
//! seed and then echoes (its output does not depend on it), `{"do":"spam"}` logs 100 lines with
//! newlines and escape codes in them. Anything else is done with one emit on `hostile-out`, the
//! one topic it declares, keyed by the event's `user_id`. `{"do":"timer","at":"T"}` is done with no
//! emits and sets the timer `"name"` (default `t`) to publish that echo at T (`"topic"` and
//! `"key"` apply to it, to test the host's refusals); `{"do":"cancel"}` cancels timer `"name"`. Its default retry policy is a few
//! milliseconds so tests exhaust it quickly; its
//! one golden case is an echo.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit", world: "timed-event-plugin" });

    use std::hash::BuildHasher as _;

    use exports::task_events::plugin::{effects, handler, recurrence, schema, timers};
    use task_events::plugin::log::{Level, log};
    use task_events::plugin::types::*;

    struct Hostile;
    export!(Hostile);

    const ACTIONS: [&str; 12] = [
        "trap",
        "loop",
        "alloc",
        "retry",
        "retry-once",
        "reject",
        "forbidden",
        "flood",
        "huge",
        "spin",
        "random",
        "spam",
    ];

    fn action(data: &str) -> &'static str {
        for action in ACTIONS {
            if data.contains(&format!("\"do\":\"{action}\"")) {
                return action;
            }
        }
        "echo"
    }

    /// The string value of `"key":"..."` in `data` (no JSON parser in a fixture this small).
    fn field<'a>(data: &'a str, key: &str) -> &'a str {
        let marker = format!("\"{key}\":\"");
        let Some(start) = data.find(&marker).map(|i| i + marker.len()) else {
            return "";
        };
        let end = data[start..].find('"').map_or(data.len(), |i| start + i);
        &data[start..end]
    }

    fn echo(d: &Delivery, topic: &str, data: String) -> Emit {
        // Keyed by the event's "key" if it names one (to test the host's refusal), else by its
        // user_id (the only key the host lets it publish on), else "k".
        let key = [field(&d.data, "key"), field(&d.data, "user_id"), "k"]
            .into_iter()
            .find(|k| !k.is_empty())
            .unwrap_or("k");
        Emit {
            topic: topic.into(),
            key: key.into(),
            id: format!("{}-out", d.id),
            kind: "echo".into(),
            data,
        }
    }

    fn done(d: &Delivery, emits: Vec<Emit>) -> Outcome {
        Outcome::Done(Handled {
            dedupe_key: d.id.clone(),
            emits,
        })
    }

    fn problem(code: &str) -> Problem {
        Problem {
            code: code.into(),
            message: format!("hostile plugin: {code}"),
            pointer: None,
        }
    }

    impl handler::Guest for Hostile {
        fn manifest() -> Manifest {
            Manifest {
                name: "hostile-plugin".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                schema_versions: vec!["1.0".into()],
                subscriptions: vec![Subscription {
                    pubsub: "kafka-pubsub".into(),
                    topic: "hostile".into(),
                    route: "/events/hostile".into(),
                    dead_letter_topic: Some("hostile-dlq".into()),
                }],
                retry_policies: vec![
                    RetryPolicy {
                        event_type: "*".into(),
                        delays_ms: vec![5, 10],
                    },
                    // Long enough that the host parks the wait instead of holding the delivery.
                    RetryPolicy {
                        event_type: "slow-retry".into(),
                        delays_ms: vec![3_000],
                    },
                ],
            }
        }

        fn handle(d: Delivery) -> Outcome {
            match action(&d.data) {
                "trap" => panic!("hostile plugin asked to trap"),
                "loop" => {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                "alloc" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(vec![1u8; 1 << 20]);
                        std::hint::black_box(&hoard);
                    }
                }
                "retry" => Outcome::Retry(problem("asked-to-retry")),
                "retry-once" if d.attempt < 2 => Outcome::Retry(problem("asked-to-retry-once")),
                "retry-once" => done(&d, vec![echo(&d, "hostile-out", d.data.clone())]),
                "reject" => Outcome::Reject(vec![problem("asked-to-reject")]),
                "forbidden" => {
                    let emit = echo(&d, field(&d.data, "topic"), d.data.clone());
                    done(&d, vec![emit])
                }
                "flood" => {
                    let emits = (0..10_000)
                        .map(|n| echo(&d, "hostile-out", n.to_string()))
                        .collect();
                    done(&d, emits)
                }
                "huge" => done(&d, vec![echo(&d, "hostile-out", "x".repeat(4 << 20))]),
                "spin" => {
                    let mut n: u64 = 0;
                    for i in 0..150_000_000u64 {
                        n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(i));
                    }
                    std::hint::black_box(n);
                    done(&d, vec![echo(&d, "hostile-out", d.data.clone())])
                }
                "random" => {
                    // std seeds every HashMap from the WASI random seed of this instance.
                    let probe = std::collections::hash_map::RandomState::new().hash_one(0u64);
                    log(Level::Info, &format!("hash seed probe {probe:016x}"));
                    done(&d, vec![echo(&d, "hostile-out", d.data.clone())])
                }
                "spam" => {
                    for n in 0..100 {
                        let line = format!("spam line {n}\nFORGED ERROR forged line\r\u{1b}[2K");
                        log(Level::Warn, &line);
                    }
                    done(&d, vec![echo(&d, "hostile-out", d.data.clone())])
                }
                _ => done(&d, vec![echo(&d, "hostile-out", d.data.clone())]),
            }
        }

        fn golden_cases() -> Vec<GoldenCase> {
            let delivery = Delivery {
                id: "golden-1".into(),
                pubsub: "kafka-pubsub".into(),
                topic: "hostile".into(),
                kind: "com.dapr.event.sent".into(),
                source: "golden".into(),
                data: "{\"do\":\"echo\"}".into(),
                attempt: 1,
            };
            let expected = done(
                &delivery,
                vec![echo(&delivery, "hostile-out", delivery.data.clone())],
            );
            vec![GoldenCase {
                name: "echo".into(),
                delivery,
                expected,
            }]
        }
    }

    impl timers::Guest for Hostile {
        fn handle(d: Delivery) -> timers::TimedOutcome {
            let name = match field(&d.data, "name") {
                "" => "t".to_string(),
                name => name.to_string(),
            };
            let change = match d.data.contains("\"do\":\"cancel\"") {
                true => Some(timers::TimerChange::Cancel(name)),
                false if d.data.contains("\"do\":\"timer\"") => {
                    let topic = match field(&d.data, "topic") {
                        "" => "hostile-out",
                        topic => topic,
                    };
                    Some(timers::TimerChange::Set(timers::Timer {
                        name,
                        at: field(&d.data, "at").into(),
                        emit: echo(&d, topic, d.data.clone()),
                    }))
                }
                false => None,
            };
            match change {
                Some(change) => timers::TimedOutcome {
                    outcome: done(&d, Vec::new()),
                    timers: vec![change],
                },
                None => timers::TimedOutcome {
                    outcome: <Hostile as handler::Guest>::handle(d),
                    timers: Vec::new(),
                },
            }
        }
    }

    impl effects::Guest for Hostile {
        fn publishes() -> Vec<String> {
            vec!["hostile-out".into()]
        }
    }

    impl schema::Guest for Hostile {
        fn validate(_event: String) -> Result<(), Vec<Problem>> {
            Ok(())
        }
        fn migrate(event: String, _target: String) -> Result<String, Vec<Problem>> {
            Ok(event)
        }
    }

    impl recurrence::Guest for Hostile {
        fn occurrences_after(
            _: String,
            _: String,
            _: Option<String>,
            _: String,
            _: u32,
        ) -> Result<Vec<String>, Problem> {
            Err(problem("unsupported"))
        }
    }
}
