//! Embedded-only read views of the topic logs, so users can see what came out (dead-letter
//! topics included). Not part of daprd's API; hence the `/v1.0-embedded` prefix.
//!
//! - `GET /v1.0-embedded/topics` -> `{"topics":[{"topic","records","consumers":[{"group",
//!   "partition","next"}]}]}`.
//! - `GET /v1.0-embedded/topics/{topic...}?from=<offset>&limit=<n>&wait_ms=<ms>` ->
//!   `{"topic","records":[{"offset","partition","key","published_at","event"}],"next"}`.
//!   Offsets are the topic's own sequence from 0; `next` is where the following page starts.
//!   `limit` defaults to 100 (at most 1000). With `wait_ms` (at most 60000) and nothing at
//!   `from` yet, the answer waits for a publish to the topic (long poll; `topics tail --follow`
//!   uses it instead of polling). An unknown topic is simply empty.

use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Embedded;
use super::error::ApiError;
use super::store::Record;

const PREFIX: &str = "/v1.0-embedded/topics/";
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
const MAX_WAIT_MS: u64 = 60_000;

pub(super) fn routes() -> Router<Embedded> {
    Router::new()
        .route("/v1.0-embedded/topics", get(list))
        .route("/v1.0-embedded/topics/{*topic}", get(read))
}

async fn list(State(e): State<Embedded>) -> Response {
    match e.blocking(|s| s.topics()).await {
        Ok(topics) => axum::Json(json!({ "topics": topics })).into_response(),
        Err(err) => ApiError::storage("ERR_EMBEDDED_TOPICS", err).into_response(),
    }
}

#[derive(Deserialize)]
struct ReadParams {
    from: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
}

async fn read(
    State(e): State<Embedded>,
    Path(decoded): Path<String>,
    uri: Uri,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(err) => {
            let msg = format!(
                "{} (from, limit and wait_ms are non-negative integers)",
                err.body_text()
            );
            return ApiError::rejected(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", msg)
                .into_response();
        }
    };
    let topic = match uri.path().strip_prefix(PREFIX) {
        Some(raw) => super::go_decode::query_unescape(raw),
        None => decoded,
    };
    let from = p.from.unwrap_or(0);
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let wait = Duration::from_millis(p.wait_ms.unwrap_or(0).min(MAX_WAIT_MS));
    match read_page(&e, &topic, from, limit, wait).await {
        Ok(records) => {
            let next = records.last().map_or(from, |(o, _)| o + 1);
            let records: Vec<Value> = records.iter().map(|(o, r)| record_json(*o, r)).collect();
            axum::Json(json!({ "topic": topic, "records": records, "next": next })).into_response()
        }
        Err(err) => ApiError::storage("ERR_EMBEDDED_TOPICS", err).into_response(),
    }
}

async fn read_page(
    e: &Embedded,
    topic: &str,
    from: u64,
    limit: usize,
    wait: Duration,
) -> Result<Vec<(u64, Record)>, super::error::StoreError> {
    // Subscribe before reading, so a publish between the read and the wait is not missed.
    let mut rx = e.watch(topic);
    rx.borrow_and_update();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let t = topic.to_string();
        let records = e.blocking(move |s| s.read_topic(&t, from, limit)).await?;
        if !records.is_empty() || wait.is_zero() {
            return Ok(records);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(Vec::new()),
        }
    }
}

fn record_json(offset: u64, r: &Record) -> Value {
    let published_at = Utc
        .timestamp_millis_opt(r.published_at_ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let event = serde_json::from_slice::<Value>(&r.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
    json!({
        "offset": offset,
        "partition": r.partition,
        "key": r.key,
        "published_at": published_at,
        "event": event,
    })
}
