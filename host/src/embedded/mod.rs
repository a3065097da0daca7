//! The embedded sidecar: daprd's HTTP contract (docs/dapr-contract.md), served from this
//! process and durable in one redb file, for machines without Dapr. Not a mock: what it accepts
//! survives `kill -9` and is delivered after a restart.
//!
//! What it owns:
//! - one pubsub component (`cfg.pubsub_name`) behaving like `pubsub.kafka`: per-topic logs split
//!   into `cfg.partitions` virtual partitions, one consumer group (`app_id`), in-order
//!   at-least-once delivery per partition;
//! - one state store (`cfg.state_store`) behaving like `state.redis` (etags "1", "2", ...);
//! - the sidecar API routes ([`Embedded::routes`]), the delivery loop ([`Embedded::run_delivery`])
//!   and the `topics tail` client ([`tail`]).
//!
//! What it promises:
//! - Every accepted write (publish, state save, consumer commit) is a committed, fsynced redb
//!   transaction before the HTTP answer or the `Result` returns. All redb I/O runs on tokio's
//!   blocking pool, never on the async executor.
//! - Publish writes daprd's envelope (`envelope.rs`): same fields, same rules, compact with
//!   sorted keys like Go's `json.Marshal`.
//! - Request bodies are decoded by serde_json only, with Go's case-insensitive field names
//!   (`go_decode.rs`), so Dapr's SDKs work as they do against daprd.
//! - Partition = `metadata.partitionNumber`, else FNV-1a of `metadata.partitionKey` (sarama's
//!   hash, stable across restarts), else 0: keyless publishes keep one total order.
//! - Offsets are a per-topic sequence from 0 (shared by the topic's partitions; increasing within
//!   each), so `/v1.0-embedded/topics` and `tail` page one sequence; `__offset` carries it.
//! - A new consumer group starts at the oldest record (`initialOffset: oldest`).
//! - Delivery answers are interpreted per §3 (`deliver.rs`). A RETRY (or error) is redelivered
//!   with exponential backoff from 100 ms up to `cfg.redelivery_backoff`, blocking its
//!   partition, at most `cfg.max_redeliveries` times (daprd's resiliency `maxRetries`; 0 =
//!   forever), then it goes to the dead-letter topic. DROP/404 go to the subscription's
//!   dead-letter topic (same bytes, metadata and partition) atomically with the commit.
//!
//! How it fails: [`Embedded::open`] returns an [`EmbeddedError`] saying what to do (data dir
//! locked by another host, partition count changed, ...). Requests fail as daprd's do (status +
//! `errorCode`); in-process callers get a [`SidecarError`] classed by what to do next.
//!
//! Growth is bounded: state TTLs and topic retention (`retention.rs`). Jobs (`jobs.rs`,
//! `scheduler.rs`): daprd's Jobs API, durable, fired at the app's `POST /job/{name}`.
//!
//! Not implemented: CEL beyond `event.<field> ==|!= "<string>"`, and tracing.
//! API tokens are a layer the caller puts around [`Embedded::routes`] (`serve`, `sidecar`).

mod api;
mod api_metadata;
mod api_state;
mod app_channel;
mod bulk;
mod deliver;
mod dispatch;
pub(crate) mod envelope;
mod error;
mod go_decode;
mod group_commit;
mod jobs;
mod retention;
mod scheduler;
mod sidecar_bulk;
mod staging;
mod state;
mod store;
mod subscribe;
mod tail;
mod topics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::sidecar::{
    BoxFuture, Concurrency, PublishRequest, SaveItem, SidecarApi, SidecarError, StateEntry,
};
pub use app_channel::{AppChannel, HttpApp};
use envelope::{Envelope, Metadata};
pub use error::EmbeddedError;
use error::{ApiError, StoreError};
use group_commit::GroupCommit;
use staging::{StageRefusal, StagedJob, Staging};
use state::{SaveOp, StateOp};
use store::{Record, Store};
use subscribe::Subscription;
pub(crate) use tail::encode_path;
pub use tail::tail;

