//! The little the pipeline needs from a Dapr sidecar: publish, and read/write one state key.
//!
//! Dapr mode talks to a real daprd over HTTP (`dapr::client`); embedded mode answers from the
//! durable store in this process (`embedded`). Both sit behind this one enum so the pipeline is
//! the same code in both modes (ARCHITECTURE.md, rule 7). Errors are split by what the caller
//! must do: a transient failure means "answer RETRY, nothing was acknowledged".

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

/// How a state save treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Overwrite whatever is there (daprd's default).
    LastWrite,
    /// Insert only if absent (no etag) or only over the given etag.
    FirstWrite,
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Connection refused/reset, timeout, or a 5xx: try again later, nothing is lost.
    #[error("sidecar unavailable: {0}")]
    Unavailable(String),
    /// A save lost a concurrency race (409, or 500 for first-write on Redis/Postgres): the key
    /// exists. Callers re-read to tell a race from a store failure.
    #[error("state write conflict: {0}")]
    Conflict(String),
    /// The sidecar refused the request for a reason retrying will not fix (4xx other than 409):
    /// a misconfiguration such as an unknown pubsub or store, or a wrong API token.
    #[error("sidecar rejected the request: {0}")]
    Rejected(String),
}

/// The sidecar the host is paired with.
#[derive(Clone)]
pub enum Sidecar {
    Dapr(crate::dapr::client::DaprClient),
    Embedded(crate::embedded::Embedded),
}

impl Sidecar {
    pub async fn publish(&self, req: PublishRequest) -> Result<(), SidecarError> {
        match self {
            Sidecar::Dapr(c) => c.publish(req).await,
            Sidecar::Embedded(e) => e.publish(req).await,
        }
    }

    pub async fn get_state(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<StateEntry>, SidecarError> {
        match self {
            Sidecar::Dapr(c) => c.get_state(store, key).await,
            Sidecar::Embedded(e) => e.get_state(store, key).await,
        }
    }

    pub async fn save_state(
        &self,
        store: &str,
        key: &str,
        value: Bytes,
        concurrency: Concurrency,
    ) -> Result<(), SidecarError> {
        match self {
            Sidecar::Dapr(c) => c.save_state(store, key, value, concurrency).await,
            Sidecar::Embedded(e) => e.save_state(store, key, value, concurrency).await,
        }
    }
}
