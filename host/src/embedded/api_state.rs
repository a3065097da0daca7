//! State routes (docs/dapr-contract.md §5 State): get, save, delete, bulk get, transaction.
//!
//! Request bodies are decoded here into [`StateOp`]s; the etag rules live in `state.rs`.
//! Values are stored as the compact JSON of the item's `value` (daprd's Redis store also keeps
//! JSON). `metadata.*` (e.g. `ttlInSeconds`) and `consistency` are accepted and ignored: the
//! embedded store has no TTL and is always strongly consistent.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;

use super::Embedded;
use super::error::ApiError;
use super::go_decode::{field, str_field};
use super::state::{SaveOp, StateOp};

pub(super) fn routes() -> Router<Embedded> {
    Router::new()
        .route("/v1.0/state/{store}", post(save).put(save))
        .route("/v1.0/state/{store}/bulk", post(bulk_get).put(bulk_get))
        .route(
            "/v1.0/state/{store}/transaction",
            post(transaction).put(transaction),
        )
        .route("/v1.0/state/{store}/{key}", get(get_one).delete(delete_one))
}

fn malformed(msg: impl Into<String>) -> ApiError {
    ApiError::rejected(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", msg)
}

fn respond(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1.0/state/{store}/{key}`: 200 + `ETag`, or 204 when missing.
async fn get_one(
    State(e): State<Embedded>,
    Path((store, key)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            Ok(match e.state_get(&store, &key).await? {
                None => StatusCode::NO_CONTENT.into_response(),
                Some((etag, value)) => (
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        ),
                        (header::ETAG, HeaderValue::from(etag)),
                    ],
                    value,
                )
                    .into_response(),
            })
        }
        .await,
    )
}

/// `POST|PUT /v1.0/state/{store}`: a JSON array of `{key, value, etag?, options?}`.
async fn save(State(e): State<Embedded>, Path(store): Path<String>, body: Bytes) -> Response {
    respond(
        async {
            let items: Vec<Value> = match serde_json::from_slice(&body) {
                Ok(Value::Array(items)) => items,
                Ok(_) => {
                    return Err(malformed(
                        "the request body must be a JSON array of state items",
                    ));
                }
                Err(err) => return Err(malformed(format!("the request body is not JSON: {err}"))),
            };
            let ops = items
                .iter()
                .map(|item| upsert(item, "ERR_STATE_SAVE"))
                .collect::<Result<Vec<_>, _>>()?;
            e.state_apply(&store, ops, "ERR_STATE_SAVE").await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// One `{key, value, etag?, options?:{concurrency}}` item.
fn upsert(item: &Value, code: &'static str) -> Result<StateOp, ApiError> {
    let key = str_field(item, "key").unwrap_or("");
    if key.is_empty() {
        return Err(malformed("every state item needs a non-empty \"key\""));
    }
    let etag = match field(item, "etag") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(malformed(format!(
                "key {key}: etag must be a string, got {other}"
            )));
        }
    };
    let concurrency = field(item, "options")
        .and_then(|o| field(o, "concurrency"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let first_write = match concurrency {
        "" | "last-write" => false,
        "first-write" => true,
        other => {
            return Err(ApiError::rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                format!("key {key}: unknown concurrency {other:?} (first-write or last-write)"),
            ));
        }
    };
    let value = field(item, "value").unwrap_or(&Value::Null);
    Ok(StateOp::Upsert(SaveOp {
        key: key.to_string(),
        value: serde_json::to_vec(value).map_err(|err| malformed(err.to_string()))?,
        etag,
        first_write,
        ttl_secs: ttl_of(item),
    }))
}

/// `DELETE /v1.0/state/{store}/{key}` with an optional `If-Match` etag.
async fn delete_one(
    State(e): State<Embedded>,
    Path((store, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    respond(
        async {
            let etag = headers
                .get(header::IF_MATCH)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string);
            e.state_apply(
                &store,
                vec![StateOp::Delete { key, etag }],
                "ERR_STATE_DELETE",
            )
            .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// `POST /v1.0/state/{store}/bulk` `{"keys":[...]}` -> `[{"key","data"?,"etag"?}]`.
async fn bulk_get(State(e): State<Embedded>, Path(store): Path<String>, body: Bytes) -> Response {
    respond(
        async {
            let req: Value =
                serde_json::from_slice(&body).map_err(|err| malformed(err.to_string()))?;
            let keys = field(&req, "keys")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("the body needs \"keys\": an array of strings"))?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let key = key
                    .as_str()
                    .ok_or_else(|| malformed("keys must be strings"))?;
                out.push(match e.state_get(&store, key).await {
                    Ok(None) => serde_json::json!({ "key": key }),
                    Ok(Some((etag, value))) => {
                        // Stored values are JSON; bytes saved in-process may not be.
                        let data = serde_json::from_slice::<Value>(&value).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&value).into())
                        });
                        serde_json::json!({ "key": key, "data": data, "etag": etag.to_string() })
                    }
                    Err(err) if err.code == "ERR_STATE_STORE_NOT_FOUND" => return Err(err),
                    Err(err) => serde_json::json!({ "key": key, "error": err.message }),
                });
            }
            Ok(axum::Json(Value::Array(out)).into_response())
        }
        .await,
    )
}

/// `POST /v1.0/state/{store}/transaction`: upserts and deletes, all or nothing; any failure is
/// 500 `ERR_STATE_TRANSACTION` (never 409), as in daprd.
async fn transaction(
    State(e): State<Embedded>,
    Path(store): Path<String>,
    body: Bytes,
) -> Response {
    const CODE: &str = "ERR_STATE_TRANSACTION";
    respond(
        async {
            let req: Value =
                serde_json::from_slice(&body).map_err(|err| malformed(err.to_string()))?;
            let ops_json = match field(&req, "operations") {
                None | Some(Value::Null) => &[][..],
                Some(Value::Array(a)) => a.as_slice(),
                Some(_) => return Err(malformed("\"operations\" must be an array")),
            };
            let mut ops = Vec::with_capacity(ops_json.len());
            for op in ops_json {
                let request = field(op, "request").unwrap_or(&Value::Null);
                match str_field(op, "operation").unwrap_or("") {
                    "upsert" => ops.push(upsert(request, CODE)?),
                    "delete" => {
                        let key = str_field(request, "key").unwrap_or("");
                        let etag = str_field(request, "etag")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string);
                        ops.push(StateOp::Delete {
                            key: key.to_string(),
                            etag,
                        });
                    }
                    other => {
                        return Err(ApiError::rejected(
                            StatusCode::BAD_REQUEST,
                            "ERR_NOT_SUPPORTED_STATE_OPERATION",
                            format!("operation type {other:?} not supported (upsert or delete)"),
                        ));
                    }
                }
            }
            e.state_apply(&store, ops, CODE).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// `metadata.ttlInSeconds` of a save item (a string, as daprd takes it, or a number); `-1`, `0`,
/// absent or unreadable mean "no TTL".
fn ttl_of(item: &Value) -> Option<u64> {
    let raw = field(item, "metadata").and_then(|m| field(m, "ttlInSeconds"))?;
    let secs = match raw {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    u64::try_from(secs).ok().filter(|s| *s > 0)
}
