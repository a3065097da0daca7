//! A plugin as an operator might still have one: built against task-events:plugin@1.0.0 (the
//! contract as released, frozen in `wit/plugin.wit` beside this crate), so it cannot declare
//! the topics it publishes to. It also ships no golden cases, and its retry policy for
//! `endless` events waits 10 000 hours. The host's tests show that such a plugin still loads
//! (semver-compatible), but only when the operator says so for each of those three traits.
//!
//! Every delivery logs one line (so the plugin imports `log@1.0.0`) and is done with one emit
//! on topic `legacy-out`.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "wit", world: "event-plugin" });

    use exports::task_events::plugin::{handler, recurrence, schema};
    use task_events::plugin::log::{Level, log};
    use task_events::plugin::types::*;

    struct Legacy;
    export!(Legacy);

    fn problem(code: &str) -> Problem {
        Problem {
            code: code.into(),
            message: format!("legacy plugin: {code}"),
            pointer: None,
        }
    }

    impl handler::Guest for Legacy {
        fn manifest() -> Manifest {
            Manifest {
                name: "legacy-plugin".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                schema_versions: vec!["1.0".into()],
                subscriptions: vec![Subscription {
                    pubsub: "kafka-pubsub".into(),
                    topic: "legacy".into(),
                    route: "/events/legacy".into(),
                    dead_letter_topic: Some("legacy-dlq".into()),
                }],
                retry_policies: vec![RetryPolicy {
                    event_type: "endless".into(),
                    delays_ms: vec![3_600_000; 10_000],
                }],
            }
        }

        fn handle(d: Delivery) -> Outcome {
            // Imports log@1.0.0, which the host (log@1.1.0) must still satisfy.
            log(Level::Info, "legacy plugin handled a delivery");
            Outcome::Done(Handled {
                dedupe_key: d.id.clone(),
                emits: vec![Emit {
                    topic: "legacy-out".into(),
                    key: "k".into(),
                    id: format!("{}-out", d.id),
                    kind: "echo".into(),
                    data: d.data,
                }],
            })
        }

        fn golden_cases() -> Vec<GoldenCase> {
            Vec::new()
        }
    }

    impl schema::Guest for Legacy {
        fn validate(_event: String) -> Result<(), Vec<Problem>> {
            Ok(())
        }
        fn migrate(event: String, _target: String) -> Result<String, Vec<Problem>> {
            Ok(event)
        }
    }

    impl recurrence::Guest for Legacy {
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
