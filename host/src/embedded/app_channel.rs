//! How the sidecar reaches the app it delivers to: the host's own router in-process (`serve`,
//! the one-command path), or any app over HTTP (`task-events-host sidecar`, as daprd does).
//!
//! Over HTTP the app may be several replicas (`--app-url` given more than once): a consumer
//! group. Partition `p` is delivered to replica `p % n`; when that replica does not answer
//! (refused, reset, timeout), the delivery goes to the next replica that does, as Kafka hands a
//! stalled consumer's partitions to the rest of its group. A partition still has one consumer
//! here, delivering one message at a time, so per-key order holds whichever replica serves it.
//!
//! Every kind takes the same `Request` and gives back the status and body; everything daprd
//! decides (routes, headers, how an answer reads) is built above this, once. A transport failure
//! (refused, reset, timeout, a handler that panicked) is an `Err`: the message is redelivered.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use tower::ServiceExt as _;

use super::staging::Staging;

/// Largest app answer read; daprd reads whole bodies, this only guards memory.
const MAX_RESPONSE: usize = 16 << 20;

/// The app behind this sidecar; cheap to clone.
#[derive(Clone)]
pub enum AppChannel {
    /// The host's router, called in this process.
    InProcess(Router),
    /// An app listening on HTTP: one or more replicas.
    Http(std::sync::Arc<[HttpApp]>),
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

    async fn call(
        &self,
        parts: &axum::http::request::Parts,
        body: &Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = self
            .client
            .request(parts.method.clone(), format!("{}{path}", self.base))
            .headers(parts.headers.clone())
            .body(body.clone());
        if let Some(token) = &self.token {
            out = out.header("dapr-api-token", token);
        }
        let resp = out
            .send()
            .await
            .map_err(|e| format!("calling the app at {} failed: {e}", self.base))?;
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
    /// Sends `req`, a message of partition `partition`, to the app; `Err` is a transport-level
    /// failure of every replica (retriable).
    pub async fn call(
        &self,
        req: Request<Body>,
        partition: u32,
    ) -> Result<(StatusCode, Bytes), String> {
        let replicas = match self {
            AppChannel::InProcess(router) => return call_in_process(router, req).await,
            AppChannel::Http(replicas) => replicas,
        };
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| format!("reading the request body failed: {e}"))?;
        let n = replicas.len().max(1);
        let mut failures = Vec::new();
        for i in 0..n {
            let Some(app) = replicas.get((partition as usize + i) % n) else {
                break;
            };
            match app.call(&parts, &body).await {
                Ok(answer) => return Ok(answer),
                Err(e) => failures.push(e),
            }
        }
        Err(failures.join("; "))
    }

    /// Whether the app can take deliveries: in-process always; over HTTP, once a replica
    /// accepts connections (daprd waits for this before it reads `/dapr/subscribe`).
    pub async fn is_listening(&self) -> bool {
        match self {
            AppChannel::InProcess(_) => true,
            AppChannel::Http(replicas) => {
                for app in replicas.iter() {
                    if app.is_listening().await {
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// The handler runs in its own task, so one that panics is a transport error (the message is
/// retried) rather than the end of the partition's consumer.
async fn call_in_process(app: &Router, req: Request<Body>) -> Result<(StatusCode, Bytes), String> {
    let app = app.clone();
    // The handler runs in its own task (a panic stays there), inside the delivery's staging.
    let staging = Staging::current();
    let task = tokio::spawn(async move {
        let resp = match Staging::scope(staging, app.oneshot(req)).await {
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