/// How the embedded sidecar is set up. [`EmbeddedConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Directory of the redb file `task-events.redb` (created if missing).
    pub data_dir: PathBuf,
    /// `source` of envelopes built here, and the consumer group.
    pub app_id: String,
    /// The one pubsub component, default "kafka-pubsub".
    pub pubsub_name: String,
    /// The one state store, default "statestore".
    pub state_store: String,
    /// Virtual partitions per topic, default 4. Fixed for the life of a data dir.
    pub partitions: u32,
    /// Longest wait between redeliveries of a message the app asked to retry (default 5 s,
    /// pubsub.kafka's retry interval).
    pub redelivery_backoff: Duration,
    /// Topic records older than this are deleted once consumed (default 7 days; `retention.rs`).
    pub retention: Duration,
    /// Redeliveries of a record the app keeps answering RETRY before it goes to the
    /// dead-letter topic (daprd's resiliency `maxRetries`); 0: forever.
    pub max_redeliveries: u32,
}

impl EmbeddedConfig {
    pub fn new(data_dir: impl Into<PathBuf>, app_id: impl Into<String>) -> EmbeddedConfig {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            app_id: app_id.into(),
            pubsub_name: "kafka-pubsub".into(),
            state_store: "statestore".into(),
            partitions: 4,
            redelivery_backoff: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_redeliveries: 100,
        }
    }
}

/// The running embedded sidecar; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: EmbeddedConfig,
    store: Store,
    /// Per-topic "last appended offset" signals: consumers and long polls wait on these
    /// instead of polling the file.
    watchers: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// What the app subscribed to, once its `/dapr/subscribe` was read (for `/v1.0/metadata`).
    subscriptions: Mutex<Vec<Subscription>>,
    /// Set once the app's subscriptions were read: `/v1.0/healthz` answers 204 from then on,
    /// as daprd's does once its app channel is up.
    ready: std::sync::atomic::AtomicBool,
    /// Wakes the job scheduler when a job is scheduled (`scheduler.rs`).
    scheduler: tokio::sync::Notify,
    /// Publishes waiting for the next group transaction (`group_commit.rs`).
    group: Arc<GroupCommit>,
}

impl AsRef<Store> for Inner {
    fn as_ref(&self) -> &Store {
        &self.store
    }
}

impl Embedded {
    /// Opens (or creates) the data dir. Blocks on file I/O: call it at startup.
    pub fn open(cfg: EmbeddedConfig) -> Result<Embedded, EmbeddedError> {
        if cfg.partitions == 0 {
            return Err(EmbeddedError::Config(
                "partitions must be at least 1".into(),
            ));
        }
        for (what, v) in [
            ("app id", &cfg.app_id),
            ("pubsub name", &cfg.pubsub_name),
            ("state store name", &cfg.state_store),
        ] {
            if v.is_empty() {
                return Err(EmbeddedError::Config(format!(
                    "the {what} must not be empty"
                )));
            }
        }
        let store = Store::open(&cfg.data_dir, cfg.partitions)?;
        tracing::info!(file = %store.path.display(), pubsub = %cfg.pubsub_name,
            state_store = %cfg.state_store, partitions = cfg.partitions, "embedded sidecar opened");
        Ok(Embedded {
            inner: Arc::new(Inner {
                cfg,
                store,
                watchers: Mutex::new(HashMap::new()),
                subscriptions: Mutex::new(Vec::new()),
                ready: std::sync::atomic::AtomicBool::new(false),
                scheduler: tokio::sync::Notify::new(),
                group: Arc::default(),
            }),
        })
    }

    pub fn config(&self) -> &EmbeddedConfig {
        &self.inner.cfg
    }

    /// The sidecar API (publish, state, health, `/v1.0-embedded/topics`), to merge into the
    /// app router so one port serves both, as the user's curl commands expect.
    pub fn routes(&self) -> axum::Router {
        api::routes(self.clone())
    }

