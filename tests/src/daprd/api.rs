//! The sidecar HTTP API the app calls: routing, the API token, health, error bodies, and the
//! listener that can refuse connections.
//!
//! Contract (dapr-contract.md §5):
//! - With `DAPR_API_TOKEN` set, every request except `GET /v1.0/healthz` and
//!   `GET /v1.0/healthz/outbound` needs `dapr-api-token`, else 401 `text/plain`
//!   `invalid api token\n`.
//! - `GET /v1.0/healthz`: 500 `ERR_HEALTH_NOT_READY` until the app port was seen open (§1 step 2),
//!   then 204; `?appid=` that does not match gives 500 `ERR_HEALTH_APPID_NOT_MATCH`.
//!   `GET /v1.0/healthz/outbound`: 204 from the start.
//! - Metadata arrives as `metadata.<key>` query parameters, first value wins; path parameters
//!   are unescaped with Go's `url.QueryUnescape` (`+` is a space), so routing works on the raw
//!   path here rather than through axum extractors.
//! - Bodies above 4 MiB (`--max-body-size` default) are refused with 413.
//!
//! Unsupported endpoints (bulk publish, state bulk/transaction) answer 501 with errorCode
//! `ERR_STANDIN_UNSUPPORTED`, so a test that strays there fails loudly instead of silently.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::{Inner, publish, state};

const MAX_BODY: usize = 4 << 20;

/// A finished sidecar answer (also what `FakeDaprd::publish_json` returns internally).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub etag: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            content_type: None,
            etag: None,
            body: Vec::new(),
        }
    }
    /// An error in the older `{"errorCode","message"}` shape (state, healthz, malformed).
    pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        let body = serde_json::json!({"errorCode": code, "message": message});
        Reply::json(status, serde_json::to_vec(&body).unwrap_or_default())
    }
    /// An error in the dapr/kit shape with `details` (pubsub errors).
    pub(crate) fn kit_error(
        status: StatusCode,
        code: &str,
        message: &str,
        reason: &str,
        resource: &str,
    ) -> Reply {
        let body = serde_json::json!({
            "errorCode": code,
            "message": message,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                 "domain": "dapr.io", "metadata": {}},
                {"@type": "type.googleapis.com/google.rpc.ResourceInfo",
                 "resource_type": "pubsub", "resource_name": resource, "owner": "",
                 "description": message},
            ],
        });
        Reply::json(status, serde_json::to_vec(&body).unwrap_or_default())
    }
    pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: Some("application/json"),
            etag: None,
            body,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = self.status;
        if let Some(ct) = self.content_type {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            resp.headers_mut().insert(header::ETAG, etag);
        }
        resp
    }
}

