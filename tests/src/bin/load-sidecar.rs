//! A daprd stand-in for load tests that answers every request at once, so the app under test is
//! the only thing measured: `204 No Content` for everything (publish accepted, state saved, and
//! for a state read "no such key", which the host's client treats as missing), except a bulk
//! state read (`POST /v1.0/state/{store}/bulk`), answered as daprd answers missing keys:
//! `[{"key": ...}]` for every key asked.
//!
//! It counts requests by method and the first three path segments (`POST /v1.0/publish`,
//! `GET /v1.0/state`, ...) and answers `GET /counts` with them as text, so the load script can
//! check that the null app makes the same sidecar calls as the host. One thread: it must cost
//! the shared cores as little as possible. It stops by itself after `--seconds` (default 600).
//!
//! Usage: `load-sidecar <port> [--seconds N]`. Loopback only.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: load-sidecar <port> [--seconds N]");
    let mut seconds = 600u64;
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|s| s.parse().ok())
                .expect("--seconds N");
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr).await.expect("binding the port");
        let counts: Counts = Arc::default();
        let serve = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let counts = counts.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, counts.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        tokio::select! {
            _ = serve => {}
            _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        }
    });
}

async fn answer(
    req: Request<Incoming>,
    counts: Counts,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Read the body: a client may wait for it to be consumed before reusing the connection.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if path == "/counts" {
        let text: String = counts
            .lock()
            .expect("counts lock")
            .iter()
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect();
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let head: Vec<&str> = path.split('/').take(3).collect();
    let bulk_read = path.starts_with("/v1.0/state/") && path.ends_with("/bulk");
    let key = format!(
        "{method} {}{}",
        head.join("/"),
        if bulk_read { "/*/bulk" } else { "" }
    );
    *counts.lock().expect("counts lock").entry(key).or_default() += 1;
    if bulk_read {
        return Ok(Response::new(Full::new(missing_keys(&body))));
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// daprd's bulk-get answer for keys none of which exist: `[{"key": k}, ...]`.
fn missing_keys(body: &[u8]) -> Bytes {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let keys = request["keys"].as_array().cloned().unwrap_or_default();
    let items: Vec<serde_json::Value> = keys
        .into_iter()
        .map(|key| serde_json::json!({ "key": key }))
        .collect();
    Bytes::from(serde_json::Value::Array(items).to_string())
}
