//! First outcome wins: what a handled event publishes is recorded before it is published, and a
//! redelivery replays the record instead of the plugin's new answer.
//!
//! The record lives in the state store under a key derived from the plugin's dedupe key (the
//! task event's `event_id`): `processed-<id>` when the id is made of plain characters, else
//! `processed-sha256-<hex of the id>`, so no event id can make the key one the store refuses
//! (daprd refuses `||`, stores limit lengths). It goes through two states:
//! - `pending`: saved first-write with every emit's exact CloudEvent bytes, before anything is
//!   published. A redelivery (after a crash, a rebalance, or a plugin swap that would now answer
//!   differently) republishes exactly these bytes with these ids, never a second version.
//! - `done`: overwritten once every emit is published; a redelivery then publishes nothing.
//!
//! Every record carries a TTL (`--record-ttl-secs`, 7 days by default; daprd's
//! `ttlInSeconds`), so they do not pile up forever. A record written by an older host (no `state`
//! field) counts as done. The window between a
//! publish and the `done` write is the at-least-once part: a crash there republishes the same
//! bytes under the same ids, which consumers drop by CloudEvent id.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Pipeline;
use super::dead_letter::host_problem;
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::dead_letter::DeadLetterReason;
use crate::plugin::Generation;
use crate::plugin::bindings::{Emit, Handled, Subscription};
use crate::sidecar::{Concurrency, PublishRequest, SidecarError, StateEntry};
use crate::trace_context::TraceContext;

/// A dedupe key longer than this, or with other characters, is hashed.
const MAX_PLAIN_KEY: usize = 200;

/// The state key of a dedupe key; `None` for an empty one (nothing to record).
pub(super) fn state_key(dedupe_key: &str) -> Option<String> {
    (!dedupe_key.is_empty()).then(|| format!("processed-{}", key_part(dedupe_key)))
}

/// `raw` as part of a state key or job name: itself when made of plain characters and short,
/// else `sha256-<hex>`, so no outside value can make a key the store or the scheduler refuses.
pub(super) fn key_part(raw: &str) -> String {
    let plain = !raw.is_empty()
        && raw.len() <= MAX_PLAIN_KEY
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
    if plain {
        raw.to_string()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(raw.as_bytes())))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RecordState {
    Pending,
    Done,
}

/// One emit as it was (or will be) published.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordedEmit {
    topic: String,
    key: String,
    id: String,
    /// The exact CloudEvent JSON sent to the sidecar.
    body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutcomeRecord {
    state: RecordState,
    plugin: String,
    at: String,
    #[serde(default)]
    emits: Vec<RecordedEmit>,
}

impl OutcomeRecord {
    /// A stored record; anything that is not a pending outcome (a done record, an older host's
    /// record) means "already handled".
    fn read(entry: &StateEntry) -> Option<OutcomeRecord> {
        serde_json::from_slice::<OutcomeRecord>(&entry.value)
            .ok()
            .filter(|r| r.state == RecordState::Pending)
    }
}

impl Pipeline {
    /// Records the outcome, publishes it, marks it done; or replays a recorded one.
    pub(super) async fn finish(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        generation: &Generation,
        handled: Handled,
        attempt: u32,
    ) -> Status {
        let refused = |why: String| async move {
            let problem = host_problem("sidecar-refused", why);
            self.dead_letter(
                sub,
                incoming,
                generation,
                DeadLetterReason::SidecarRefused,
                vec![problem],
                attempt,
            )
            .await
        };
        let emits: Vec<RecordedEmit> = handled
            .emits
            .iter()
            .map(|e| recorded(e, &self.app_id, incoming.trace.as_ref()))
            .collect();
        let Some(key) = state_key(&handled.dedupe_key) else {
            return match self.publish_all(sub, &emits).await {
                Published::Refused(why) => refused(why).await,
                Published::Status(status) => status,
            };
        };
        let store = self.state_store.as_str();
        let what = "reading the outcome record";
        let existing = match self
            .with_retries(what, || self.sidecar.get_state(store, &key))
            .await
        {
            Ok(found) => found,
            Err(e) => return self.sidecar_failed(what, e),
        };
        if let Some(entry) = existing {
            return match self.replay(sub, &key, &entry).await {
                Published::Refused(why) => refused(why).await,
                Published::Status(status) => status,
            };
        }
        if let Some(prefix) = &self.legacy_dedupe_prefix {
            // A service built after the seed design recorded `event-processed-<event_id>`:
            // during a switch-over, an event it handled is not handled again.
            let legacy = format!("{prefix}{}", handled.dedupe_key);
            let what = "reading the seed-style idempotency record";
            match self
                .with_retries(what, || self.sidecar.get_state(store, &legacy))
                .await
            {
                Ok(Some(_)) => {
                    self.metrics.duplicate();
                    tracing::info!(key = %legacy, "already handled by the previous service; publishing nothing");
                    return Status::Success;
                }
                Ok(None) => {}
                // A key the store refuses cannot have been written by the previous service.
                Err(SidecarError::Refused(_)) => {}
                Err(e) => return self.sidecar_failed(what, e),
            }
        }
        let record = OutcomeRecord {
            state: RecordState::Pending,
            plugin: generation.plugin.label().to_string(),
            at: chrono::Utc::now().to_rfc3339(),
            emits,
        };
        let value = Bytes::from(serde_json::to_vec(&record).expect("a record serializes"));
        let what = "saving the outcome record";
        let saved = self
            .with_retries(what, || {
                self.sidecar.save_state(
                    store,
                    &key,
                    value.clone(),
                    Concurrency::FirstWrite,
                    Some(self.record_ttl),
                )
            })
            .await;
        match saved {
            Ok(()) => {}
            // Another delivery of the same event recorded first (409, or the 500 Redis and
            // Postgres answer for first-write on an existing key): its outcome wins.
            Err(SidecarError::Conflict(_) | SidecarError::Unavailable(_)) => {
                return match self.sidecar.get_state(store, &key).await {
                    Ok(Some(entry)) => match self.replay(sub, &key, &entry).await {
                        Published::Refused(why) => refused(why).await,
                        Published::Status(status) => status,
                    },
                    Ok(None) => self
                        .sidecar_failed(what, SidecarError::Unavailable("the save failed".into())),
                    Err(e) => self.sidecar_failed(what, e),
                };
            }
            Err(SidecarError::Refused(why)) => {
                return refused(format!("{what}: {why}")).await;
            }
            Err(e) => return self.sidecar_failed(what, e),
        }
        match self.publish_all(sub, &record.emits).await {
            Published::Status(Status::Success) => {
                self.mark_done(&key, &record).await;
                Status::Success
            }
            Published::Status(status) => status,
            Published::Refused(why) => refused(why).await,
        }
    }

