//! `GET /v1.0/metadata`: what this sidecar is and holds, in the shape of daprd's metadata API.
//!
//! Dapr's SDKs read it at start-up (the JavaScript SDK waits for it before it starts), and
//! operators read it to see what the app subscribed to. Components are described as the ones
//! this sidecar imitates (`pubsub.kafka`, `state.redis`); `runtimeVersion` names this sidecar,
//! not a daprd release, so nobody mistakes one for the other.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Embedded;
use super::subscribe::Match;

pub(super) async fn metadata(State(e): State<Embedded>) -> Json<Value> {
    let cfg = e.config();
    let subscriptions: Vec<Value> = e
        .subscriptions()
        .iter()
        .map(|s| {
            let mut rules: Vec<Value> = s
                .routes
                .rules
                .iter()
                .map(|(m, path)| json!({"match": match_text(m), "path": path}))
                .collect();
            if let Some(path) = &s.routes.fallback {
                rules.push(json!({"match": "", "path": path}));
            }
            json!({
                "pubsubname": s.pubsub,
                "topic": s.topic,
                "rules": rules,
                "deadLetterTopic": s.dead_letter_topic.clone().unwrap_or_default(),
                "metadata": if s.raw_payload { json!({"rawPayload": "true"}) } else { json!({}) },
                "type": "PROGRAMMATIC",
            })
        })
        .collect();
    Json(json!({
        "id": cfg.app_id,
        "runtimeVersion": concat!("task-events-embedded/", env!("CARGO_PKG_VERSION")),
        "enabledFeatures": [],
        "actors": [],
        "components": [
            {"name": cfg.pubsub_name, "type": "pubsub.kafka", "version": "v1", "capabilities": []},
            {"name": cfg.state_store, "type": "state.redis", "version": "v1",
             "capabilities": ["ETAG", "TRANSACTIONAL"]},
        ],
        "httpEndpoints": [],
        "subscriptions": subscriptions,
        "extended": {},
    }))
}

fn match_text(m: &Match) -> String {
    match m {
        Match::Always => String::new(),
        Match::Compare { path, value, equal } => format!(
            "event.{} {} {}",
            path.join("."),
            if *equal { "==" } else { "!=" },
            serde_json::to_string(value).unwrap_or_default()
        ),
    }
}
