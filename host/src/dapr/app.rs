//! The app callback daprd talks to (docs/dapr-contract.md §1–§4), served the same in both modes.
//!
//! - `GET /dapr/subscribe`: the plugin's subscriptions as daprd's JSON array. daprd fetches it
//!   once per process, so the set of routes is fixed when the host starts; a swapped plugin
//!   that wants other routes needs a restart (reported by the swap logic).
//! - `POST <route>` per subscription: a structured CloudEvent, or a bulk batch
//!   (`{"entries": [...]}`), answered `200 {"status": SUCCESS|RETRY|DROP}` (bulk: a status per
//!   `entryId`). Never a 404 for "try again": 404 means DROP to daprd. A body that is not a usable
//!   CloudEvent is DROPped with the reason logged.
//!   A bulk batch of more than `--max-bulk-entries` entries gets 413 and none is processed.
//! - Routes are served, and told to daprd, in their cleaned form ([`clean_route`], Go's
//!   `path.Clean`, which daprd applies before posting): `/events/x/` and `/events/./x` are
//!   served as `/events/x`, so daprd never posts to a path the host does not serve.
//! - Bodies are bounded (`http_limits.rs`: 413 past `--max-body-bytes`, 408 when too slow).
//! - `GET /healthz`: 200 `{"status":"ok"}` and nothing else: it is open (daprd's probe sends no
//!   token), so it says nothing about the plugin; the plugin's identity is on `/admin/plugin`
//!   and `/metrics`. `GET /metrics`: Prometheus (behind `--metrics-token` when one is set).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::envelope::{self, Delivery, EnvelopeError};
use crate::dapr::Status;
use crate::http_limits::{self, HttpLimits};
use crate::pipeline::Pipeline;
use crate::plugin::bindings::Subscription;
use crate::trace_context::TraceContext;

pub struct App {
    pub pipeline: Arc<Pipeline>,
    /// The subscriptions served since start-up (what daprd was told).
    pub subscriptions: Vec<Subscription>,
    /// Body size, read time and bulk entry count of one delivery.
    pub limits: HttpLimits,
    /// Bulk deliveries to ask daprd for in every subscription, if any (`--bulk-max-messages`).
    pub bulk: Option<BulkSubscribe>,
}

/// daprd's `bulkSubscribe` settings for a subscription.
#[derive(Debug, Clone, Copy)]
pub struct BulkSubscribe {
    pub max_messages: u32,
    pub max_await_ms: u32,
}

/// The app routes, without authentication (in-process callers are trusted; `serve` adds the
/// token layer on the listener).
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/job/{*name}", post(job));
    for (index, route) in served_routes(&app.subscriptions) {
        router = router.route(
            &route,
            post(
                move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| async move {
                    deliver(app, index, TraceContext::from_headers(&headers), body).await
                },
            ),
        );
    }
    let limits = app.limits;
    router
        // bound_body reads and bounds every body before an extractor sees it.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(http_limits::bound_body))
        .layer(Extension(limits))
        .with_state(app)
}

/// Paths the host serves itself; a subscription route that cleans to one of them is not served.
const OWN_ROUTES: [&str; 3] = ["/dapr/subscribe", "/healthz", "/metrics"];

/// Each subscription's index and cleaned route, in order. A route that cleans to one the host
/// serves itself, or to an earlier subscription's route, is left out with an error: axum cannot
/// serve one path twice, and telling daprd about it would send it events nobody handles.
fn served_routes(subscriptions: &[Subscription]) -> Vec<(usize, String)> {
    let mut seen: HashSet<String> = OWN_ROUTES.iter().map(|r| r.to_string()).collect();
    let mut served = Vec::with_capacity(subscriptions.len());
    for (index, sub) in subscriptions.iter().enumerate() {
        let route = clean_route(&sub.route);
        if seen.insert(route.clone()) {
            served.push((index, route));
        } else {
            tracing::error!(
                route = ?sub.route,
                topic = ?sub.topic,
                "not subscribing: the route cleans to {route:?}, which is already served; give \
                 each subscription its own route"
            );
        }
    }
    served
}

/// `route` as Go's `path.Clean` leaves it, rooted: no empty, `.` or trailing segments, `..`
/// resolved (never above `/`).
pub fn clean_route(route: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in route.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    format!("/{}", segments.join("/"))
}

