//! The dead-letter log: every dead letter the host publishes is also kept in the state store,
//! so operators can list, show and replay dead letters in both modes (in Dapr mode the host
//! cannot read a Kafka topic back). `crate::dead_letters` serves it on the admin API.
//!
//! Layout: the record itself under `dead-letter-<sha256 of its id>` (with the dead-letter topic
//! and the replays made of it), and one index, `dead-letters-index`, with a summary of the
//! newest [`MAX_INDEXED`] (id, topic, reason, user, time), both with the records' TTL. Writing
//! the log is best effort: the dead letter is already published, so a failure here is logged
//! and never fails the delivery. Dead letters daprd itself forwards (a DROP answer) are not in
//! it: the host never sees them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Pipeline;
use crate::sidecar::{Concurrency, SidecarError};

/// The index key.
pub(crate) const INDEX_KEY: &str = "dead-letters-index";
/// Summaries kept in the index; older ones drop out (their records expire with their TTL).
const MAX_INDEXED: usize = 10_000;
const MAX_RACES: usize = 8;

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub id: String,
    /// The dead-letter topic it was published on.
    pub topic: String,
    /// The topic the original event came from.
    pub from_topic: String,
    pub reason: String,
    pub user: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// The state key of a dead letter's record.
pub(crate) fn record_key(id: &str) -> String {
    format!("dead-letter-{}", hex::encode(Sha256::digest(id.as_bytes())))
}

impl Pipeline {
    /// Keeps `record` (a published dead-letter CloudEvent) in the log.
    pub(super) async fn log_dead_letter(&self, topic: &str, record: &Value) {
        let id = record["id"].as_str().unwrap_or_default().to_string();
        let data = &record["data"];
        let summary = Summary {
            id: id.clone(),
            topic: topic.to_string(),
            from_topic: data["original"]["topic"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            reason: data["reason"].as_str().unwrap_or_default().to_string(),
            user: data["original"]["data"]["user_id"]
                .as_str()
                .map(str::to_string),
            at: chrono::Utc::now().to_rfc3339(),
        };
        let stored = serde_json::json!({"topic": topic, "record": record, "replays": []});
        let store = self.state_store.as_str();
        let key = record_key(&id);
        let value = Bytes::from(stored.to_string());
        let saved = self
            .with_retries("logging a dead letter", || {
                self.sidecar.save_state(
                    store,
                    &key,
                    value.clone(),
                    Concurrency::LastWrite,
                    Some(self.record_ttl),
                )
            })
            .await;
        if let Err(e) = saved {
            tracing::warn!(
                id,
                "the dead letter is published but not in the dead-letter log: {e}"
            );
            return;
        }
        if let Err(e) = self.index_dead_letter(summary).await {
            tracing::warn!(
                id,
                "the dead letter is published but not in the dead-letter index: {e}"
            );
        }
    }

    async fn index_dead_letter(&self, summary: Summary) -> Result<(), SidecarError> {
        let store = self.state_store.as_str();
        for _ in 0..MAX_RACES {
            let entry = self.sidecar.get_state(store, INDEX_KEY).await?;
            let (mut index, concurrency) = match &entry {
                Some(e) => (
                    serde_json::from_slice::<Vec<Summary>>(&e.value).unwrap_or_default(),
                    Concurrency::IfMatch(e.etag.clone().unwrap_or_default()),
                ),
                None => (Vec::new(), Concurrency::FirstWrite),
            };
            index.retain(|s| s.id != summary.id);
            index.push(summary.clone());
            if index.len() > MAX_INDEXED {
                index.drain(..index.len() - MAX_INDEXED);
            }
            let value = Bytes::from(serde_json::to_vec(&index).expect("an index serializes"));
            match self
                .sidecar
                .save_state(store, INDEX_KEY, value, concurrency, Some(self.record_ttl))
                .await
            {
                Ok(()) => return Ok(()),
                Err(SidecarError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SidecarError::Unavailable(
            "the index kept changing under us".into(),
        ))
    }
}