    /// A record is already there: publish nothing if it is done, else exactly what it holds.
    async fn replay(&self, sub: &Subscription, key: &str, entry: &StateEntry) -> Published {
        let Some(record) = OutcomeRecord::read(entry) else {
            self.metrics.duplicate();
            tracing::debug!(key, "duplicate delivery; already handled");
            return Published::Status(Status::Success);
        };
        tracing::info!(key, plugin = %record.plugin, emits = record.emits.len(),
            "redelivery of an unfinished outcome; republishing it as first recorded");
        let published = self.publish_all(sub, &record.emits).await;
        if let Published::Status(Status::Success) = published {
            self.mark_done(key, &record).await;
        }
        published
    }

    async fn publish_all(&self, sub: &Subscription, emits: &[RecordedEmit]) -> Published {
        for emit in emits {
            let request = PublishRequest {
                pubsub: sub.pubsub.clone(),
                topic: emit.topic.clone(),
                content_type: "application/cloudevents+json".into(),
                body: Bytes::from(emit.body.clone()),
                metadata: publish_metadata(emit),
            };
            let what = "publishing an emitted event";
            match self
                .with_retries(what, || self.sidecar.publish(request.clone()))
                .await
            {
                Ok(()) => {}
                Err(SidecarError::Refused(why)) => {
                    return Published::Refused(format!(
                        "publishing event {} to {}: {why}",
                        emit.id, emit.topic
                    ));
                }
                Err(e) => return Published::Status(self.sidecar_failed(what, e)),
            }
        }
        Published::Status(Status::Success)
    }

    /// Best effort: if this write is lost, a redelivery republishes the same bytes.
    async fn mark_done(&self, key: &str, record: &OutcomeRecord) {
        let done = json!({
            "state": "done",
            "plugin": record.plugin,
            "at": chrono::Utc::now().to_rfc3339(),
            "emits": Vec::<Value>::new(),
            "ids": record.emits.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        });
        let value = Bytes::from(done.to_string());
        let store = self.state_store.as_str();
        let what = "marking the outcome done";
        if let Err(e) = self
            .with_retries(what, || {
                self.sidecar.save_state(
                    store,
                    key,
                    value.clone(),
                    Concurrency::LastWrite,
                    Some(self.record_ttl),
                )
            })
            .await
        {
            tracing::warn!(
                key,
                "{what} failed ({e}); a redelivery would republish the same events"
            );
        }
    }
}

/// How publishing a set of emits ended.
enum Published {
    /// Every emit published (`Success`), or a failure daprd should redeliver.
    Status(Status),
    /// The sidecar refused an emit for good: the delivery is dead-lettered with this reason.
    Refused(String),
}

/// The partition key, and the trace context of the recorded bytes as daprd's publish metadata.
fn publish_metadata(emit: &RecordedEmit) -> Vec<(String, String)> {
    let mut metadata = vec![("partitionKey".into(), emit.key.clone())];
    if let Some(trace) = TraceContext::of_body(&emit.body) {
        metadata.extend(trace.metadata());
    }
    metadata
}

/// The CloudEvent the host publishes for one emit: the plugin's deterministic id and type,
/// partitioned by the emit's key, in the trace of the delivery that caused it.
fn recorded(emit: &Emit, app_id: &str, trace: Option<&TraceContext>) -> RecordedEmit {
    let data: Value =
        serde_json::from_str(&emit.data).unwrap_or_else(|_| Value::String(emit.data.clone()));
    let mut event = json!({
        "specversion": "1.0",
        "id": emit.id,
        "source": app_id,
        "type": emit.kind,
        "datacontenttype": "application/json",
        "data": data,
    });
    if let Some(trace) = trace {
        trace.stamp(&mut event);
    }
    RecordedEmit {
        topic: emit.topic.clone(),
        key: emit.key.clone(),
        id: emit.id.clone(),
        body: event.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::state_key;
    use proptest::prelude::*;

    #[test]
    fn plain_ids_keep_their_readable_key() {
        assert_eq!(state_key("evt-1").as_deref(), Some("processed-evt-1"));
        assert_eq!(state_key(""), None);
        let hashed = state_key("poison||1").unwrap();
        assert!(hashed.starts_with("processed-sha256-") && !hashed.contains("||"));
        assert_ne!(state_key("a||b"), state_key("a||c"));
    }

    proptest! {
        #[test]
        fn no_event_id_makes_an_invalid_key(id in ".{1,300}") {
            let key = state_key(&id).unwrap();
            prop_assert!(!key.contains("||"));
            prop_assert!(key.len() <= 217);
            prop_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b)));
        }
    }
}
