//! The sidecar API routes, as daprd serves them (docs/dapr-contract.md §5), plus the embedded-only
//! `/v1.0-embedded/topics` views (`topics.rs`).
//!
//! Parsing happens here, once: path parameters are URL-unescaped like daprd's
//! `url.QueryUnescape` (`+` is a space), `metadata.<key>` query parameters become [`Metadata`]
//! (first value wins), and bodies are capped at `--max-body-bytes`, 4 MiB by default (daprd's
//! `--max-body-size` default; larger ones get 413, slow ones 408: `http_limits.rs`); a bulk
//! publish of more than `--max-bulk-entries` entries gets 413. Errors are daprd's
//! `{"errorCode","message"}` bodies.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::Value;

use super::Embedded;
use super::envelope::Metadata;
use super::error::ApiError;
use super::go_decode::{field, query_unescape, str_field};

/// daprd's default `--max-body-size`, and ours (`--max-body-bytes`).
#[cfg(test)]
pub(crate) const MAX_BODY: usize = 4 << 20;

pub(super) fn routes(e: Embedded) -> Router {
    Router::new()
        .route("/v1.0/publish/{*rest}", post(publish).put(publish))
        .route(
            "/v1.0/publish/bulk/{*rest}",
            post(bulk_publish).put(bulk_publish),
        )
        .route(
            "/v1.0-alpha1/publish/bulk/{*rest}",
            post(bulk_publish).put(bulk_publish),
        )
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(outbound_healthz))
        .route("/v1.0/metadata", get(super::api_metadata::metadata))
        .merge(super::api_state::routes())
        .merge(super::jobs::routes())
        .merge(super::topics::routes())
        // bound_body reads and bounds every body before an extractor sees it.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(crate::http_limits::bound_body))
        .with_state(e)
}

/// 204 once the app's subscriptions were read (its channel is up), 500 before, like daprd.
async fn healthz(State(e): State<Embedded>) -> Response {
    if e.is_ready() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ApiError::rejected(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "the sidecar is not ready: waiting for the app to listen",
        )
        .into_response()
    }
}

/// 204 as soon as the API serves: what SDKs poll before the app is up.
async fn outbound_healthz() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `POST|PUT /v1.0/publish/{pubsub}/{topic...}`.
async fn publish(
    State(e): State<Embedded>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let (pubsub, topic) = pubsub_and_topic(&uri, &["/v1.0/publish/"], &rest);
        let metadata = metadata(query)?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Refused here, where the publisher hears why, rather than dropped at delivery: the
        // app side parses with serde_json's recursion limit (128), below Go's (10000).
        if crate::http_limits::json_too_deep(&body) {
            return Err(ApiError::rejected(
                StatusCode::BAD_REQUEST,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                format!(
                    "the body nests JSON deeper than {} levels, which no subscriber could parse",
                    crate::http_limits::MAX_JSON_DEPTH
                ),
            ));
        }
        e.publish_record(&pubsub, &topic, content_type, &body, metadata)
            .await
    }
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

/// `POST|PUT /v1.0-alpha1/publish/bulk/{pubsub}/{topic...}` (also under `/v1.0/`): every
/// entry or none is published (one transaction), so a failure lists all entries.
async fn bulk_publish(
    State(e): State<Embedded>,
    Extension(limits): Extension<crate::http_limits::HttpLimits>,
    Path(rest): Path<String>,
    uri: Uri,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Response {
    let prefixes = ["/v1.0-alpha1/publish/bulk/", "/v1.0/publish/bulk/"];
    let (pubsub, topic) = pubsub_and_topic(&uri, &prefixes, &rest);
    let entries = match metadata(query)
        .map_err(BulkRefusal::from)
        .and_then(|md| bulk_entries(&body, &md, &limits))
    {
        Ok(entries) => entries,
        Err(BulkRefusal::TooMany(count)) => {
            return crate::http_limits::too_many_entries(count, &limits);
        }
        Err(BulkRefusal::Api(err)) => return err.into_response(),
    };
    let ids: Vec<String> = entries.iter().map(|en| en.id.clone()).collect();
    match e.publish_many(&pubsub, &topic, entries).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) if err.status == StatusCode::INTERNAL_SERVER_ERROR => {
            let failed: Vec<Value> = ids
                .iter()
                .map(|id| serde_json::json!({"entryId": id, "error": err.message}))
                .collect();
            let body = serde_json::json!({"failedEntries": failed, "errorCode": err.code});
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
        Err(err) => err.into_response(),
    }
}

