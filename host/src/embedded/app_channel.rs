//! How the sidecar reaches the app it delivers to: the host's own router in-process (`serve`,
//! the one-command path), or any app over HTTP (`task-events-host sidecar`, as daprd does).
//!
//! Both take the same `Request` and give back the status and body; everything daprd decides
//! (routes, headers, how an answer reads) is built above this, once. A transport failure
//! (refused, reset, timeout, a handler that panicked) is an `Err`: the message is redelivered.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use tower::ServiceExt as _;

/// Largest app answer read; daprd reads whole bodies, this only guards memory.
const MAX_RESPONSE: usize = 16 << 20;

/// The app behind this sidecar; cheap to clone.
#[derive(Clone)]
pub enum AppChannel {
    /// The host's router, called in this process.
    InProcess(Router),
    /// An app listening on HTTP.
    Http(HttpApp),
}

/// An app reached over HTTP, e.g. `http://127.0.0.1:3000`.
#[derive(Clone)]
pub struct HttpApp {
    base: String,
    client: reqwest::Client,
    /// Sent as `dapr-api-token` on every call, like daprd's `APP_API_TOKEN`.
    token: Option<String>,
}

impl HttpApp {
    /// `base` without a trailing slash; `timeout` bounds one call (then it is retried).
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> HttpApp {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()
            .expect("a plain-HTTP reqwest client always builds");
        HttpApp {
            base: base.trim_end_matches('/').to_string(),
            client,
            token,
        }
    }

    /// Whether something accepts connections at the app's address (daprd waits for this before
    /// it reads `/dapr/subscribe`).
    pub async fn is_listening(&self) -> bool {
        self.client.get(&self.base).send().await.is_ok()
    }

    async fn call(&self, req: Request<Body>) -> Result<(StatusCode, Bytes), String> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| format!("reading the request body failed: {e}"))?;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = self
            .client
            .request(parts.method, format!("{}{path}", self.base))
            .headers(parts.headers)
            .body(body);
        if let Some(token) = &self.token {
            out = out.header("dapr-api-token", token);
        }
        let resp = out
            .send()
            .await
            .map_err(|e| format!("calling the app failed: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the app's answer failed: {e}"))?;
        if bytes.len() > MAX_RESPONSE {
            return Err(format!(
                "the app's answer is larger than {MAX_RESPONSE} bytes"
            ));
        }
        Ok((status, bytes))
    }
}

impl AppChannel {
    /// Sends `req` to the app; `Err` is a transport-level failure (retriable).
    pub async fn call(&self, req: Request<Body>) -> Result<(StatusCode, Bytes), String> {
        match self {
            AppChannel::InProcess(router) => call_in_process(router, req).await,
            AppChannel::Http(app) => app.call(req).await,
        }
    }
}

/// The handler runs in its own task, so one that panics is a transport error (the message is
/// retried) rather than the end of the partition's consumer.
async fn call_in_process(app: &Router, req: Request<Body>) -> Result<(StatusCode, Bytes), String> {
    let app = app.clone();
    let task = tokio::spawn(async move {
        let resp = match app.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        axum::body::to_bytes(resp.into_body(), MAX_RESPONSE)
            .await
            .map(|b| (status, b))
            .map_err(|e| format!("reading the app's answer failed: {e}"))
    });
    match task.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err("the app's handler panicked".into()),
        Err(e) => Err(format!("the delivery task failed: {e}")),
    }
}
