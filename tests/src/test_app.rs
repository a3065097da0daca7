//! A recording Dapr app: what a sidecar delivers to, for tests that check the sidecar's side of
//! dapr-contract.md §1-§4.
//!
//! Contract:
//! - Listens on a free loopback port. `GET /dapr/subscribe` answers the JSON the test gave
//!   (any JSON, so tests can send rules, rawPayload, bulkSubscribe, deadLetterTopic, or a
//!   malformed list); each fetch is counted with its headers.
//! - Every other `POST` is a delivery: recorded (path, lowercased headers, body as JSON) and
//!   answered per the script: first the queued answers, one per delivery, then the answer
//!   function if set, else the default (`SUCCESS`).
//! - A bulk delivery (`{"entries": [...]}`) answered with [`Answer::Status`] gets that status
//!   for every entry; [`Answer::Bulk`] picks one per entry (or leaves an entry out).
//! - Anything else (e.g. daprd's `GET /dapr/config`) is 404 and not recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// One entry's status in a bulk answer; `None` leaves the entry out of `statuses`.
pub type EntryStatus = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// How the app answers one delivery.
#[derive(Clone)]
pub enum Answer {
    /// 200 + `{"status": <s>}` (every entry gets `<s>` if the delivery is bulk).
    Status(String),
    /// This HTTP status, empty body.
    Http(u16),
    /// 200 + `{"statuses": [...]}`, one per entry as the function says.
    Bulk(EntryStatus),
}

impl Answer {
    pub fn success() -> Answer {
        Answer::Status("SUCCESS".into())
    }
    pub fn retry() -> Answer {
        Answer::Status("RETRY".into())
    }
    pub fn drop_it() -> Answer {
        Answer::Status("DROP".into())
    }
    pub fn bulk(f: impl Fn(&Value) -> Option<String> + Send + Sync + 'static) -> Answer {
        Answer::Bulk(Arc::new(f))
    }
}

/// One delivery as the app saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    /// Lowercased names; the last value of a repeated header.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Null` if it was not JSON).
    pub body: Value,
    pub raw: Bytes,
    /// When it arrived, from the app's start.
    pub at: Duration,
}

impl Delivery {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    /// A bulk delivery's entries (empty for a single one).
    pub fn entries(&self) -> Vec<Value> {
        self.body["entries"].as_array().cloned().unwrap_or_default()
    }
}

type AnswerFn = Arc<dyn Fn(&Delivery) -> Answer + Send + Sync>;

struct Script {
    queued: VecDeque<Answer>,
    function: Option<AnswerFn>,
    default: Answer,
}

struct Shared {
    subscribe: Value,
    subscribe_fetches: Mutex<Vec<HashMap<String, String>>>,
    deliveries: Mutex<Vec<Delivery>>,
    script: Mutex<Script>,
    started: Instant,
}

/// The running app; stops when dropped.
pub struct TestApp {
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl TestApp {
    /// Starts the app; `subscribe` is the body of `GET /dapr/subscribe`.
    pub async fn start(subscribe: Value) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test app");
        let port = listener.local_addr().expect("the app's address").port();
        let shared = Arc::new(Shared {
            subscribe,
            subscribe_fetches: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            script: Mutex::new(Script {
                queued: VecDeque::new(),
                function: None,
                default: Answer::success(),
            }),
            started: Instant::now(),
        });
        let state = shared.clone();
        let router = Router::new().fallback(any(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = state.clone();
                async move { handle(&shared, method, uri, headers, body) }
            },
        ));
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { cancelled.cancelled().await })
                .await;
        });
        TestApp {
            port,
            base: format!("http://127.0.0.1:{port}"),
            shared,
            stop,
        }
    }

    /// The next deliveries get these answers, one each, before the function or default.
    pub fn queue(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().queued.extend(answers);
    }

    /// Answers every delivery (once the queue is empty) with `f`.
    pub fn answer_with(&self, f: impl Fn(&Delivery) -> Answer + Send + Sync + 'static) {
        self.shared.script.lock().unwrap().function = Some(Arc::new(f));
    }

    /// The answer when nothing else applies (initially `SUCCESS`).
    pub fn set_default(&self, answer: Answer) {
        self.shared.script.lock().unwrap().default = answer;
    }

    /// Every delivery so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The headers of each `GET /dapr/subscribe` so far.
    pub fn subscribe_fetches(&self) -> Vec<HashMap<String, String>> {
        self.shared.subscribe_fetches.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for the deliveries so far, and returns them.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let log = || format!("{:#?}", self.deliveries());
        crate::wait::until(timeout, Duration::from_millis(25), log, async || {
            let deliveries = self.deliveries();
            done(&deliveries)
                .then_some(deliveries)
                .ok_or_else(|| format!("test app: {what}"))
        })
        .await
    }

    /// Waits (bounded) for at least `n` deliveries on `path`, and returns those.
    pub async fn wait_on(&self, path: &str, n: usize, timeout: Duration) -> Vec<Delivery> {
        let what = format!("{n} deliveries on {path}");
        let all = self
            .wait_for(timeout, &what, |d| {
                d.iter().filter(|x| x.path == path).count() >= n
            })
            .await;
        all.into_iter().filter(|x| x.path == path).collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn handle(shared: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if uri.path() == "/dapr/subscribe" && method == Method::GET {
        shared.subscribe_fetches.lock().unwrap().push(headers);
        return axum::Json(shared.subscribe.clone()).into_response();
    }
    if method != Method::POST {
        return StatusCode::NOT_FOUND.into_response();
    }
    let delivery = Delivery {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body,
        at: shared.started.elapsed(),
    };
    let answer = {
        let mut script = shared.script.lock().unwrap();
        match script.queued.pop_front() {
            Some(a) => a,
            None => match &script.function {
                Some(f) => f(&delivery),
                None => script.default.clone(),
            },
        }
    };
    let response = render(&answer, &delivery);
    shared.deliveries.lock().unwrap().push(delivery);
    response
}

fn render(answer: &Answer, delivery: &Delivery) -> Response {
    let bulk = delivery.body.get("entries").is_some();
    let per_entry = |f: &dyn Fn(&Value) -> Option<String>| {
        let statuses: Vec<Value> = delivery
            .entries()
            .iter()
            .filter_map(|e| f(e).map(|s| json!({"entryId": e["entryId"], "status": s})))
            .collect();
        axum::Json(json!({ "statuses": statuses })).into_response()
    };
    match answer {
        Answer::Http(code) => StatusCode::from_u16(*code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Answer::Status(s) if bulk => per_entry(&|_| Some(s.clone())),
        Answer::Status(s) => axum::Json(json!({ "status": s })).into_response(),
        Answer::Bulk(f) => per_entry(f.as_ref()),
    }
}
