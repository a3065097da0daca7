//! A daprd stand-in for the end-to-end tests: in-process, loopback only, written from
//! `shared/reference/dapr-contract.md` (Dapr's own source), because Dapr cannot be installed
//! here.
//!
//! What it owns: one sidecar HTTP port (the app's `DAPR_HTTP_PORT`), an in-memory Kafka-like
//! broker (`pubsub.kafka` flavour), an in-memory Redis-flavoured state store, the app channel
//! (subscription fetch, deliveries, bulk deliveries) and a journal of everything it did.
//!
//! What it promises, by contract section:
//! - §1 startup: `/v1.0/healthz/outbound` is 204 at once; `/v1.0/healthz` is 500 until
//!   [`FakeDaprd::connect_app`] saw the app port open; then `GET /dapr/config` (ignored) and one
//!   `GET /dapr/subscribe` (`subscribe`), then deliveries start (`deliver`, `bulk`).
//! - §2/§2.1 envelopes and delivery requests (`envelope`, `app`); §3 response handling,
//!   inbound resiliency, DLQ and Kafka's endless component retry (`deliver`); §4 bulk
//!   (`bulk`); §5 the sidecar API: publish (`publish`), state (`state`), token and health
//!   (`api`). Fault injection is in `faults`.
//!
//! How it fails: never by panicking on what the app sends. Odd answers are classified and
//! journaled ([`DeliveryAttempt`], [`Settled`]); tests wait on the journal with
//! [`FakeDaprd::wait_until`], which always has a deadline. Every background loop ends on
//! [`FakeDaprd::stop`] or when the handle is dropped.
//!
//! Known gaps (not reproduced): tracing (spans, `traceparent` generation: tracing is "off"),
//! app health probes (§6), declarative subscriptions, bulk publish, state bulk/transaction
//! (these answer 501 `ERR_STANDIN_UNSUPPORTED`), `matching.httpStatusCodes`, circuit breakers,
//! exponential retry policies, `escapeHeaders`, `--app-max-concurrency`, binary-mode
//! (`ce_*`) messages, protobuf CloudEvents, and CEL beyond the subset in `cel`.

mod api;
mod app;
mod broker;
mod bulk;
mod bulk_reply;
mod cel;
mod config;
mod deliver;
mod envelope;
mod faults;
mod gojson;
mod journal;
mod publish;
mod redis_value;
mod state;
mod subscribe;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use broker::Record;
pub use config::{DaprdConfig, Resiliency};
pub use faults::Faults;
pub use journal::{ComponentRetry, DeliveryAttempt, EntryStatus, Outcome, Settled, Settlement};
pub use subscribe::{BulkSubscribe, Rule, Subscription};

/// Shared state of one stand-in.
pub(crate) struct Inner {
    pub(crate) cfg: DaprdConfig,
    pub(crate) broker: broker::Broker,
    pub(crate) state: state::Store,
    pub(crate) faults: Faults,
    pub(crate) journal: journal::Journal,
    pub(crate) client: reqwest::Client,
    pub(crate) shutdown: CancellationToken,
    app_ready: AtomicBool,
    subscriptions: tokio::sync::Mutex<Option<Result<Vec<Subscription>, String>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    pub(crate) fn app_ready(&self) -> bool {
        self.app_ready.load(Ordering::SeqCst)
    }
}

/// The running stand-in. Dropping it stops everything too; `stop` also waits for the loops.
pub struct FakeDaprd {
    inner: Arc<Inner>,
    port: u16,
    server: Option<JoinHandle<()>>,
}

/// How long `connect_app` waits for the app port (real daprd waits for ever).
const APP_PORT_WAIT: Duration = Duration::from_secs(30);

