//! The operator's HTTP endpoints for the plugin: status, swap, rollback.
//!
//! - `GET /admin/plugin`: current and previous generation (name, version, sha256, loaded_at,
//!   origin, deliveries, failures), the last rejection and rollback, `restart_required` with the
//!   subscription difference, the rollback policy, and counters. The plugin's identity lives
//!   here and on `/metrics`, not on the open `/healthz`.
//! - `POST /admin/plugin` with the .wasm as the body: 200 `{"result":"swapped", ...}` or
//!   `{"result":"unchanged", ...}`; 422 `{"result":"rejected","kind","reason"}` with the old
//!   plugin still serving; 400 for an empty body; 413 past `MAX_PLUGIN_BYTES`. The response
//!   comes when the plugin serves (or was refused), after compilation and the canary. A plugin
//!   swapped in this way is not written anywhere: a restart loads `--guest` again.
//! - `POST /admin/rollback`: 200 `{"result":"rolled-back","from","to"}`, or 409 when there is
//!   nothing to roll back to.
//!
//! Access: refused with 403 unless an admin token is configured (`--admin-token`), and then
//! with 401 unless the request carries `authorization: Bearer <token>`, compared in constant
//! time. These routes are not behind `APP_API_TOKEN` (daprd never calls them).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::dapr::auth::{bearer, token_matches};
use crate::plugin::report::Trigger;
use crate::plugin::swap::{SwapOutcome, Swapper};

/// Largest plugin accepted by `POST /admin/plugin`.
pub const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// The admin routes; `token` is `--admin-token`.
pub fn router(swapper: Arc<Swapper>, token: Option<String>) -> Router {
    Router::new()
        .route("/admin/plugin", get(status).post(swap))
        .route("/admin/rollback", post(rollback))
        .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES))
        .with_state(swapper)
        // route_layer, not layer: a path no admin route matches must fall through to the host's
        // 404 (not_found.rs), not be refused here as if it were an admin endpoint.
        .route_layer(from_fn_with_state(
            token.map(Arc::<str>::from),
            require_admin_token,
        ))
}

pub(crate) async fn require_admin_token(
    State(expected): State<Option<Arc<str>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = expected else {
        return error(
            StatusCode::FORBIDDEN,
            "the admin endpoints are disabled: start the host with --admin-token <token> (or set \
             TASK_EVENTS_ADMIN_TOKEN), then send `authorization: Bearer <token>`",
        );
    };
    if token_matches(bearer(request.headers()), &expected) {
        next.run(request).await
    } else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (`authorization: Bearer <token>`)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn status(State(swapper): State<Arc<Swapper>>) -> Response {
    Json(swapper.status()).into_response()
}

async fn swap(State(swapper): State<Arc<Swapper>>, body: Bytes) -> Response {
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "the request body must be the plugin .wasm (e.g. curl --data-binary @plugin.wasm)",
        );
    }
    match swapper.swap(body.to_vec(), "POST /admin/plugin").await {
        Ok(SwapOutcome::Unchanged(current)) => {
            Json(json!({"result": "unchanged", "current": current})).into_response()
        }
        Ok(SwapOutcome::Swapped(swapped)) => {
            let mut body = serde_json::to_value(&swapped).unwrap_or_default();
            body["result"] = json!("swapped");
            Json(body).into_response()
        }
        Err(rejection) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "result": "rejected",
                "kind": rejection.kind(),
                "reason": rejection.to_string(),
                "current": swapper.status().current,
            })),
        )
            .into_response(),
    }
}

async fn rollback(State(swapper): State<Arc<Swapper>>) -> Response {
    match swapper
        .roll_back(Trigger::Command, "POST /admin/rollback".into(), None)
        .await
    {
        Ok(record) => Json(json!({"result": "rolled-back", "from": record.from, "to": record.to}))
            .into_response(),
        Err(refused) => error(StatusCode::CONFLICT, &refused.to_string()),
    }
}
