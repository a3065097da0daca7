//! Tests of the stand-in itself, against a tiny scripted axum app.
//!
//! The app answers `GET /dapr/subscribe` with a scripted status and body, 404 to
//! `/dapr/config`, and every other path from a per-path queue of scripted replies (then a
//! per-path default, then `200` with an empty body). It records every request and the peak
//! number of concurrent requests per `__partition` header.

mod bulk;
mod delivery;
mod sidecar;
mod state;
mod units;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::task::JoinHandle;

use super::{DaprdConfig, FakeDaprd, Resiliency};

/// One request the app received.
#[derive(Clone, Debug)]
pub(super) struct Hit {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

pub(super) fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct Script {
    subscribe: (u16, String),
    queued: HashMap<String, VecDeque<Answer>>,
    defaults: HashMap<String, Answer>,
    hits: Vec<Hit>,
    inflight: HashMap<String, (usize, usize)>,
}

pub(super) struct TestApp {
    pub port: u16,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApp {
    pub async fn start(subscribe_status: u16, subscribe_body: &str) -> TestApp {
        let script = Arc::new(Mutex::new(Script {
            subscribe: (subscribe_status, subscribe_body.to_string()),
            ..Script::default()
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = Router::new().fallback(serve).with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        TestApp { port, script, task }
    }
    /// Queue answers for `path`, used in order before the default.
    pub fn queue(&self, path: &str, answers: impl IntoIterator<Item = Answer>) {
        let mut s = self.script.lock().unwrap();
        s.queued
            .entry(path.to_string())
            .or_default()
            .extend(answers);
    }
    /// The answer for `path` once its queue is empty.
    pub fn always(&self, path: &str, a: Answer) {
        self.script
            .lock()
            .unwrap()
            .defaults
            .insert(path.to_string(), a);
    }
    pub fn hits(&self) -> Vec<Hit> {
        self.script.lock().unwrap().hits.clone()
    }
    pub fn hits_on(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }
    /// Peak concurrent deliveries per partition header.
    pub fn peak_inflight(&self) -> HashMap<String, usize> {
        let s = self.script.lock().unwrap();
        s.inflight
            .iter()
            .map(|(k, (_, max))| (k.clone(), *max))
            .collect()
    }
}

async fn serve(State(script): State<Arc<Mutex<Script>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default()
        .to_vec();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let hit = Hit {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers,
        body,
    };
    let partition = hit.header("__partition").unwrap_or("").to_string();
    let a = {
        let mut s = script.lock().unwrap();
        s.hits.push(hit.clone());
        let slot = s.inflight.entry(partition.clone()).or_default();
        slot.0 += 1;
        slot.1 = slot.1.max(slot.0);
        match (hit.method.as_str(), hit.path.as_str()) {
            ("GET", "/dapr/subscribe") => answer(s.subscribe.0, &s.subscribe.1.clone()),
            (_, "/dapr/subscribe") => answer(405, ""),
            (_, "/dapr/config") => answer(404, ""),
            (_, p) => {
                let queued = s.queued.get_mut(p).and_then(VecDeque::pop_front);
                queued
                    .or_else(|| s.defaults.get(p).cloned())
                    .unwrap_or_else(|| answer(200, ""))
            }
        }
    };
    tokio::time::sleep(a.delay).await;
    if let Some(slot) = script.lock().unwrap().inflight.get_mut(&partition) {
        slot.0 -= 1;
    }
    let mut resp = Response::new(Body::from(a.body));
    *resp.status_mut() = axum::http::StatusCode::from_u16(a.status).unwrap();
    resp
}

/// A fast config: one attempt, 10 ms between retries, one partition.
pub(super) fn config(app_port: u16) -> DaprdConfig {
    DaprdConfig {
        app_port,
        partitions: 1,
        resiliency: Resiliency {
            max_retries: 0,
            retry_interval: Duration::from_millis(10),
            timeout: None,
        },
        ..DaprdConfig::default()
    }
}

/// `[{"pubsubname":"kafka-pubsub","topic":...,"route":...}]` plus extra fields.
pub(super) fn sub_json(topic: &str, route: &str, extra: serde_json::Value) -> String {
    let mut o = serde_json::json!({"pubsubname": "kafka-pubsub", "topic": topic, "route": route});
    if let (Some(o), Some(e)) = (o.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::json!([o]).to_string()
}

/// App + stand-in, connected.
pub(super) async fn connected(
    subs: &str,
    tweak: impl FnOnce(&mut DaprdConfig),
) -> (FakeDaprd, TestApp) {
    let app = TestApp::start(200, subs).await;
    let mut cfg = config(app.port);
    tweak(&mut cfg);
    let d = FakeDaprd::start(cfg).await;
    d.connect_app().await.expect("subscriptions");
    (d, app)
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub(super) const WAIT: Duration = Duration::from_secs(5);
