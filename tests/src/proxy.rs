//! A fault-injecting HTTP/1.1 proxy for one hop the tests want to break: host → sidecar, or
//! sidecar → app.
//!
//! Contract:
//! - Every request (method, path + query, headers, body) is forwarded to the upstream base URL
//!   and its answer (status, headers, body) sent back, unchanged but for hop-by-hop headers.
//! - Faults are armed per route (a path prefix such as `/v1.0/state`) and each lasts for the
//!   next N matching requests: answer a status without forwarding, delay then forward, or close
//!   the connection without answering. Rules are checked in the order they were armed; the
//!   first one with requests left is used up by one.
//! - [`Proxy::refuse`] stops listening (new connections get "connection refused") and cuts the
//!   open ones, until it is turned off again: a hop that is down, not one that misbehaves.
//! - The journal holds one [`Exchange`] per request, in completion order, with what the client
//!   got: a status and body, or `Dropped` (also when the upstream itself could not be reached,
//!   which the client then sees as a closed connection, as it would without the proxy).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What an armed rule does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer this status (empty body) without forwarding.
    Status(u16),
    /// Wait this long, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

/// What the client got back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Status(u16),
    Dropped,
}

/// One request through the proxy, as the tests assert on it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Path and query, e.g. `/v1.0/state/statestore/k?consistency=strong`.
    pub path: String,
    /// Lowercased names; the last value of a repeated header.
    pub request_headers: HashMap<String, String>,
    pub request_body: Bytes,
    pub outcome: Outcome,
    /// The answer's body (empty when dropped).
    pub response_body: Bytes,
    /// The fault that shaped this exchange, if any.
    pub fault: Option<Fault>,
    /// When the request arrived, from the proxy's start.
    pub at: Duration,
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Status(s) => Some(s),
            Outcome::Dropped => None,
        }
    }

    /// The answer body as JSON (`Null` if it is not JSON).
    pub fn response_json(&self) -> Value {
        serde_json::from_slice(&self.response_body).unwrap_or(Value::Null)
    }

    /// The request body as JSON (`Null` if it is not JSON).
    pub fn request_json(&self) -> Value {
        serde_json::from_slice(&self.request_body).unwrap_or(Value::Null)
    }
}

struct Rule {
    prefix: String,
    fault: Fault,
    remaining: usize,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    journal: Mutex<Vec<Exchange>>,
    /// What the test asked for.
    refusing: watch::Sender<bool>,
    /// What the accept loop has done about it (so `refuse` can wait for it).
    listening: watch::Sender<bool>,
    started: Instant,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// The error a service returns to make hyper close the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the proxy")
    }
}

impl std::error::Error for DropConnection {}

