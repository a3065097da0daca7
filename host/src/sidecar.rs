//! The little the pipeline needs from a Dapr sidecar: publish, read/write state, schedule jobs;
//! each one key or message at a time, or in bulk for a batch of deliveries.
//!
//! Dapr mode talks to a real daprd over HTTP (`dapr::client`); embedded mode answers from the
//! durable store in this process (`embedded`). Both implement [`SidecarApi`], so the pipeline is
//! the same code in both modes and depends on neither. Errors are split by what the caller must
//! do: a transient failure means "answer RETRY, nothing was acknowledged".

use bytes::Bytes;

/// One message to publish, already shaped as the CloudEvent the host wants on the broker.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub pubsub: String,
    pub topic: String,
    /// Content-Type of `body`; the pipeline always sends `application/cloudevents+json`.
    pub content_type: String,
    pub body: Bytes,
    /// Request metadata (`metadata.<key>` query parameters in daprd's API), e.g.
    /// `("partitionKey", user_id)`.
    pub metadata: Vec<(String, String)>,
}

/// A value read from the state store with its concurrency token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEntry {
    pub value: Bytes,
    pub etag: Option<String>,
}

/// One key of a bulk state save.
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub key: String,
    pub value: Bytes,
    pub concurrency: Concurrency,
    /// Expiry (daprd's `metadata.ttlInSeconds`).
    pub ttl: Option<std::time::Duration>,
}

/// How a state save treats an existing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concurrency {
    /// Overwrite whatever is there (daprd's default, last-write).
    LastWrite,
    /// Insert only if absent: daprd's `first-write` with no etag.
    FirstWrite,
    /// Replace only the value read with this etag; another writer in between is a
    /// [`SidecarError::Conflict`] (daprd's `first-write` with an etag).
    IfMatch(String),
}

/// Why a sidecar call failed, classed by what the delivery must do about it.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Connection refused/reset, timeout, or a 5xx: try again, nothing is lost.
    #[error("sidecar unavailable: {0}")]
    Unavailable(String),
    /// A save lost a concurrency race (409, or 500 for first-write on Redis/Postgres): the key
    /// exists. Callers re-read to tell a race from a store failure.
    #[error("state write conflict: {0}")]
    Conflict(String),
    /// The sidecar is set up differently from what the host expects (401/403: a wrong API
    /// token; 404: no such pub/sub or state store). Every event fails the same way until an
    /// operator fixes it, so it is retried, never dead-lettered.
    #[error("the sidecar is misconfigured for this host: {0}")]
    Misconfigured(String),
    /// The sidecar will never accept this request (400, 413, a record too large for the broker):
    /// retrying cannot help, so the event is dead-lettered with this reason.
    #[error("the sidecar refused the request: {0}")]
    Refused(String),
}

impl SidecarError {
    /// Classes an HTTP error answer from daprd's API (or the embedded sidecar's).
    pub fn from_status(status: u16, message: String) -> SidecarError {
        // Kafka's "message too large" comes back from daprd as a 500 whose text names it.
        let too_large = ["too large", "MessageSizeTooLarge", "message_too_large"]
            .iter()
            .any(|m| message.contains(m));
        match status {
            _ if too_large => SidecarError::Refused(message),
            409 => SidecarError::Conflict(message),
            401 | 403 | 404 => SidecarError::Misconfigured(message),
            408 | 429 => SidecarError::Unavailable(message),
            500..=599 => SidecarError::Unavailable(message),
            _ => SidecarError::Refused(message),
        }
    }

    /// Whether trying the same call again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SidecarError::Unavailable(_))
    }
}

