//! API tokens on the HTTP surface (docs/dapr-contract.md §5, §7).
//!
//! With APP_API_TOKEN set, daprd sends it as `dapr-api-token` on every call to the app, and the
//! app must refuse calls without it; `/healthz` (daprd's app health probe sends no token) and
//! `/metrics` stay open. The comparison is constant-time so the token cannot be guessed byte by
//! byte from response timings.

use axum::extract::{Request, State};
use axum::http::StatusCode;
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
    use super::token_matches;

    #[test]
    fn tokens_must_match_exactly() {
        assert!(token_matches(Some(b"s3cret"), "s3cret"));
        assert!(!token_matches(Some(b"s3cre"), "s3cret"));
        assert!(!token_matches(Some(b"s3cret!"), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
    }
}