/// Headers that describe one connection, not the message: never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (e.g.
    /// `http://127.0.0.1:3500`, no trailing slash needed).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            // No pool: a dropped or refused hop must not leave half-dead connections behind,
            // and redirects are the client's business, not the proxy's.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain-HTTP reqwest client always builds"),
            rules: Mutex::new(Vec::new()),
            journal: Mutex::new(Vec::new()),
            refusing: watch::channel(false).0,
            listening: watch::channel(true).0,
            started: Instant::now(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(shared.clone(), listener, addr, stop.clone()));
        Proxy {
            port: addr.port(),
            base: format!("http://127.0.0.1:{}", addr.port()),
            shared,
            stop,
        }
    }

    /// Arms `fault` for the next `n` requests whose path starts with `route`.
    pub fn arm(&self, route: &str, n: usize, fault: Fault) {
        self.shared.rules.lock().unwrap().push(Rule {
            prefix: route.to_string(),
            fault,
            remaining: n,
        });
    }

    /// The next `n` requests on `route` get `status` without reaching the upstream.
    pub fn fail_next(&self, route: &str, n: usize, status: u16) {
        self.arm(route, n, Fault::Status(status));
    }

    /// The next `n` requests on `route` are held for `by`, then forwarded.
    pub fn delay_next(&self, route: &str, n: usize, by: Duration) {
        self.arm(route, n, Fault::Delay(by));
    }

    /// The next `n` requests on `route` see their connection closed without an answer.
    pub fn drop_next(&self, route: &str, n: usize) {
        self.arm(route, n, Fault::Drop);
    }

    /// Disarms every rule (used-up ones included).
    pub fn clear_faults(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// `true`: stop listening and cut open connections; `false`: listen again on the same port.
    /// Returns once the proxy has done it (bounded: panics after 5 s).
    pub async fn refuse(&self, on: bool) {
        let mut listening = self.shared.listening.subscribe();
        self.shared.refusing.send_replace(on);
        let wait = listening.wait_for(|l| *l != on);
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the proxy did not switch listening within 5 s")
            .expect("the proxy's accept loop is running");
    }

    /// Every exchange so far, in completion order.
    pub fn journal(&self) -> Vec<Exchange> {
        self.shared.journal.lock().unwrap().clone()
    }

    /// The exchanges whose path starts with `route`.
    pub fn journal_for(&self, route: &str) -> Vec<Exchange> {
        let journal = self.shared.journal.lock().unwrap();
        journal
            .iter()
            .filter(|x| x.path.starts_with(route))
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `done` holds for the journal, and returns it.
    pub async fn wait_journal(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Exchange]) -> bool,
    ) -> Vec<Exchange> {
        let log = || format!("{:#?}", self.journal());
        crate::wait::until(timeout, Duration::from_millis(25), log, async || {
            let journal = self.journal();
            done(&journal)
                .then_some(journal)
                .ok_or_else(|| format!("proxy journal: {what}"))
        })
        .await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    stop: CancellationToken,
) {
    let mut listener = Some(listener);
    // Cancelled when refusing starts, so open keep-alive connections die with the listener.
    let mut conns = stop.child_token();
    let mut refusing = shared.refusing.subscribe();
    loop {
        let refuse = *refusing.borrow_and_update();
        if refuse && listener.is_some() {
            listener = None;
            conns.cancel();
            conns = stop.child_token();
        } else if !refuse && listener.is_none() {
            listener = Some(rebind(addr).await);
        }
        shared.listening.send_replace(listener.is_some());
        let accepted = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = refusing.changed() => if changed.is_err() { return },
            accepted = accepted => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(shared.clone(), stream, conns.clone()));
                }
            }
        }
    }
}

/// Binds the proxy's port again (bounded: the port was ours a moment ago).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the proxy could not listen on {addr} again");
}

async fn connection(shared: Arc<Shared>, stream: tokio::net::TcpStream, cut: CancellationToken) {
    let service = hyper::service::service_fn(move |req| exchange(shared.clone(), req));
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket.
    tokio::select! {
        _ = conn => {}
        _ = cut.cancelled() => {}
    }
}

async fn exchange(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let at = shared.started.elapsed();
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let request_body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let fault = take_fault(&shared, &path);
    let answer = match &fault {
        Some(Fault::Status(s)) => Ok((*s, reqwest::header::HeaderMap::new(), Bytes::new())),
        Some(Fault::Drop) => Err(()),
        Some(Fault::Delay(by)) => {
            tokio::time::sleep(*by).await;
            forward(&shared, &parts, &path, request_body.clone()).await
        }
        None => forward(&shared, &parts, &path, request_body.clone()).await,
    };
    let (outcome, response_body) = match &answer {
        Ok((status, _, body)) => (Outcome::Status(*status), body.clone()),
        Err(()) => (Outcome::Dropped, Bytes::new()),
    };
    shared.journal.lock().unwrap().push(Exchange {
        method: parts.method.to_string(),
        path,
        request_headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        request_body,
        outcome,
        response_body,
        fault,
        at,
    });
    let (status, headers, body) = answer.map_err(|()| DropConnection)?;
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            resp.headers_mut().append(name, value.clone());
        }
    }
    Ok(resp)
}

/// Uses up one request of the first armed rule matching `path`.
fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules
        .iter_mut()
        .find(|r| r.remaining > 0 && path.starts_with(&r.prefix))?;
    rule.remaining -= 1;
    Some(rule.fault.clone())
}

/// Sends the request upstream; `Err` if the upstream could not be reached or answered.
async fn forward(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: Bytes,
) -> Result<(u16, reqwest::header::HeaderMap, Bytes), ()> {
    let mut req = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            req = req.header(name, value);
        }
    }
    let resp = req.send().await.map_err(|_| ())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|_| ())?;
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests;
