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
//! - `done`: overwritten once every emit is published and every timer change applied
//!   (`timers.rs`); a redelivery then publishes nothing.
//!
//! Every record carries a TTL (`--record-ttl-secs`, 7 days by default; daprd's
//! `ttlInSeconds`), so they do not pile up forever. A record written by an older host (no `state`
//! field) counts as done. The window between a
//! publish and the `done` write is the at-least-once part: a crash there republishes the same
//! bytes under the same ids, which consumers drop by CloudEvent id. For a delivery in `serve`'s
//! embedded mode that window does not exist: the record, the emits, the timers and the consumer
//! position commit in one transaction (embedded/staging.rs). Work outside a delivery (a parked
//! retry re-run by its job, a timer firing) keeps it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::dead_letter::host_problem;
use super::recorded::{RecordedEmit, publish_request, recorded, state_key};
use super::timers::RecordedTimer;
use super::{Done, Found, Pipeline};
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::dead_letter::DeadLetterReason;
use crate::plugin::Generation;
use crate::plugin::bindings::Subscription;
use crate::sidecar::{Concurrency, SidecarError, StateEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RecordState {
    Pending,
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutcomeRecord {
    state: RecordState,
    plugin: String,
    at: String,
    #[serde(default)]
    emits: Vec<RecordedEmit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    timers: Vec<RecordedTimer>,
}

impl OutcomeRecord {
    /// The record saved before anything is published.
    fn pending(
        generation: &Generation,
        emits: Vec<RecordedEmit>,
        timers: Vec<RecordedTimer>,
    ) -> Self {
        OutcomeRecord {
            state: RecordState::Pending,
            plugin: generation.plugin.label().to_string(),
            at: chrono::Utc::now().to_rfc3339(),
            emits,
            timers,
        }
    }

    fn bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("a record serializes"))
    }

    /// What replaces the record once its emits are published: their ids, not their bytes.
    fn done_bytes(&self) -> Bytes {
        #[derive(Serialize)]
        struct DoneMark<'a> {
            state: RecordState,
            plugin: &'a str,
            at: String,
            emits: &'a [RecordedEmit],
            ids: Vec<&'a str>,
        }
        let done = DoneMark {
            state: RecordState::Done,
            plugin: &self.plugin,
            at: chrono::Utc::now().to_rfc3339(),
            emits: &[],
            ids: self.emits.iter().map(|e| e.id.as_str()).collect(),
        };
        Bytes::from(serde_json::to_vec(&done).expect("a record serializes"))
    }

    /// A stored record; anything that is not a pending outcome (a done record, an older host's
    /// record) means "already handled".
    fn read(entry: &StateEntry) -> Option<OutcomeRecord> {
        serde_json::from_slice::<OutcomeRecord>(&entry.value)
            .ok()
            .filter(|r| r.state == RecordState::Pending)
    }
}

impl Pipeline {
    /// Records the outcome, publishes it, marks it done; or replays a recorded one. Keys in
    /// `found` (prefetch.rs) are not read again.
    pub(super) async fn finish(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        done: Done<'_>,
        found: Option<&Found>,
    ) -> Status {
        let Done {
            generation,
            handled,
            timers,
            attempt,
        } = done;
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
            return match self.publish_all(sub, &emits, &timers, found).await {
                Published::Refused(why) => refused(why).await,
                Published::Status(status) => status,
            };
        };
        let store = self.state_store.as_str();
        let what = "reading the outcome record";
        let existing = match self.read_state(what, &key, found).await {
            Ok(entry) => entry,
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
            match self.read_state(what, &legacy, found).await {
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
        let record = OutcomeRecord::pending(generation, emits, timers);
        let value = record.bytes();
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
        match self
            .publish_all(sub, &record.emits, &record.timers, found)
            .await
        {
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
        let published = self
            .publish_all(sub, &record.emits, &record.timers, None)
            .await;
        if let Published::Status(Status::Success) = published {
            self.mark_done(key, &record).await;
        }
        published
    }

    /// Publishes `emits`, then applies `timers` (reading only what `found` lacks).
    async fn publish_all(
        &self,
        sub: &Subscription,
        emits: &[RecordedEmit],
        timers: &[RecordedTimer],
        found: Option<&Found>,
    ) -> Published {
        let settled = async {
            for emit in emits {
                self.publish_one(sub, emit).await.map_err(|e| match e {
                    SidecarError::Refused(why) => SidecarError::Refused(format!(
                        "publishing event {} to {}: {why}",
                        emit.id, emit.topic
                    )),
                    e => e,
                })?;
            }
            self.apply_timers(sub, timers, found).await
        };
        match settled.await {
            Ok(()) => Published::Status(Status::Success),
            Err(SidecarError::Refused(why)) => Published::Refused(why),
            Err(e) => Published::Status(self.sidecar_failed("publishing the outcome", e)),
        }
    }

    /// Publishes one recorded emit on `sub`'s pub/sub, absorbing transient failures.
    pub(super) async fn publish_one(
        &self,
        sub: &Subscription,
        emit: &RecordedEmit,
    ) -> Result<(), SidecarError> {
        let request = publish_request(&sub.pubsub, emit);
        let what = "publishing an emitted event";
        self.with_retries(what, || self.sidecar.publish(request.clone()))
            .await
    }

    /// Best effort: if this write is lost, a redelivery republishes the same bytes.
    async fn mark_done(&self, key: &str, record: &OutcomeRecord) {
        let value = record.done_bytes();
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

/// A batch's outcome records (bulk.rs): each pending record as saved before publishing, and
/// the done mark that replaces it after.
pub(super) fn batch_records(
    generation: &Generation,
    emits: Vec<RecordedEmit>,
    timers: Vec<RecordedTimer>,
) -> (Bytes, Bytes) {
    let record = OutcomeRecord::pending(generation, emits, timers);
    (record.bytes(), record.done_bytes())
}

/// How publishing a set of emits ended.
enum Published {
    /// Every emit published (`Success`), or a failure daprd should redeliver.
    Status(Status),
    /// The sidecar refused an emit for good: the delivery is dead-lettered with this reason.
    Refused(String),
}