async fn subscribe(State(app): State<Arc<App>>) -> Json<Value> {
    let subs: Vec<Value> = served_routes(&app.subscriptions)
        .into_iter()
        .map(|(index, route)| {
            let s = &app.subscriptions[index];
            let mut entry = json!({"pubsubname": s.pubsub, "topic": s.topic, "route": route});
            if let Some(dlq) = &s.dead_letter_topic {
                entry["deadLetterTopic"] = json!(dlq);
            }
            if let Some(bulk) = app.bulk {
                entry["bulkSubscribe"] = json!({
                    "enabled": true,
                    "maxMessagesCount": bulk.max_messages,
                    "maxAwaitDurationMs": bulk.max_await_ms,
                });
            }
            entry
        })
        .collect();
    Json(Value::Array(subs))
}

/// Liveness only: the port answers once the plugin is loaded (serve.rs opens it after).
/// A job fired (daprd's Jobs API, or the embedded sidecar's): `timer-...` publishes a due timer
/// (pipeline/timers.rs), `retry-<user>` re-drives that user's parked retries
/// (pipeline/parking.rs). 200 when done; 500 makes the scheduler fire it again (the sidecar
/// failed meanwhile).
async fn job(
    State(app): State<Arc<App>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let done = match name.starts_with("timer-") {
        true => app.pipeline.fire_timer(&name).await,
        false => app.pipeline.resume(&name).await,
    };
    match done {
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => {
            tracing::warn!(job = %name, "the job could not run yet: {why}");
            (StatusCode::INTERNAL_SERVER_ERROR, why).into_response()
        }
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
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
    match envelope::parse_delivery(&body) {
        Ok(Delivery::Batch(entries)) => {
            if entries.len() > app.limits.max_bulk_entries {
                let count = entries.len();
                tracing::warn!(route = %sub.route, entries = count, "refusing a bulk delivery: too many entries (--max-bulk-entries)");
                return http_limits::too_many_entries(count, &app.limits);
            }
            let statuses = deliver_bulk(&app, sub, &entries, trace).await;
            Json(json!({ "statuses": statuses })).into_response()
        }
        Ok(Delivery::Event(mut incoming)) => {
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

/// Decodes every entry, then hands the batch to the pipeline (pipeline/bulk.rs), which keeps
/// each user's order: a batch comes from one partition, in order. An entry that is not a
/// usable CloudEvent is DROPped; one without an `entryId` gets no status, so daprd retries it.
async fn deliver_bulk(
    app: &App,
    sub: &Subscription,
    entries: &[&RawValue],
    trace: Option<TraceContext>,
) -> Vec<Value> {
    let mut statuses: Vec<(String, Option<Status>)> = Vec::with_capacity(entries.len());
    let mut batch = Vec::with_capacity(entries.len());
    for entry in entries {
        let (entry_id, event) = envelope::bulk_entry(entry);
        let Some(entry_id) = entry_id else {
            tracing::warn!(route = %sub.route, "bulk entry without entryId; daprd will retry it");
            continue;
        };
        match event {
            Ok(mut incoming) => {
                incoming.trace = incoming.trace.or_else(|| trace.clone());
                batch.push(incoming);
                statuses.push((entry_id, None));
            }
            Err(e) => {
                app.pipeline.metrics.envelope_error();
                app.pipeline.metrics.delivery(&sub.topic, Status::Drop);
                tracing::warn!(route = %sub.route, %entry_id, "dropping a bulk entry: {e}");
                statuses.push((entry_id, Some(Status::Drop)));
            }
        }
    }
    let mut answers = app.pipeline.process_batch(sub, &batch).await.into_iter();
    statuses
        .into_iter()
        .map(|(entry_id, status)| {
            let status = status.or_else(|| answers.next()).unwrap_or(Status::Retry);
            json!({"entryId": entry_id, "status": status.as_str()})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(route: &str) -> Subscription {
        Subscription {
            pubsub: "ps".into(),
            topic: format!("topic{route}"),
            route: route.into(),
            dead_letter_topic: None,
        }
    }

    #[test]
    fn routes_are_cleaned_as_daprd_cleans_them() {
        for (route, clean) in [
            ("/events/x", "/events/x"),
            ("/events/x/", "/events/x"),
            ("/events/./x", "/events/x"),
            ("/events//x", "/events/x"),
            ("/events/y/../x", "/events/x"),
            ("/../../x", "/x"),
            ("/.", "/"),
        ] {
            assert_eq!(clean_route(route), clean, "{route}");
        }
    }

    #[test]
    fn served_routes_are_clean_and_never_collide() {
        let subs = [
            sub("/events/a/"),
            sub("/events/./b"),
            sub("/events/a"),
            sub("/x/../healthz"),
            sub("/events/c"),
        ];
        assert_eq!(
            served_routes(&subs),
            vec![
                (0, "/events/a".to_string()),
                (1, "/events/b".to_string()),
                (4, "/events/c".to_string()),
            ]
        );
    }
}