    /// Starts delivering: waits for `app`, fetches its `GET /dapr/subscribe` (once, as daprd
    /// does), then runs one consumer per (subscribed topic, partition). Returns when `shutdown`
    /// is cancelled and the in-flight deliveries have finished.
    pub async fn run_delivery(&self, app: AppChannel, shutdown: CancellationToken) {
        let retention = tokio::spawn({
            let (e, shutdown) = (self.clone(), shutdown.clone());
            async move { e.run_retention(shutdown).await }
        });
        let scheduler = tokio::spawn({
            let (e, app, shutdown) = (self.clone(), app.clone(), shutdown.clone());
            async move { e.run_scheduler(app, shutdown).await }
        });
        dispatch::run(self.clone(), app, shutdown).await;
        let _ = retention.await;
        let _ = scheduler.await;
    }

    // ---- shared by the routes, the in-process API and the delivery loop ----

    fn set_subscriptions(&self, subs: &[Subscription]) {
        *self
            .inner
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = subs.to_vec();
        self.inner
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn wake_scheduler(&self) {
        self.inner.scheduler.notify_one();
    }

    fn is_ready(&self) -> bool {
        self.inner.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    fn subscriptions(&self) -> Vec<Subscription> {
        self.inner
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the blocking pool with the store.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner.store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn check_pubsub(&self, pubsub: &str, topic: &str) -> Result<(), ApiError> {
        let nf = |code, msg: String| ApiError::rejected(StatusCode::NOT_FOUND, code, msg);
        if pubsub.is_empty() {
            return Err(nf("ERR_PUBSUB_EMPTY", "pubsub name is empty".into()));
        }
        if pubsub != self.inner.cfg.pubsub_name {
            return Err(nf(
                "ERR_PUBSUB_NOT_FOUND",
                format!(
                    "pubsub {pubsub} is not found (the embedded sidecar has one pubsub: {})",
                    self.inner.cfg.pubsub_name
                ),
            ));
        }
        if topic.is_empty() {
            return Err(nf(
                "ERR_TOPIC_NAME_EMPTY",
                format!("topic is empty in pubsub {pubsub}"),
            ));
        }
        Ok(())
    }

    fn check_store(&self, store: &str) -> Result<(), ApiError> {
        if store != self.inner.cfg.state_store {
            return Err(ApiError::rejected(
                StatusCode::BAD_REQUEST,
                "ERR_STATE_STORE_NOT_FOUND",
                format!(
                    "state store {store} is not found (the embedded sidecar has one state store: {})",
                    self.inner.cfg.state_store
                ),
            ));
        }
        Ok(())
    }

    /// Builds the envelope, picks the partition, appends durably, wakes the topic's consumers.
    /// Returns the record's offset.
    async fn publish_record(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &str,
        body: &[u8],
        metadata: Metadata,
    ) -> Result<u64, ApiError> {
        self.check_pubsub(pubsub, topic)?;
        let rec = self.prepare_record(pubsub, topic, content_type, body, metadata)?;
        let offsets = self.append(topic, vec![rec]).await?;
        Ok(offsets.first().copied().unwrap_or_default())
    }

    /// A bulk publish: every entry or none.
    async fn publish_many(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<api::BulkEntry>,
    ) -> Result<(), ApiError> {
        self.check_pubsub(pubsub, topic)?;
        let recs = entries
            .into_iter()
            .map(|en| self.prepare_record(pubsub, topic, &en.content_type, &en.body, en.metadata))
            .collect::<Result<Vec<_>, _>>()?;
        self.append(topic, recs).await.map(drop)
    }

    fn prepare_record(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &str,
        body: &[u8],
        metadata: Metadata,
    ) -> Result<Record, ApiError> {
        let cfg = &self.inner.cfg;
        let now = chrono::Utc::now();
        let bytes = Envelope {
            app_id: &cfg.app_id,
            pubsub,
            topic,
            content_type,
            metadata: &metadata,
        }
        .build(body, now)?;
        Ok(Record {
            partition: envelope::choose_partition(&metadata, cfg.partitions)?,
            key: metadata.partition_key().map(str::to_string),
            published_at_ms: now.timestamp_millis(),
            metadata: metadata.into_pairs(),
            body: bytes,
        })
    }

    async fn append(&self, topic: &str, recs: Vec<Record>) -> Result<Vec<u64>, ApiError> {
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        let offsets = self
            .inner
            .group
            .append(self.inner.clone(), topic, recs)
            .await
            .map_err(|e| ApiError::storage("ERR_PUBSUB_PUBLISH_MESSAGE", e))?;
        if let Some(last) = offsets.last() {
            self.notify(topic, *last);
        }
        Ok(offsets)
    }

    async fn state_get(&self, store: &str, key: &str) -> Result<Option<(u64, Vec<u8>)>, ApiError> {
        self.check_store(store)?;
        check_key(key)?;
        let (st, k) = (store.to_string(), key.to_string());
        self.blocking(move |s| s.state_get(&st, &k))
            .await
            .map_err(|e| ApiError::storage("ERR_STATE_GET", e))
    }

    /// Applies `ops` atomically; `code` is daprd's error code for this request kind.
    async fn state_apply(
        &self,
        store: &str,
        ops: Vec<StateOp>,
        code: &'static str,
    ) -> Result<(), ApiError> {
        self.check_store(store)?;
        for op in &ops {
            check_key(op.key())?;
        }
        let st = store.to_string();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.store.state_apply(&st, &ops))
            .await
            .map_err(|e| ApiError::storage(code, StoreError::Task(e.to_string())))?
            .map_err(|e| e.into_api(code))
    }

    /// A receiver that changes whenever `topic` gets a record.
    fn watch(&self, topic: &str) -> watch::Receiver<u64> {
        let mut map = self
            .inner
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(topic.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn notify(&self, topic: &str, offset: u64) {
        let map = self
            .inner
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(topic) {
            tx.send_replace(offset);
        }
    }
}

/// daprd stores keys as `<appId>||<key>`, so `||` inside a key is refused; so is an empty key.
fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.contains("||") {
        return Err(ApiError::rejected(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            format!("input key/keyPrefix '{key}' can't be empty or contain '||'"),
        ));
    }
    Ok(())
}

impl Embedded {
    /// A state write of the delivery `staging` belongs to: checked as the store would (etag,
    /// first-write) against the staged and stored state, kept until the delivery commits.
    async fn stage_state(
        &self,
        staging: &Staging,
        store: &str,
        op: StateOp,
    ) -> Result<(), SidecarError> {
        let key = op.key().to_string();
        let stored = match staging.get(store, &key) {
            Some(_) => None, // already met: its base was read then
            None => self
                .state_get(store, &key)
                .await
                .map_err(ApiError::into_sidecar)?,
        };
        let (value, etag, first_write) = match op {
            StateOp::Upsert(op) => {
                let first_write = op.first_write && op.etag.is_none();
                (Some((op.value, op.ttl_secs)), op.etag, first_write)
            }
            StateOp::Delete { etag, .. } => (None, etag, false),
        };
        let etag = match etag.map(|e| e.parse::<u64>().map_err(|_| e)) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                let why =
                    format!("invalid etag {e:?} for key {key:?}: etags of this store are numbers");
                return Err(SidecarError::Refused(why));
            }
        };
        staging
            .write(store, &key, value, etag, first_write, || stored)
            .map_err(|refusal| {
                let why = match refusal {
                    StageRefusal::EtagMismatch => {
                        format!("etag {etag:?} does not match key {key:?}")
                    }
                    StageRefusal::Exists => {
                        format!("key {key:?} exists and the write asked for first-write")
                    }
                };
                SidecarError::Conflict(why)
            })
    }
}

impl SidecarApi for Embedded {
    /// Returns once the record is durable.
    fn publish(&self, req: PublishRequest) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(async move {
            let md = Metadata::from_pairs(req.metadata);
            if let Some(staging) = Staging::current() {
                let staged = self.check_pubsub(&req.pubsub, &req.topic).and_then(|()| {
                    self.prepare_record(&req.pubsub, &req.topic, &req.content_type, &req.body, md)
                });
                return staged
                    .map(|rec| staging.publish(&req.topic, rec))
                    .map_err(ApiError::into_sidecar);
            }
            self.publish_record(&req.pubsub, &req.topic, &req.content_type, &req.body, md)
                .await
                .map(drop)
                .map_err(ApiError::into_sidecar)
        })
    }

