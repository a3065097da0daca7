//! What `serve` answers for a path it does not serve: 404, with a reason an operator can act on.
//!
//! - Any unknown path: 404 `{"error": "no such endpoint: METHOD PATH"}` in both modes (never the
//!   admin layer's 403: that is only for `/admin/*`).
//! - In Dapr mode, the embedded sidecar's API (`/v1.0/...`, `/v1.0-alpha1/...`,
//!   `/v1.0-embedded/...`): 404 with daprd's error shape, saying the embedded sidecar is off and
//!   why (DAPR_HTTP_PORT / --sidecar), so a publish sent to the host instead of to daprd explains
//!   itself instead of vanishing.

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::any;
use serde_json::json;

/// The fallback for every path no route matched.
pub async fn unknown(request: Request) -> Response {
    let message = format!(
        "no such endpoint: {} {}",
        request.method(),
        request.uri().path()
    );
    (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response()
}

/// The sidecar API paths, answered when the host pairs with daprd (the embedded sidecar is off).
pub fn sidecar_off(endpoint: &str) -> Router {
    let message = format!(
        "the embedded sidecar is off: this host uses daprd at {endpoint} (DAPR_HTTP_PORT or \
         DAPR_HTTP_ENDPOINT is set, or --sidecar dapr). Send Dapr API calls to daprd, or start the \
         host with --sidecar embedded (TASK_EVENTS_SIDECAR=embedded) to serve them here"
    );
    let answer = move || {
        let message = message.clone();
        async move {
            let body = json!({"errorCode": "ERR_EMBEDDED_SIDECAR_OFF", "message": message});
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    };
    [
        "/v1.0/{*rest}",
        "/v1.0-alpha1/{*rest}",
        "/v1.0-embedded/{*rest}",
    ]
    .into_iter()
    .fold(Router::new(), |router, path| {
        router.route(path, any(answer.clone()))
    })
}
