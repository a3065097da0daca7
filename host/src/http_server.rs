//! The HTTP listener of `serve` and `sidecar`: axum's router on hyper's HTTP/1.1 server, with
//! the bounds `axum::serve` cannot set.
//!
//! Contract of [`serve`]:
//! - a client gets `--header-read-timeout-ms` to send a request's head, then the connection is
//!   closed (a slowloris client holds one socket for that long, not forever); a head larger
//!   than `--max-header-bytes` gets 431; bodies are bounded per route (`http_limits.rs`), which
//!   find the limits as a request extension put there by this listener;
//! - every connection is served on its own task, so one slow or hostile client never delays
//!   another's delivery;
//! - when `shutdown` is cancelled: stop accepting, let in-flight requests finish (idle
//!   keep-alive connections are closed), then return; the caller bounds the wait.
//!
//! HTTP/1.1 only: daprd's app channel and the Dapr SDKs' HTTP clients speak it, and the
//! header-read timeout is an HTTP/1 setting.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::HttpLimits;

/// Serves `router` on `listener` until `shutdown`, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let router = router.layer(axum::Extension(limits));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        // The read buffer never needs more than one head; body bytes stream through it.
        .max_buf_size(limits.max_header_bytes.max(8 << 10) * 2);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(|request: Request<hyper::body::Incoming>| {
                request.map(axum::body::Body::new)
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, malformed head): hyper has answered
            // what could be answered; nothing to do but note it.
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