/// One entry of a bulk publish, decoded.
pub(super) struct BulkEntry {
    pub id: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub metadata: Metadata,
}

/// Why a bulk publish is refused before any entry is published.
enum BulkRefusal {
    /// More entries than `--max-bulk-entries`.
    TooMany(usize),
    Api(ApiError),
}

impl From<ApiError> for BulkRefusal {
    fn from(err: ApiError) -> Self {
        BulkRefusal::Api(err)
    }
}

fn bulk_entries(
    body: &[u8],
    request_md: &Metadata,
    limits: &crate::http_limits::HttpLimits,
) -> Result<Vec<BulkEntry>, BulkRefusal> {
    let bad =
        |msg: String| ApiError::rejected(StatusCode::BAD_REQUEST, "ERR_PUBSUB_EVENTS_SER", msg);
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|err| {
        bad(format!(
            "error when unmarshaling the request body (a JSON array of entries): {err}"
        ))
    })?;
    if items.len() > limits.max_bulk_entries {
        return Err(BulkRefusal::TooMany(items.len()));
    }
    let mut out: Vec<BulkEntry> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in &items {
        let id = str_field(item, "entryId").unwrap_or("");
        if id.is_empty() {
            return Err(bad("entryId is required for every entry".into()).into());
        }
        if !seen.insert(id) {
            return Err(bad(format!("entryId {id} is duplicated")).into());
        }
        let ct = str_field(item, "contentType").unwrap_or("");
        let event = field(item, "event").unwrap_or(&Value::Null);
        let mt = super::envelope::media_type(ct);
        let body = if mt == "application/octet-stream" {
            let s = event
                .as_str()
                .ok_or_else(|| bad(format!("entry {id}: event must be a base64 string")))?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|err| bad(format!("entry {id}: event is not valid base64: {err}")))?
        } else if mt.starts_with("text/") || mt == "application/xml" {
            let s = event
                .as_str()
                .ok_or_else(|| bad(format!("entry {id}: event must be a string")))?;
            s.as_bytes().to_vec()
        } else if mt == "application/json" || mt == super::envelope::CLOUDEVENTS_JSON {
            serde_json::to_vec(event).map_err(|err| bad(err.to_string()))?
        } else {
            return Err(bad(format!("entry {id}: unsupported contentType {ct:?}")).into());
        };
        // Entry metadata overrides the request's (merged only when the entry has some).
        let metadata = match field(item, "metadata").and_then(Value::as_object) {
            Some(m) => {
                let own = m.iter().map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                });
                Metadata::from_pairs(own.chain(request_md.pairs().iter().cloned()))
            }
            None => request_md.clone(),
        };
        out.push(BulkEntry {
            id: id.to_string(),
            content_type: ct.to_string(),
            body,
            metadata,
        });
    }
    Ok(out)
}

/// `metadata.<key>=<value>` query parameters, prefix stripped, first value wins.
pub(super) fn metadata(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Metadata, ApiError> {
    let Query(pairs) = query.map_err(|err| {
        ApiError::rejected(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            err.body_text(),
        )
    })?;
    Ok(Metadata::from_pairs(pairs.into_iter().filter_map(
        |(k, v)| k.strip_prefix("metadata.").map(|k| (k.to_string(), v)),
    )))
}

/// `{pubsub}/{topic...}` from the raw request path (so `%2F` and `+` unescape as in daprd),
/// falling back to axum's decoded wildcard when this router is nested under a prefix.
fn pubsub_and_topic(uri: &Uri, prefixes: &[&str], decoded_rest: &str) -> (String, String) {
    match prefixes.iter().find_map(|p| uri.path().strip_prefix(p)) {
        Some(raw) => {
            let (ps, topic) = raw.split_once('/').unwrap_or((raw, ""));
            (query_unescape(ps), query_unescape(topic))
        }
        None => {
            let (ps, topic) = decoded_rest.split_once('/').unwrap_or((decoded_rest, ""));
            (ps.to_string(), topic.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pubsub_and_topic() {
        let uri: Uri = "/v1.0/publish/ps/a/b%20c?x=1".parse().unwrap();
        assert_eq!(
            pubsub_and_topic(&uri, &["/v1.0/publish/"], ""),
            ("ps".into(), "a/b c".into())
        );
        let uri: Uri = "/v1.0/publish/ps".parse().unwrap();
        assert_eq!(
            pubsub_and_topic(&uri, &["/v1.0/publish/"], ""),
            ("ps".into(), "".into())
        );
    }
}