    fn get_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StateEntry>, SidecarError>> {
        Box::pin(async move {
            let staging = Staging::current();
            let found = match staging.as_ref().and_then(|s| s.get(store, key)) {
                Some(found) => found,
                None => {
                    let found = self
                        .state_get(store, key)
                        .await
                        .map_err(ApiError::into_sidecar)?;
                    if let Some(staging) = &staging {
                        // A decision rests on it: the commit checks it is still so.
                        staging.saw(store, key, found.clone());
                    }
                    found
                }
            };
            Ok(found.map(|(etag, value)| StateEntry {
                value: Bytes::from(value),
                etag: Some(etag.to_string()),
            }))
        })
    }

    fn save_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let op = StateOp::Upsert(SaveOp::from(SaveItem {
            key: key.to_string(),
            value,
            concurrency,
            ttl,
        }));
        Box::pin(async move {
            if let Some(staging) = Staging::current() {
                return self.stage_state(&staging, store, op).await;
            }
            self.state_apply(store, vec![op], "ERR_STATE_SAVE")
                .await
                .map_err(ApiError::into_sidecar)
        })
    }

    fn delete_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        etag: Option<String>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let op = StateOp::Delete {
            key: key.to_string(),
            etag,
        };
        Box::pin(async move {
            if let Some(staging) = Staging::current() {
                return self.stage_state(&staging, store, op).await;
            }
            self.state_apply(store, vec![op], "ERR_STATE_DELETE")
                .await
                .map_err(ApiError::into_sidecar)
        })
    }

    /// A one-shot job, as `POST /v1.0/jobs/{name}` with `overwrite`.
    fn schedule_job<'a>(
        &'a self,
        name: &'a str,
        due_in: Duration,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let body = crate::sidecar::one_shot_job(due_in, &data);
            let (job, _) =
                jobs::parse_request(name, body.to_string().as_bytes(), chrono::Utc::now())
                    .map_err(ApiError::into_sidecar)?;
            if let Some(staging) = Staging::current() {
                staging.job(StagedJob::Put(job));
                return Ok(());
            }
            self.blocking(move |s| s.put_job(&job, true))
                .await
                .map_err(|e| ApiError::storage("ERR_SCHEDULE_JOB", e).into_sidecar())?;
            self.wake_scheduler();
            Ok(())
        })
    }

    fn delete_job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), SidecarError>> {
        let name = name.to_string();
        Box::pin(async move {
            if let Some(staging) = Staging::current() {
                staging.job(StagedJob::Delete(name));
                return Ok(());
            }
            self.blocking(move |s| s.delete_job(&name))
                .await
                .map(drop)
                .map_err(|e| ApiError::storage("ERR_DELETE_JOB", e).into_sidecar())
        })
    }

    fn get_bulk_state<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<StateEntry>>, SidecarError>> {
        Box::pin(self.bulk_get(store, keys))
    }

    fn save_bulk_state<'a>(
        &'a self,
        store: &'a str,
        items: Vec<SaveItem>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(self.bulk_save(store, items))
    }

    fn publish_bulk(
        &self,
        messages: Vec<PublishRequest>,
    ) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(self.bulk_publish(messages))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_delivery;
#[cfg(test)]
mod tests_staging;
