//! The wit-bindgen glue, and nothing else: WIT types <-> domain types (model.rs).
//!
//! Compiled for wasm32 only; every decision lives in the plain-Rust modules, which are tested
//! natively. If this file grows logic, move it out.

wit_bindgen::generate!({
    path: "../wit",
    world: "timed-event-plugin",
});

use crate::model;
use crate::problem::Problem as DomainProblem;
use exports::task_events::plugin::{effects, handler, recurrence, schema, timers};
use task_events::plugin::types as wit;

struct TaskPlugin;

export!(TaskPlugin);

impl handler::Guest for TaskPlugin {
    fn manifest() -> wit::Manifest {
        let m = crate::manifest::manifest();
        wit::Manifest {
            name: m.name,
            version: m.version,
            schema_versions: m.schema_versions,
            subscriptions: m
                .subscriptions
                .into_iter()
                .map(|s| wit::Subscription {
                    pubsub: s.pubsub,
                    topic: s.topic,
                    route: s.route,
                    dead_letter_topic: s.dead_letter_topic,
                })
                .collect(),
            retry_policies: m
                .retry_policies
                .into_iter()
                .map(|p| wit::RetryPolicy {
                    event_type: p.event_type,
                    delays_ms: p.delays_ms,
                })
                .collect(),
        }
    }

    fn handle(d: wit::Delivery) -> wit::Outcome {
        outcome_to_wit(crate::plugin::handle(&delivery_from_wit(d)))
    }

    fn golden_cases() -> Vec<wit::GoldenCase> {
        crate::golden::golden_cases()
            .into_iter()
            .map(|c| wit::GoldenCase {
                name: c.name,
                delivery: delivery_to_wit(c.delivery),
                expected: outcome_to_wit(c.expected),
            })
            .collect()
    }
}

impl timers::Guest for TaskPlugin {
    fn handle(d: wit::Delivery) -> timers::TimedOutcome {
        let (outcome, changes) = crate::plugin::handle_timed(&delivery_from_wit(d));
        timers::TimedOutcome {
            outcome: outcome_to_wit(outcome),
            timers: changes
                .into_iter()
                .map(|c| match c {
                    model::TimerChange::Set(t) => timers::TimerChange::Set(timers::Timer {
                        name: t.name,
                        at: t.at,
                        emit: emit_to_wit(t.emit),
                    }),
                    model::TimerChange::Cancel(name) => timers::TimerChange::Cancel(name),
                })
                .collect(),
        }
    }
}

impl effects::Guest for TaskPlugin {
    fn publishes() -> Vec<String> {
        crate::manifest::publishes()
    }
}

impl schema::Guest for TaskPlugin {
    fn validate(event: String) -> Result<(), Vec<wit::Problem>> {
        crate::schema::validate(&event).map_err(problems_to_wit)
    }

    fn migrate(event: String, target_version: String) -> Result<String, Vec<wit::Problem>> {
        crate::migrate::migrate(&event, &target_version).map_err(problems_to_wit)
    }
}

impl recurrence::Guest for TaskPlugin {
    fn occurrences_after(
        rule: String,
        dtstart: String,
        tz: Option<String>,
        after: String,
        limit: u32,
    ) -> Result<Vec<String>, wit::Problem> {
        crate::recurrence::occurrences_after(&rule, &dtstart, tz.as_deref(), &after, limit)
            .map_err(problem_to_wit)
    }
}

fn delivery_from_wit(d: wit::Delivery) -> model::Delivery {
    model::Delivery {
        id: d.id,
        pubsub: d.pubsub,
        topic: d.topic,
        kind: d.kind,
        source: d.source,
        data: d.data,
        attempt: d.attempt,
    }
}

fn delivery_to_wit(d: model::Delivery) -> wit::Delivery {
    wit::Delivery {
        id: d.id,
        pubsub: d.pubsub,
        topic: d.topic,
        kind: d.kind,
        source: d.source,
        data: d.data,
        attempt: d.attempt,
    }
}

fn outcome_to_wit(o: model::Outcome) -> wit::Outcome {
    match o {
        model::Outcome::Done { dedupe_key, emits } => wit::Outcome::Done(wit::Handled {
            dedupe_key,
            emits: emits.into_iter().map(emit_to_wit).collect(),
        }),
        model::Outcome::Retry(p) => wit::Outcome::Retry(problem_to_wit(p)),
        model::Outcome::Reject(ps) => wit::Outcome::Reject(problems_to_wit(ps)),
    }
}

fn emit_to_wit(e: model::Emit) -> wit::Emit {
    wit::Emit {
        topic: e.topic,
        key: e.key,
        id: e.id,
        kind: e.kind,
        data: e.data,
    }
}

fn problem_to_wit(p: DomainProblem) -> wit::Problem {
    wit::Problem {
        code: p.code,
        message: p.message,
        pointer: p.pointer,
    }
}

fn problems_to_wit(ps: Vec<DomainProblem>) -> Vec<wit::Problem> {
    ps.into_iter().map(problem_to_wit).collect()
}
