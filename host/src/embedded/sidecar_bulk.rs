//! The in-process host's bulk sidecar calls (a bulk delivery's one read, one save, one publish
//! per topic): each is one store transaction, where the HTTP API would be one request.
//!
//! Inside a staged single delivery (staging.rs) they go key by key through the staged calls, so
//! the delivery's one commit still holds everything.

use bytes::Bytes;

use super::Embedded;
use super::envelope::Metadata;
use super::error::ApiError;
use super::staging::Staging;
use super::state::{SaveOp, StateOp};
use crate::sidecar::{
    Concurrency, PublishRequest, SaveItem, SidecarApi as _, SidecarError, StateEntry,
};

impl Embedded {
    /// Every key's value and etag, from one read transaction.
    pub(super) async fn bulk_get(
        &self,
        store: &str,
        keys: &[String],
    ) -> Result<Vec<Option<StateEntry>>, SidecarError> {
        if Staging::current().is_some() {
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                found.push(self.get_state(store, key).await?);
            }
            return Ok(found);
        }
        self.check_store(store).map_err(ApiError::into_sidecar)?;
        for key in keys {
            super::check_key(key).map_err(ApiError::into_sidecar)?;
        }
        let (st, ks) = (store.to_string(), keys.to_vec());
        let found = self
            .blocking(move |s| s.state_get_many(&st, &ks))
            .await
            .map_err(|e| ApiError::storage("ERR_STATE_BULK_GET", e).into_sidecar())?;
        Ok(found
            .into_iter()
            .map(|f| {
                f.map(|(etag, value)| StateEntry {
                    value: Bytes::from(value),
                    etag: Some(etag.to_string()),
                })
            })
            .collect())
    }

    /// Every item in one transaction: all saved, or none (a first-write conflict fails all).
    pub(super) async fn bulk_save(
        &self,
        store: &str,
        items: Vec<SaveItem>,
    ) -> Result<(), SidecarError> {
        if Staging::current().is_some() {
            for i in items {
                self.save_state(store, &i.key, i.value, i.concurrency, i.ttl)
                    .await?;
            }
            return Ok(());
        }
        let ops = items
            .into_iter()
            .map(|i| {
                let (etag, first_write) = match i.concurrency {
                    Concurrency::LastWrite => (None, false),
                    Concurrency::FirstWrite => (None, true),
                    Concurrency::IfMatch(etag) => (Some(etag), true),
                };
                StateOp::Upsert(SaveOp {
                    key: i.key,
                    value: i.value.to_vec(),
                    etag,
                    first_write,
                    ttl_secs: i.ttl.map(|t| t.as_secs()),
                })
            })
            .collect();
        self.state_apply(store, ops, "ERR_STATE_SAVE")
            .await
            .map_err(ApiError::into_sidecar)
    }

    /// Each topic's messages appended in one transaction, topic after topic.
    pub(super) async fn bulk_publish(
        &self,
        messages: Vec<PublishRequest>,
    ) -> Result<(), SidecarError> {
        if Staging::current().is_some() {
            for m in messages {
                self.publish(m).await?;
            }
            return Ok(());
        }
        let mut topics: Vec<((String, String), Vec<super::api::BulkEntry>)> = Vec::new();
        for (n, m) in messages.into_iter().enumerate() {
            let entry = super::api::BulkEntry {
                id: n.to_string(),
                content_type: m.content_type,
                body: m.body.to_vec(),
                metadata: Metadata::from_pairs(m.metadata),
            };
            let target = (m.pubsub, m.topic);
            match topics.iter_mut().find(|(t, _)| *t == target) {
                Some((_, entries)) => entries.push(entry),
                None => topics.push((target, vec![entry])),
            }
        }
        for ((pubsub, topic), entries) in topics {
            self.publish_many(&pubsub, &topic, entries)
                .await
                .map_err(ApiError::into_sidecar)?;
        }
        Ok(())
    }
}