impl FakeDaprd {
    /// Bind 127.0.0.1:0 and serve the sidecar API.
    pub async fn start(cfg: DaprdConfig) -> FakeDaprd {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for the daprd stand-in");
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .expect("local address of a bound listener");
        let inner = Arc::new(Inner {
            broker: broker::Broker::new(cfg.partitions),
            cfg,
            state: state::Store::default(),
            faults: Faults::default(),
            journal: journal::Journal::default(),
            client: app::client(),
            shutdown: CancellationToken::new(),
            app_ready: AtomicBool::new(false),
            subscriptions: tokio::sync::Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .fallback(api::dispatch)
            .with_state(inner.clone());
        let gated = api::GatedListener {
            inner: inner.clone(),
            listener: Some(listener),
            port,
        };
        let stop = inner.shutdown.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(gated, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        FakeDaprd {
            inner,
            port,
            server: Some(server),
        }
    }

    /// The sidecar's HTTP port (the app's `DAPR_HTTP_PORT`).
    pub fn http_port(&self) -> u16 {
        self.port
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &DaprdConfig {
        &self.inner.cfg
    }

    /// §1: wait for the app port, fetch `GET /dapr/subscribe` once, start delivering.
    /// Returns the subscriptions as daprd decoded them (routes built, route-less ones dropped;
    /// unknown pubsubs are listed but not started, and a later duplicate (pubsub, topic) wins),
    /// or the error that made daprd start none. Later calls return the first result.
    pub async fn connect_app(&self) -> Result<Vec<Subscription>, String> {
        let inner = &self.inner;
        let mut cached = inner.subscriptions.lock().await;
        if let Some(r) = cached.as_ref() {
            return r.clone();
        }
        let deadline = tokio::time::Instant::now() + APP_PORT_WAIT;
        while TcpStream::connect(("127.0.0.1", inner.cfg.app_port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() >= deadline || inner.shutdown.is_cancelled() {
                return Err(format!(
                    "app port {} did not open within {APP_PORT_WAIT:?}",
                    inner.cfg.app_port
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        inner.app_ready.store(true, Ordering::SeqCst);
        let mut headers = vec![("dapr-app-id".to_string(), inner.cfg.app_id.clone())];
        if let Some(t) = &inner.cfg.app_api_token {
            headers.push(("dapr-api-token".into(), t.clone()));
        }
        // daprd reads the app config first and ignores anything but a 200.
        let config_timeout = Some(Duration::from_secs(5));
        let _ = app::call(
            inner,
            reqwest::Method::GET,
            "/dapr/config",
            &headers,
            Vec::new(),
            config_timeout,
        )
        .await;
        let result = if inner.cfg.pubsubs.is_empty() {
            Ok(Vec::new())
        } else {
            subscribe::fetch(inner).await
        };
        if let Ok(subs) = &result {
            self.start_subscriptions(subs);
        }
        *cached = Some(result.clone());
        result
    }

    /// One subscription per (pubsub, topic), the last one winning; unknown pubsubs ignored.
    fn start_subscriptions(&self, subs: &[Subscription]) {
        let mut active: HashMap<(String, String), Arc<Subscription>> = HashMap::new();
        for s in subs
            .iter()
            .filter(|s| self.inner.cfg.pubsubs.contains(&s.pubsubname))
        {
            active.insert((s.pubsubname.clone(), s.topic.clone()), Arc::new(s.clone()));
        }
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for sub in active.into_values() {
            for p in 0..self.inner.broker.partitions() {
                tasks.push(tokio::spawn(deliver::run_partition(
                    self.inner.clone(),
                    sub.clone(),
                    p,
                )));
            }
        }
    }

    /// The result of `connect_app`, if it ran.
    pub async fn subscriptions(&self) -> Option<Result<Vec<Subscription>, String>> {
        self.inner.subscriptions.lock().await.clone()
    }

    /// What `POST /v1.0/publish/{pubsub}/{topic}` with this Content-Type, body and
    /// `metadata.partitionKey` does; returns daprd's status code.
    pub async fn publish_json(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &str,
        body: &[u8],
        partition_key: Option<&str>,
    ) -> StatusCode {
        let md = partition_key.map(|k| ("partitionKey".to_string(), k.to_string()));
        self.publish_with_metadata(pubsub, topic, content_type, body, md.into_iter().collect())
            .await
    }

    /// Like `publish_json`, with any `metadata.*` (e.g. `rawPayload`, `ttlInSeconds`,
    /// `cloudevent.id`).
    pub async fn publish_with_metadata(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &str,
        body: &[u8],
        metadata: BTreeMap<String, String>,
    ) -> StatusCode {
        publish::publish(&self.inner, pubsub, topic, content_type, body, metadata).status
    }

    /// Records on `topic` (any pubsub; dead-letter topics included), in append order.
    pub fn topic(&self, topic: &str) -> Vec<Record> {
        self.inner.broker.topic(topic)
    }

    /// Every delivery attempt to the app so far, in order.
    pub fn deliveries(&self) -> Vec<DeliveryAttempt> {
        self.inner.journal.attempts()
    }

    /// Every message acked to the broker so far, in order.
    pub fn settled(&self) -> Vec<Settled> {
        self.inner.journal.settled()
    }

    /// Every time a handler failed back to the Kafka component (which then re-runs it).
    pub fn component_retries(&self) -> Vec<ComponentRetry> {
        self.inner.journal.component_retries()
    }

    /// The stored value (as JSON) and ETag of `key` in `store` (the app's key, without the
    /// `<appId>||` prefix daprd adds).
    pub fn state(&self, store: &str, key: &str) -> Option<(serde_json::Value, String)> {
        self.inner
            .state
            .peek(store, &format!("{}||{}", self.inner.cfg.app_id, key))
    }

    /// Runtime fault injection.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Wait until `f` holds, re-checking on every journal or broker change; `Err` with a
    /// summary of what happened when `timeout` passes first.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        f: impl Fn(&FakeDaprd) -> bool,
    ) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.journal.changed.notified();
            if f(self) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.report(what, timeout));
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    fn report(&self, what: &str, timeout: Duration) -> String {
        let attempts = self.deliveries();
        let mut msg = format!(
            "timed out after {timeout:?} waiting for {what}; {} delivery attempts, {} settled",
            attempts.len(),
            self.settled().len()
        );
        if let Some(r) = self.component_retries().last() {
            msg.push_str(&format!(
                "\n  last component retry: {}[{}]@{:?} round {}: {}",
                r.topic, r.partition, r.offsets, r.round, r.reason
            ));
        }
        for a in attempts.iter().rev().take(5).rev() {
            msg.push_str(&format!(
                "\n  #{} {} {}[{}]@{:?} attempt {} round {} -> {:?} {:?}",
                a.seq,
                a.route,
                a.topic,
                a.partition,
                a.offsets,
                a.attempt,
                a.round,
                a.status,
                a.outcome
            ));
        }
        msg
    }

    /// Stop serving and end every loop (waits up to 2 s for them, then aborts).
    pub async fn stop(mut self) {
        self.inner.shutdown.cancel();
        let mut handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        handles.extend(self.server.take());
        for mut h in handles {
            if tokio::time::timeout(Duration::from_secs(2), &mut h)
                .await
                .is_err()
            {
                h.abort();
            }
        }
    }
}

impl Drop for FakeDaprd {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        for h in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            h.abort();
        }
        if let Some(h) = self.server.take() {
            h.abort();
        }
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
