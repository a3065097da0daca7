//! Operators acting on dead letters, in both modes: the admin API over the dead-letter log
//! (`pipeline/dead_letter_log.rs`) and the `task-events-host dead-letters` client of it.
//!
//! - `GET /admin/dead-letters?topic=&reason=&user=&since=&limit=`: summaries, newest last.
//! - `GET /admin/dead-letters/{id}`: the record as published, its topic and its replays.
//! - `POST /admin/dead-letters/{id}/replay`: re-drives the original event through the current
//!   plugin, exactly as a delivery on its original subscription (idempotency, effects checks,
//!   dead-lettering again if it fails again), and records the replay (time, answer, plugin) in
//!   the log. 200 `{"status": SUCCESS|RETRY|DROP}`; 404 for an unknown id; 409 when the
//!   original topic is no longer subscribed.
//!
//! Behind the admin token like `/admin/plugin` (403 without `--admin-token`, 401 without it).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::dapr::app::App;
use crate::dapr::envelope::Incoming;
use crate::pipeline::dead_letter_log::{INDEX_KEY, Summary, record_key};
use crate::sidecar::Concurrency;

pub(crate) fn router(app: Arc<App>, token: Option<String>) -> Router {
    Router::new()
        .route("/admin/dead-letters", get(list))
        .route("/admin/dead-letters/{*id}", get(show).post(replay))
        .with_state(app)
        .route_layer(from_fn_with_state(
            token.map(Arc::<str>::from),
            crate::admin::require_admin_token,
        ))
}

/// Filters of `list`; every one given must match.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    pub topic: Option<String>,
    pub reason: Option<String>,
    pub user: Option<String>,
    /// RFC 3339: only dead letters at or after it.
    pub since: Option<String>,
    pub limit: Option<usize>,
}

impl Filter {
    fn keeps(&self, s: &Summary) -> bool {
        let same = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        (same(&self.topic, &s.topic) || same(&self.topic, &s.from_topic))
            && same(&self.reason, &s.reason)
            && self
                .user
                .as_deref()
                .is_none_or(|u| s.user.as_deref() == Some(u))
            && self.since.as_deref().is_none_or(|since| {
                match (
                    chrono::DateTime::parse_from_rfc3339(since),
                    chrono::DateTime::parse_from_rfc3339(&s.at),
                ) {
                    (Ok(since), Ok(at)) => at >= since,
                    _ => false,
                }
            })
    }
}

fn failure(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn list(State(app): State<Arc<App>>, Query(filter): Query<Filter>) -> Response {
    let store = app.pipeline.state_store.as_str();
    let read = || app.pipeline.sidecar.get_state(store, INDEX_KEY);
    let index: Vec<Summary> = match app
        .pipeline
        .with_retries("reading the dead-letter index", read)
        .await
    {
        Ok(Some(entry)) => serde_json::from_slice(&entry.value).unwrap_or_default(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return failure(
                StatusCode::BAD_GATEWAY,
                format!("reading the dead-letter index: {e}"),
            );
        }
    };
    let mut kept: Vec<Summary> = index.into_iter().filter(|s| filter.keeps(s)).collect();
    if let Some(limit) = filter.limit {
        kept.drain(..kept.len().saturating_sub(limit));
    }
    Json(json!({"dead_letters": kept})).into_response()
}

async fn load(app: &App, id: &str) -> Result<(Value, Option<String>), Response> {
    let store = app.pipeline.state_store.as_str();
    let key = record_key(id);
    let read = || app.pipeline.sidecar.get_state(store, &key);
    match app
        .pipeline
        .with_retries("reading a dead letter", read)
        .await
    {
        Ok(Some(entry)) => match serde_json::from_slice::<Value>(&entry.value) {
            Ok(v) => Ok((v, entry.etag)),
            Err(e) => Err(failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("dead letter {id} is unreadable: {e}"),
            )),
        },
        Ok(None) => Err(failure(
            StatusCode::NOT_FOUND,
            format!(
                "no dead letter {id} in the log (ids end in ':dead-letter'; see GET /admin/dead-letters)"
            ),
        )),
        Err(e) => Err(failure(
            StatusCode::BAD_GATEWAY,
            format!("reading dead letter {id}: {e}"),
        )),
    }
}

async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match load(&app, &id).await {
        Ok((stored, _)) => Json(stored).into_response(),
        Err(response) => response,
    }
}

async fn replay(State(app): State<Arc<App>>, Path(path): Path<String>) -> Response {
    let Some(id) = path.strip_suffix("/replay") else {
        return failure(
            StatusCode::NOT_FOUND,
            format!("POST /admin/dead-letters/{path}: did you mean .../replay?"),
        );
    };
    let (mut stored, _) = match load(&app, id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let original = stored["record"]["data"]["original"].clone();
    let from_topic = original["topic"].as_str().unwrap_or_default();
    let Some(sub) = app
        .subscriptions
        .iter()
        .find(|s| s.topic == from_topic)
        .cloned()
    else {
        return failure(
            StatusCode::CONFLICT,
            format!("the original topic {from_topic:?} is not subscribed any more"),
        );
    };
    let incoming = Incoming {
        id: original["id"].as_str().unwrap_or_default().to_string(),
        kind: original["type"].as_str().unwrap_or_default().to_string(),
        source: original["source"].as_str().unwrap_or_default().to_string(),
        data: match &original["data"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        trace: None,
    };
    tracing::info!(dead_letter = id, event = %incoming.id, "replaying a dead letter on the current plugin");
    let status = app.pipeline.process(&sub, &incoming).await;
    let plugin = app.pipeline.registry.current().plugin.label().to_string();
    let replay =
        json!({"at": chrono::Utc::now().to_rfc3339(), "status": status.as_str(), "plugin": plugin});
    if let Some(replays) = stored["replays"].as_array_mut() {
        replays.push(replay);
    }
    let store = app.pipeline.state_store.as_str();
    let key = record_key(id);
    let value = Bytes::from(stored.to_string());
    if let Err(e) = app
        .pipeline
        .sidecar
        .save_state(
            store,
            &key,
            value,
            Concurrency::LastWrite,
            Some(app.pipeline.record_ttl),
        )
        .await
    {
        tracing::warn!(
            dead_letter = id,
            "the replay ran but is not recorded in the log: {e}"
        );
    }
    Json(json!({"id": id, "status": status.as_str(), "plugin": plugin})).into_response()
}
