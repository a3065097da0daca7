//! A hostile plugin for the host's tests: what it does depends on the delivery's data.
//!
//! `{"do":"trap"}` panics (a trap), `{"do":"loop"}` never returns (the deadline must end it),
//! `{"do":"alloc"}` allocates until the memory limit stops it, `{"do":"retry"}` asks for a retry,
//! `{"do":"reject"}` rejects, anything else is done with one emit on topic `hostile-out`.
//! Its retry policy is a few milliseconds so tests exhaust it quickly.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../../wit", world: "event-plugin" });

    use exports::task_events::plugin::{handler, recurrence, schema};
    use task_events::plugin::types::*;

    struct Hostile;
    export!(Hostile);

    fn action(data: &str) -> &'static str {
        for action in ["trap", "loop", "alloc", "retry", "reject"] {
            if data.contains(&format!("\"do\":\"{action}\"")) {
                return action;
            }
        }
        "echo"
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
                retry_policies: vec![RetryPolicy {
                    event_type: "*".into(),
                    delays_ms: vec![5, 10],
                }],
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
                "reject" => Outcome::Reject(vec![problem("asked-to-reject")]),
                _ => Outcome::Done(Handled {
                    dedupe_key: d.id.clone(),
                    emits: vec![Emit {
                        topic: "hostile-out".into(),
                        key: "k".into(),
                        id: format!("{}-out", d.id),
                        kind: "echo".into(),
                        data: d.data,
                    }],
                }),
            }
        }

        fn golden_cases() -> Vec<GoldenCase> {
            Vec::new()
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
