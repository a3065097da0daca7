//! The app channel: how daprd's HTTP requests to the app are built and sent.
//!
//! Contract (dapr-contract.md §2 "Request line and headers", §3 last row):
//! - `POST http://127.0.0.1:<app-port>/<path>` with the path given a leading `/` and cleaned
//!   like Go's `path.Clean`; redirects are not followed (a 3xx is just a status).
//! - Every metadata entry becomes a header: key lower-cased, `content-type`/`content-length`
//!   skipped, `grpc-*` renamed `dapr-grpc-*`. A header name or value HTTP cannot carry (control
//!   characters; UTF-8 is fine, as in Go) makes the request fail before it is sent, which daprd
//!   treats as a retriable error.
//! - `dapr-api-token` is added when `APP_API_TOKEN` is configured; no `dapr-app-id`.
//! - No timeout of its own: only the resiliency `timeout` bounds an attempt, and `stop()`
//!   cancels everything.
//!
//! Transport failures come back as `Err(text)`; the caller classifies them as retriable.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::Inner;

/// The app's answer.
pub(crate) struct AppReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The HTTP client daprd uses for the app channel.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Headers for a delivery: the metadata headers, then content type and token.
pub(crate) fn delivery_headers(
    inner: &Inner,
    metadata: &BTreeMap<String, String>,
    content_type: &str,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in metadata {
        let mut k = k.to_lowercase();
        if k == "content-type" || k == "content-length" {
            continue;
        }
        if let Some(rest) = k.strip_prefix("grpc-") {
            k = format!("dapr-grpc-{rest}");
        }
        out.retain(|(ok, _)| *ok != k);
        out.push((k, v.clone()));
    }
    out.push(("content-type".into(), content_type.into()));
    out.push(("user-agent".into(), "Go-http-client/1.1".into()));
    if let Some(t) = &inner.cfg.app_api_token {
        out.retain(|(k, _)| k != "dapr-api-token");
        out.push(("dapr-api-token".into(), t.clone()));
    }
    out
}

/// Go's `path.Clean` of `"/" + path`.
pub(crate) fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Send one request to the app. `timeout` is the resiliency per-attempt timeout; the shutdown
/// token ends the call early either way.
pub(crate) async fn call(
    inner: &Inner,
    method: reqwest::Method,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> Result<AppReply, String> {
    let url = format!("http://127.0.0.1:{}{}", inner.cfg.app_port, path);
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("invalid header field name {k:?}: {e}"))?;
        let value = HeaderValue::from_bytes(v.as_bytes())
            .map_err(|e| format!("invalid header field value for {k:?}: {e}"))?;
        map.insert(name, value);
    }
    let fut = async {
        let resp = inner
            .client
            .request(method, &url)
            .headers(map)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| describe(&e))?.to_vec();
        Ok(AppReply { status, body })
    };
    let bounded = async {
        match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .unwrap_or_else(|_| Err("context deadline exceeded".to_string())),
            None => fut.await,
        }
    };
    tokio::select! {
        r = bounded => r,
        _ = inner.shutdown.cancelled() => Err("context canceled".into()),
    }
}

/// reqwest hides the cause in the source chain; keep all of it for the log.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
