//! The app callback daprd talks to (docs/dapr-contract.md §1–§4), served the same in both modes.
//!
//! - `GET /dapr/subscribe`: the plugin's subscriptions as daprd's JSON array. daprd fetches it
//!   once per process, so the set of routes is fixed when the host starts; a swapped plugin
//!   that wants other routes needs a restart (reported by the swap logic).
//! - `POST <route>` per subscription: a structured CloudEvent, or a bulk batch
//!   (`{"entries": [...]}`), answered `200 {"status": SUCCESS|RETRY|DROP}` (bulk: a status per
//!   `entryId`). Never a 404 for "try again": 404 means DROP to daprd. A body that is not a usable
//!   CloudEvent is DROPped with the reason logged.
//! - `GET /healthz`: 200 with the serving plugin once one is loaded. `GET /metrics`: Prometheus.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::envelope::{self, EnvelopeError, Incoming};
use crate::dapr::Status;
use crate::pipeline::Pipeline;
use crate::plugin::bindings::Subscription;
use crate::trace_context::TraceContext;

/// daprd's default --max-body-size.
pub const MAX_BODY: usize = 4 << 20;

pub struct App {
    pub pipeline: Arc<Pipeline>,
    /// The subscriptions served since start-up (what daprd was told).
    pub subscriptions: Vec<Subscription>,
}

/// The app routes, without authentication (in-process callers are trusted; `serve` adds the
/// token layer on the listener).
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    for (index, sub) in app.subscriptions.iter().enumerate() {
        router = router.route(
            &sub.route,
            post(
                move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| async move {
                    deliver(app, index, TraceContext::from_headers(&headers), body).await
                },
            ),
        );
    }
    router
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

async fn subscribe(State(app): State<Arc<App>>) -> Json<Value> {
    let subs: Vec<Value> = app
        .subscriptions
        .iter()
        .map(|s| {
            let mut entry = json!({"pubsubname": s.pubsub, "topic": s.topic, "route": s.route});
            if let Some(dlq) = &s.dead_letter_topic {
                entry["deadLetterTopic"] = json!(dlq);
            }
            entry
        })
        .collect();
    Json(Value::Array(subs))
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let generation = app.pipeline.registry.current();
    let plugin = &generation.plugin;
    Json(json!({"status": "ok", "plugin": {"name": plugin.name, "version": plugin.version, "sha256": plugin.sha256, "generation": generation.number}}))
        .into_response()
}

/// Every series of the one registry (metrics.rs), the plugin's generation among them.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.pipeline.metrics.render(),
    )
        .into_response()
}

fn status(status: Status) -> Response {
    (StatusCode::OK, Json(json!({"status": status.as_str()}))).into_response()
}

/// `trace` is the request's W3C context (daprd's delivery span): it wins over the event's own
/// attributes for a single event; a bulk entry's own attributes win over it (they are specific to
/// the entry).
async fn deliver(
    app: Arc<App>,
    index: usize,
    trace: Option<TraceContext>,
    body: Bytes,
) -> Response {
    let sub = &app.subscriptions[index];
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(&app, sub, EnvelopeError::NotJson(e.to_string())),
    };
    if let Some(entries) = bulk_entries(&value) {
        let statuses = deliver_bulk(&app, sub, entries, trace).await;
        return Json(json!({ "statuses": statuses })).into_response();
    }
    match envelope::from_value(value) {
        Ok(mut incoming) => {
            incoming.trace = trace.or(incoming.trace);
            status(app.pipeline.process(sub, &incoming).await)
        }
        Err(e) => refuse(&app, sub, e),
    }
}

fn refuse(app: &App, sub: &Subscription, error: EnvelopeError) -> Response {
    app.pipeline.metrics.envelope_error();
    app.pipeline.metrics.delivery(&sub.topic, Status::Drop);
    tracing::warn!(route = %sub.route, "dropping a delivery: {error}");
    status(Status::Drop)
}

/// A bulk batch (§4) is a JSON object with an `entries` array and no CloudEvent `specversion`.
fn bulk_entries(value: &Value) -> Option<&Vec<Value>> {
    let object = value.as_object()?;
    if object.contains_key("specversion") {
        return None;
    }
    object.get("entries")?.as_array()
}

/// Entries are handled one after another: a batch comes from one partition, in order.
async fn deliver_bulk(
    app: &App,
    sub: &Subscription,
    entries: &[Value],
    trace: Option<TraceContext>,
) -> Vec<Value> {
    let mut statuses = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(entry_id) = entry.get("entryId").and_then(Value::as_str) else {
            tracing::warn!(route = %sub.route, "bulk entry without entryId; daprd will retry it");
            continue;
        };
        let outcome = match bulk_event(entry) {
            Ok(mut incoming) => {
                incoming.trace = incoming.trace.or_else(|| trace.clone());
                app.pipeline.process(sub, &incoming).await
            }
            Err(e) => {
                app.pipeline.metrics.envelope_error();
                tracing::warn!(route = %sub.route, entry_id, "dropping a bulk entry: {e}");
                Status::Drop
            }
        };
        statuses.push(json!({"entryId": entry_id, "status": outcome.as_str()}));
    }
    statuses
}

/// A bulk entry's `event` is the parsed CloudEvent, or with rawPayload a base64 string.
fn bulk_event(entry: &Value) -> Result<Incoming, EnvelopeError> {
    match entry.get("event") {
        Some(Value::String(b64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| EnvelopeError::BadBase64)?;
            envelope::parse(&bytes)
        }
        Some(event) => envelope::from_value(event.clone()),
        None => Err(EnvelopeError::NoData),
    }
}
