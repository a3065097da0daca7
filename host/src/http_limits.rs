//! What one request may cost: the body bound every Dapr-facing and sidecar API route shares.
//!
//! Contract of [`bound_body`] (a middleware, layered inside each router, under its token check):
//! - the limits are the [`HttpLimits`] extension the listener put on the request
//!   (`--max-body-bytes`, `--body-read-timeout-ms`, `--max-bulk-entries`), or the defaults when
//!   a router is used in-process without one; the handler finds the same extension, so it
//!   never has to guess which limits applied;
//! - a `content-length` above the limit is answered 413 before one byte of the body is read
//!   (a 1 GB upload costs one header parse), and so is a chunked body the moment it passes the
//!   limit;
//! - a body that does not arrive within the read timeout gets 408: a client trickling bytes
//!   holds one connection for a bounded time, never a worker forever;
//! - otherwise the body is buffered (at most the limit) and handed on, so handlers read bytes
//!   that are already here.
//!
//! Answers use daprd's error shape (`{"errorCode","message"}`), which both daprd and the Dapr
//! SDKs already log. JSON nesting needs no bound here: every parser on these routes is
//! serde_json's, whose recursion limit (128) turns a deep body into a parse error. One place
//! stores JSON without parsing it as a tree (the sidecar's publish keeps the body's bytes), and
//! it checks [`json_too_deep`] first, so it never accepts what its subscribers cannot parse.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use http_body_util::{BodyExt as _, Limited};
use serde_json::json;

pub use crate::config::HttpLimits;

/// The limits that apply to `request`: the listener's, or the defaults.
pub fn limits_of(request: &Request) -> HttpLimits {
    request
        .extensions()
        .get::<HttpLimits>()
        .copied()
        .unwrap_or_default()
}

/// Middleware: buffers the request body within the size and time bounds, or answers 413/408.
pub async fn bound_body(request: Request, next: Next) -> Response {
    let limits = limits_of(&request);
    let max = limits.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(max);
    }
    let (mut parts, body) = request.into_parts();
    let read = Limited::new(body, max).collect();
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(max),
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ERR_REQUEST_BODY",
                format!("the request body could not be read: {e}"),
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "ERR_REQUEST_BODY_TIMEOUT",
                format!(
                    "the request body did not arrive within {:?} (--body-read-timeout-ms)",
                    limits.body_read_timeout
                ),
            );
        }
    };
    parts.extensions.insert(limits);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Deepest JSON nesting a publish body may have: the delivery wraps it in a CloudEvent (one
/// level) and the app parses that with serde_json's recursion limit (128), with room to spare.
pub const MAX_JSON_DEPTH: usize = 100;

/// Whether `body`, read as JSON, nests arrays and objects deeper than [`MAX_JSON_DEPTH`]. A
/// single pass over the bytes, no allocation, no recursion; brackets inside strings do not
/// count. Bodies that are not JSON are judged the same way, harmlessly: they are stored as
/// strings or refused by the envelope.
pub fn json_too_deep(body: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// 413 for a bulk request with more than `--max-bulk-entries` entries.
pub fn too_many_entries(count: usize, limits: &HttpLimits) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ERR_TOO_MANY_BULK_ENTRIES",
        format!(
            "the bulk request has {count} entries; the limit is {} (--max-bulk-entries); none \
             was processed: send smaller batches (bulkSubscribe maxMessagesCount)",
            limits.max_bulk_entries
        ),
    )
}

fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ERR_REQUEST_BODY_TOO_LARGE",
        format!("the request body is larger than {max} bytes (--max-body-bytes)"),
    )
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({"errorCode": code, "message": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Bytes;
    use axum::routing::post;
    use tower::ServiceExt as _;

    use super::*;

    fn app(limits: HttpLimits) -> Router {
        Router::new()
            .route(
                "/",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn(bound_body))
            .layer(axum::Extension(limits))
    }

    async fn send(limits: HttpLimits, request: Request) -> (StatusCode, String) {
        let response = app(limits).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn small() -> HttpLimits {
        HttpLimits {
            max_body_bytes: 10,
            ..HttpLimits::default()
        }
    }

    #[tokio::test]
    async fn bodies_within_the_limit_pass_and_larger_ones_get_413() {
        let ok = Request::post("/").body(Body::from("0123456789")).unwrap();
        assert_eq!(send(small(), ok).await, (StatusCode::OK, "10".into()));

        // Declared too large: refused before reading (the body here is empty).
        let declared = Request::post("/")
            .header(header::CONTENT_LENGTH, "1073741824")
            .body(Body::empty())
            .unwrap();
        let (status, body) = send(small(), declared).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body.contains("--max-body-bytes"), "{body}");

        // Not declared (chunked): refused once it passes the limit.
        let streamed = Request::post("/")
            .body(chunks(&["012345", "6789ab"], false))
            .unwrap();
        assert_eq!(
            send(small(), streamed).await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!json_too_deep(nested(MAX_JSON_DEPTH).as_bytes()));
        assert!(json_too_deep(nested(MAX_JSON_DEPTH + 1).as_bytes()));
        assert!(json_too_deep(nested(100_000).as_bytes()));
        let in_string = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(!json_too_deep(in_string.as_bytes()));
        // Siblings do not add up.
        assert!(!json_too_deep("[[]]".repeat(1_000).as_bytes()));
    }

    #[tokio::test]
    async fn a_body_that_never_finishes_gets_408() {
        let limits = HttpLimits {
            body_read_timeout: Duration::from_millis(50),
            ..HttpLimits::default()
        };
        // A body that sends one chunk and then never ends.
        let body = chunks(&["{"], true);
        let (status, text) = send(limits, Request::post("/").body(body).unwrap()).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{text}");
    }

    /// A body of `parts` with no length, which then ends or (`hang`) never does.
    fn chunks(parts: &[&'static str], hang: bool) -> Body {
        Body::new(Chunks {
            parts: parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
            hang,
        })
    }

    struct Chunks {
        parts: std::collections::VecDeque<Bytes>,
        hang: bool,
    }

    impl axum::body::HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            use std::task::Poll;
            match self.parts.pop_front() {
                Some(part) => Poll::Ready(Some(Ok(http_body::Frame::data(part)))),
                // Never woken again: the read timeout is what ends this request.
                None if self.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }
}