/// The one handler: everything is routed by hand on the raw path.
pub(crate) async fn dispatch(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let delay = inner.faults.delay_ms();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let health = parts.method == Method::GET
        && (path == "/v1.0/healthz" || path == "/v1.0/healthz/outbound");
    if let Some(token) = &inner.cfg.dapr_api_token
        && !health
        && parts
            .headers
            .get("dapr-api-token")
            .and_then(|v| v.to_str().ok())
            != Some(token.as_str())
    {
        let mut resp = Response::new(Body::from("invalid api token\n"));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return resp;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return Reply::empty(StatusCode::PAYLOAD_TOO_LARGE).into_response(),
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = parts.method.clone();
    let reply = match (segs.as_slice(), &method) {
        (["v1.0", "healthz"], &Method::GET) => health_reply(&inner, &query),
        (["v1.0", "healthz", "outbound"], &Method::GET) => Reply::empty(StatusCode::NO_CONTENT),
        (["v1.0" | "v1.0-alpha1", "publish", "bulk", ..], _) => unsupported("bulk publish"),
        (["v1.0", "publish", ps, topic @ ..], &Method::POST | &Method::PUT) => {
            let ct = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let topic = topic.join("/");
            match (query_unescape(ps), query_unescape(&topic)) {
                (Some(ps), Some(topic)) => {
                    publish::publish(&inner, &ps, &topic, ct, &body, metadata(&query))
                }
                _ => Reply::error(
                    StatusCode::BAD_REQUEST,
                    "ERR_MALFORMED_REQUEST",
                    "invalid URL escape",
                ),
            }
        }
        (["v1.0", "state", _, "bulk" | "transaction"], &Method::POST | &Method::PUT) => {
            unsupported("state bulk/transaction")
        }
        (["v1.0", "state", store], &Method::POST | &Method::PUT) => match query_unescape(store) {
            Some(store) => state::save(&inner, &store, &body, &metadata(&query)),
            None => Reply::error(
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                "invalid URL escape",
            ),
        },
        (["v1.0", "state", store, key], &Method::GET | &Method::DELETE) => {
            match (query_unescape(store), query_unescape(key)) {
                (Some(store), Some(key)) if method == Method::GET => {
                    state::get(&inner, &store, &key)
                }
                (Some(store), Some(key)) => {
                    let etag = parts
                        .headers
                        .get(header::IF_MATCH)
                        .and_then(|v| v.to_str().ok());
                    state::delete(&inner, &store, &key, etag, &query)
                }
                _ => Reply::error(
                    StatusCode::BAD_REQUEST,
                    "ERR_MALFORMED_REQUEST",
                    "invalid URL escape",
                ),
            }
        }
        (["v1.0", "publish", ..] | ["v1.0", "state", ..] | ["v1.0", "healthz", ..], _) => {
            Reply::empty(StatusCode::METHOD_NOT_ALLOWED)
        }
        _ => Reply {
            content_type: Some("text/plain"),
            ..Reply::empty(StatusCode::NOT_FOUND)
        },
    };
    reply.into_response()
}

fn unsupported(what: &str) -> Reply {
    let msg = format!("{what} is not implemented by the daprd stand-in");
    Reply::error(StatusCode::NOT_IMPLEMENTED, "ERR_STANDIN_UNSUPPORTED", &msg)
}

fn health_reply(inner: &Inner, query: &[(String, String)]) -> Reply {
    if let Some((_, id)) = query.iter().find(|(k, _)| k == "appid")
        && *id != inner.cfg.app_id
    {
        let msg = format!("dapr app-id does not match: expected {id}");
        return Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            &msg,
        );
    }
    if inner.app_ready() {
        Reply::empty(StatusCode::NO_CONTENT)
    } else {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "dapr is not ready: [app]",
        )
    }
}

/// Request metadata from `metadata.<key>` query parameters; the first value of a key wins.
pub(crate) fn metadata(query: &[(String, String)]) -> BTreeMap<String, String> {
    let mut md = BTreeMap::new();
    for (k, v) in query {
        if let Some(key) = k.strip_prefix("metadata.") {
            md.entry(key.to_string()).or_insert_with(|| v.clone());
        }
    }
    md
}

/// Go's `url.ParseQuery`, minus its error: pairs with bad escapes or `;` are skipped.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((query_unescape(k)?, query_unescape(v)?))
        })
        .collect()
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` is a byte, a bad escape is an error.
pub(crate) fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The sidecar's listener: a loopback port that `Faults::refuse` can close and re-open.
pub(crate) struct GatedListener {
    pub(crate) inner: Arc<Inner>,
    pub(crate) listener: Option<TcpListener>,
    pub(crate) port: u16,
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedIo, SocketAddr) {
        let mut changed = self.inner.faults.watch();
        loop {
            changed.borrow_and_update();
            if self.inner.faults.is_refusing() {
                // Closing the socket makes new connects fail with "connection refused".
                self.listener = None;
                let _ = changed.changed().await;
                continue;
            }
            let Some(listener) = &self.listener else {
                match TcpListener::bind(("127.0.0.1", self.port)).await {
                    Ok(l) => self.listener = Some(l),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
                continue;
            };
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, addr)) if !self.inner.faults.is_refusing() => {
                        let epoch = self.inner.faults.epoch();
                        return (GatedIo { stream, epoch, inner: self.inner.clone() }, addr);
                    }
                    Ok(_) => continue,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                _ = changed.changed() => continue,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

/// A connection that fails once a `refuse` happened after it was accepted.
pub(crate) struct GatedIo {
    stream: TcpStream,
    epoch: u64,
    inner: Arc<Inner>,
}

impl GatedIo {
    fn cut(&self) -> bool {
        self.inner.faults.epoch() != self.epoch
    }
}

fn reset() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset)
}

impl AsyncRead for GatedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.cut() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.cut() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
