//! API tokens on the HTTP surface (docs/dapr-contract.md §5, §7).
//!
//! With APP_API_TOKEN set, daprd sends it as `dapr-api-token` on every call to the app, and the
//! app must refuse calls without it; `/healthz` (daprd's app health probe sends no token) and
//! `/metrics` stay open to it. `/metrics` has its own optional token (`--metrics-token`, sent
//! as `authorization: Bearer`, what Prometheus' `authorization` scrape setting sends). The
//! comparison is constant-time so a token cannot be guessed byte by byte from response timings.
//! An empty token is no token (`config::non_empty`), so none of these compares against "".

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// Paths that never need a token.
const OPEN_PATHS: [&str; 4] = [
    "/healthz",
    "/metrics",
    "/v1.0/healthz",
    "/v1.0/healthz/outbound",
];

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(presented: Option<&[u8]>, expected: &str) -> bool {
    presented.is_some_and(|p| bool::from(p.ct_eq(expected.as_bytes())))
}

/// The token of an `authorization: Bearer <token>` header, if the request has one.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes())
}

/// Middleware: `/metrics` answers 401 unless the request carries `authorization: Bearer
/// <expected>`; every other path passes (they have their own tokens).
pub async fn require_metrics_token(
    State(expected): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/metrics" || token_matches(bearer(request.headers()), &expected) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "missing or wrong metrics token (`authorization: Bearer <token>`, --metrics-token)\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Middleware: refuses with 401 unless the request carries `dapr-api-token: <expected>`.
pub async fn require_dapr_api_token(
    State(expected): State<String>,
    request: Request,
    next: Next,
) -> Response {
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get("dapr-api-token")
        .map(|v| v.as_bytes());
    if token_matches(presented, &expected) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "invalid api token\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(bearer(&headers), Some(&b"s3cret"[..]));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches(Some(b"s3cret"), "s3cret"));
        assert!(!token_matches(Some(b"s3cre"), "s3cret"));
        assert!(!token_matches(Some(b"s3cret!"), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
    }
}