/// A boxed future, so [`SidecarApi`] can be used as a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The sidecar the host is paired with: daprd over HTTP (`dapr::client`), or the embedded one
/// in this process (wired in by `serve` alone). The pipeline sees only this trait.
pub trait SidecarApi: Send + Sync + 'static {
    /// Publishes like `POST /v1.0/publish/{pubsub}/{topic}`; `Ok` once the broker has it.
    fn publish(&self, req: PublishRequest) -> BoxFuture<'_, Result<(), SidecarError>>;

    /// Reads one key like `GET /v1.0/state/{store}/{key}`.
    fn get_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StateEntry>, SidecarError>>;

    /// Saves one key, expiring after `ttl` if given (daprd's `metadata.ttlInSeconds`).
    /// `FirstWrite` on an existing key is a [`SidecarError::Conflict`] (or, on Redis and Postgres
    /// behind daprd, an `Unavailable` 500: callers re-read).
    fn save_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<std::time::Duration>,
    ) -> BoxFuture<'a, Result<(), SidecarError>>;

    /// Deletes one key, only at `etag` when given (a mismatch is a [`SidecarError::Conflict`]).
    fn delete_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        etag: Option<String>,
    ) -> BoxFuture<'a, Result<(), SidecarError>>;

    /// Schedules (or reschedules) the job `name` to call the app back at `POST /job/{name}`
    /// with `data` (JSON) after `due_in`: daprd's Jobs API.
    fn schedule_job<'a>(
        &'a self,
        name: &'a str,
        due_in: std::time::Duration,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), SidecarError>>;

    /// Deletes the job `name` (absent is fine).
    fn delete_job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), SidecarError>>;

    /// Reads `keys` like `POST /v1.0/state/{store}/bulk`: one answer per key, in order. A key
    /// the store could not read fails the whole call (the caller must not take it for absent).
    /// By default one [`get_state`](Self::get_state) per key.
    fn get_bulk_state<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<StateEntry>>, SidecarError>> {
        Box::pin(get_each(self, store, keys))
    }

    /// Saves `items` like `POST /v1.0/state/{store}` with several items. Not atomic (daprd's
    /// is not either): after an error any subset may be saved. By default one
    /// [`save_state`](Self::save_state) per item.
    fn save_bulk_state<'a>(
        &'a self,
        store: &'a str,
        items: Vec<SaveItem>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(save_each(self, store, items))
    }

    /// Publishes `messages`, all on one pub/sub and topic, like daprd's bulk publish
    /// (`POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}`), each with its own content type and
    /// metadata. `Ok` once the broker has every one; after an error any subset may be
    /// published. By default one [`publish`](Self::publish) per message.
    fn publish_bulk(
        &self,
        messages: Vec<PublishRequest>,
    ) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(publish_each(self, messages))
    }
}

/// [`SidecarApi::get_bulk_state`] as one [`get_state`](SidecarApi::get_state) per key: the
/// default, and what a sidecar does where it cannot batch.
pub async fn get_each(
    api: &(impl SidecarApi + ?Sized),
    store: &str,
    keys: &[String],
) -> Result<Vec<Option<StateEntry>>, SidecarError> {
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(api.get_state(store, key).await?);
    }
    Ok(found)
}

/// [`SidecarApi::save_bulk_state`] as one [`save_state`](SidecarApi::save_state) per item.
pub async fn save_each(
    api: &(impl SidecarApi + ?Sized),
    store: &str,
    items: Vec<SaveItem>,
) -> Result<(), SidecarError> {
    for item in items {
        api.save_state(store, &item.key, item.value, item.concurrency, item.ttl)
            .await?;
    }
    Ok(())
}

/// [`SidecarApi::publish_bulk`] as one [`publish`](SidecarApi::publish) per message.
pub async fn publish_each(
    api: &(impl SidecarApi + ?Sized),
    messages: Vec<PublishRequest>,
) -> Result<(), SidecarError> {
    for message in messages {
        api.publish(message).await?;
    }
    Ok(())
}

/// `messages` grouped by pub/sub and topic (groups in order of first appearance, messages in
/// order within each): a bulk publish is one request per topic.
pub fn by_topic(messages: Vec<PublishRequest>) -> Vec<((String, String), Vec<PublishRequest>)> {
    let mut topics: Vec<((String, String), Vec<PublishRequest>)> = Vec::new();
    for message in messages {
        let target = (message.pubsub.clone(), message.topic.clone());
        match topics.iter_mut().find(|(t, _)| *t == target) {
            Some((_, group)) => group.push(message),
            None => topics.push((target, vec![message])),
        }
    }
    topics
}

/// The Jobs API request body (`POST /v1.0-alpha1/jobs/{name}`) of a one-shot job due after
/// `due_in`, carrying `data` (JSON; anything else becomes `null`) and replacing a job of the
/// same name: what both sidecars are asked by [`SidecarApi::schedule_job`].
pub fn one_shot_job(due_in: std::time::Duration, data: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "dueTime": format!("{}ms", due_in.as_millis().max(1)),
        "data": serde_json::from_slice::<serde_json::Value>(data).unwrap_or(serde_json::Value::Null),
        "overwrite": true,
    })
}

/// The shared handle the pipeline holds.
pub type Sidecar = std::sync::Arc<dyn SidecarApi>;
