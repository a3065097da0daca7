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
    PublishRequest, SaveItem, SidecarError, StateEntry, by_topic, get_each, publish_each, save_each,
};

impl Embedded {
    /// Every key's value and etag, from one read transaction.
    pub(super) async fn bulk_get(
        &self,
        store: &str,
        keys: &[String],
    ) -> Result<Vec<Option<StateEntry>>, SidecarError> {
        if Staging::current().is_some() {
            return get_each(self, store, keys).await;
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
            return save_each(self, store, items).await;
        }
        let ops = items
            .into_iter()
            .map(|item| StateOp::Upsert(SaveOp::from(item)))
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
            return publish_each(self, messages).await;
        }
        for ((pubsub, topic), messages) in by_topic(messages) {
            let entries = messages
                .into_iter()
                .enumerate()
                .map(|(n, m)| super::api::BulkEntry {
                    id: n.to_string(),
                    content_type: m.content_type,
                    body: m.body.to_vec(),
                    metadata: Metadata::from_pairs(m.metadata),
                })
                .collect();
            self.publish_many(&pubsub, &topic, entries)
                .await
                .map_err(ApiError::into_sidecar)?;
        }
        Ok(())
    }
}
