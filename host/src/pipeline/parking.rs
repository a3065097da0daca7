//! Durable waits: a plugin retry whose delay is longer than a delivery may be held is parked
//! in the state store and re-driven by a job, so the partition moves on.
//!
//! Contract:
//! - A delay up to `--max-in-place-retry-ms` (2 s) is waited inside the delivery, as before.
//!   A longer one parks the event: it goes into its user's queue (`waiting-<user>`, a state
//!   record with every parked event's delivery, attempt count and every attempt's reason), a
//!   job `retry-<user>` is scheduled for the delay (daprd's Jobs API, or the embedded
//!   sidecar's), and the delivery answers SUCCESS. The attempt count is durable.
//! - While a user's queue exists, that user's later events join its end and are acknowledged:
//!   they wait behind it, in order. Other users are not delayed.
//! - When the job fires (`POST /job/retry-<user>`), the head is tried again (attempt n+1) on
//!   the current plugin: done, rejected or dead-lettered, it leaves the queue and the next event
//!   runs at once; retried again, it stays at the head with the next delay of its schedule; its
//!   schedule spent, it is dead-lettered with every attempt's reason. An empty queue is deleted.
//! - Every write is etag-guarded, so a delivery appending and a job popping never lose each
//!   other's change; a job firing twice finds the head already gone. Before it works, a firing
//!   re-arms the job for a minute later, so a crash mid-way is picked up again: every wait is
//!   durable.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::routing::Routing;
use super::{Attempt, Found, Pipeline, Step};
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::plugin::bindings::Subscription;
use crate::sidecar::{Concurrency, SidecarError, StateEntry};

/// How long a firing may take before the job fires again (a crash mid-way).
const WATCHDOG: Duration = Duration::from_secs(60);
/// Etag races retried before giving up with RETRY.
const MAX_RACES: usize = 8;

/// One parked event: what is needed to run it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Parked {
    pubsub: String,
    topic: String,
    route: String,
    dead_letter_topic: Option<String>,
    id: String,
    kind: String,
    source: String,
    data: String,
    /// The attempt to make next (1 for an event that only waits behind the head).
    attempt: u32,
    /// Every failed attempt's reason, in order.
    reasons: Vec<String>,
    /// When the head is due, in ms since the epoch (0: now).
    due_at_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Queue {
    events: Vec<Parked>,
}

impl Parked {
    fn new(
        sub: &Subscription,
        incoming: &Incoming,
        attempt: u32,
        reasons: Vec<String>,
        delay: Duration,
    ) -> Parked {
        Parked {
            pubsub: sub.pubsub.clone(),
            topic: sub.topic.clone(),
            route: sub.route.clone(),
            dead_letter_topic: sub.dead_letter_topic.clone(),
            id: incoming.id.clone(),
            kind: incoming.kind.clone(),
            source: incoming.source.clone(),
            data: incoming.data.clone(),
            attempt,
            reasons,
            due_at_ms: due_at(delay),
        }
    }

    fn subscription(&self) -> Subscription {
        Subscription {
            pubsub: self.pubsub.clone(),
            topic: self.topic.clone(),
            route: self.route.clone(),
            dead_letter_topic: self.dead_letter_topic.clone(),
        }
    }

    fn incoming(&self) -> Incoming {
        Incoming {
            id: self.id.clone(),
            kind: self.kind.clone(),
            source: self.source.clone(),
            data: self.data.clone(),
            trace: None,
        }
    }
}

fn due_at(delay: Duration) -> i64 {
    if delay.is_zero() {
        return 0;
    }
    chrono::Utc::now().timestamp_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)
}

/// The state key of a user's queue and the name of its job.
fn names(user: Option<&str>) -> (String, String) {
    let suffix = user.map_or_else(|| "no-user".to_string(), super::recorded::key_part);
    (format!("waiting-{suffix}"), format!("retry-{suffix}"))
}

/// The state key of a user's retry queue.
pub(super) fn queue_key(user: Option<&str>) -> String {
    names(user).0
}

/// Whether a stored queue holds an event: then the user's later events wait behind it.
pub(super) fn holds_events(entry: &StateEntry) -> bool {
    !read(entry).events.is_empty()
}

fn read(entry: &StateEntry) -> Queue {
    serde_json::from_slice(&entry.value).unwrap_or_default()
}

fn bytes(queue: &Queue) -> Bytes {
    Bytes::from(serde_json::to_vec(queue).expect("a queue serializes"))
}

impl Pipeline {
    /// If `incoming`'s user has parked events, joins their queue and answers; `None`: go on.
    /// The queue is read unless `found` (prefetch.rs) holds it.
    pub(super) async fn wait_behind(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        routing: &Routing,
        found: Option<&Found>,
    ) -> Option<Status> {
        let (key, job) = names(routing.user_id.as_deref());
        let store = self.state_store.as_str();
        // The delivery's read counts for the first pass only: after a race, read again.
        let mut found = found;
        for _ in 0..MAX_RACES {
            let what = "reading the user's retry queue";
            let entry = match self.read_state(what, &key, found.take()).await {
                Ok(Some(entry)) => entry,
                Ok(None) => return None,
                Err(e) => return Some(self.sidecar_failed("reading the user's retry queue", e)),
            };
            let mut queue = read(&entry);
            let head = queue.events.first().cloned()?;
            if queue
                .events
                .iter()
                .any(|p| p.id == incoming.id && !incoming.id.is_empty())
            {
                // A redelivery of an event already queued: make sure the job is armed.
                let wait = Duration::from_millis(
                    u64::try_from(head.due_at_ms - chrono::Utc::now().timestamp_millis())
                        .unwrap_or(0),
                );
                return Some(
                    match self
                        .sidecar
                        .schedule_job(&job, wait, Bytes::from_static(b"{}"))
                        .await
                    {
                        Ok(()) => Status::Success,
                        Err(e) => self.sidecar_failed("arming the retry job", e),
                    },
                );
            }
            queue
                .events
                .push(Parked::new(sub, incoming, 1, Vec::new(), Duration::ZERO));
            let etag = entry.etag.clone().unwrap_or_default();
            match self
                .sidecar
                .save_state(
                    store,
                    &key,
                    bytes(&queue),
                    Concurrency::IfMatch(etag),
                    Some(self.record_ttl),
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(queue = %key, waiting = queue.events.len(), "an earlier event of this user waits for a retry; this one waits behind it");
                    return Some(Status::Success);
                }
                Err(SidecarError::Conflict(_)) => continue,
                Err(e) => return Some(self.sidecar_failed("joining the user's retry queue", e)),
            }
        }
        Some(self.sidecar_failed(
            "joining the user's retry queue",
            SidecarError::Unavailable("too many concurrent changes".into()),
        ))
    }

    /// Parks `incoming` (its next attempt is `attempt`) for `delay` and answers.
    pub(super) async fn park(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        routing: &Routing,
        attempt: u32,
        reasons: Vec<String>,
        delay: Duration,
    ) -> Status {
        let (key, job) = names(routing.user_id.as_deref());
        let store = self.state_store.as_str();
        let parked = Parked::new(sub, incoming, attempt, reasons, delay);
        for _ in 0..MAX_RACES {
            let existing = match self
                .with_retries("reading the user's retry queue", || {
                    self.sidecar.get_state(store, &key)
                })
                .await
            {
                Ok(found) => found,
                Err(e) => return self.sidecar_failed("reading the user's retry queue", e),
            };
            let (mut queue, concurrency) = match &existing {
                Some(entry) => (
                    read(entry),
                    Concurrency::IfMatch(entry.etag.clone().unwrap_or_default()),
                ),
                None => (Queue::default(), Concurrency::FirstWrite),
            };
            let head = queue.events.is_empty();
            queue
                .events
                .retain(|p| p.id != parked.id || parked.id.is_empty());
            queue.events.push(parked.clone());
            match self
                .sidecar
                .save_state(
                    store,
                    &key,
                    bytes(&queue),
                    concurrency,
                    Some(self.record_ttl),
                )
                .await
            {
                Ok(()) => {}
                Err(SidecarError::Conflict(_)) => continue,
                Err(e) => return self.sidecar_failed("parking a retry", e),
            }
            if head
                && let Err(e) = self
                    .sidecar
                    .schedule_job(&job, delay, Bytes::from_static(b"{}"))
                    .await
            {
                // Redelivered, the event finds itself queued and arms the job again.
                return self.sidecar_failed("scheduling a parked retry", e);
            }
            tracing::info!(queue = %key, attempt, delay_ms = delay.as_millis() as u64, "retry parked; the delivery is acknowledged");
            return Status::Success;
        }
        self.sidecar_failed(
            "parking a retry",
            SidecarError::Unavailable("too many concurrent changes".into()),
        )
    }

    /// A job `retry-<user>` fired: runs the user's queue as far as it goes. `Err`: the sidecar
    /// failed, the job fires again.
    pub async fn resume(&self, job: &str) -> Result<(), String> {
        let Some(suffix) = job.strip_prefix("retry-") else {
            tracing::warn!(job, "a job this host did not schedule fired; ignored");
            return Ok(());
        };
        let key = format!("waiting-{suffix}");
        let store = self.state_store.as_str();
        if let Err(e) = self
            .sidecar
            .schedule_job(job, WATCHDOG, Bytes::from_static(b"{}"))
            .await
        {
            return Err(format!("re-arming {job}: {e}"));
        }
        for _ in 0..10_000 {
            let entry = match self
                .with_retries("reading a retry queue", || {
                    self.sidecar.get_state(store, &key)
                })
                .await
            {
                Ok(Some(entry)) => entry,
                Ok(None) => return self.retire_job(job, &key).await,
                Err(e) => return Err(format!("reading {key}: {e}")),
            };
            let queue = read(&entry);
            let Some(head) = queue.events.first().cloned() else {
                let etag = entry.etag.clone();
                self.sidecar
                    .delete_state(store, &key, etag)
                    .await
                    .map_err(|e| e.to_string())?;
                return self.retire_job(job, &key).await;
            };
            let (sub, incoming) = (head.subscription(), head.incoming());
            let routing = Routing::read(&incoming.data);
            tracing::info!(queue = %key, event = %incoming.id, attempt = head.attempt, "running a parked event");
            let first = Attempt {
                number: head.attempt,
                reasons: head.reasons.clone(),
                in_place: self.max_in_place_wait,
            };
            let step = self.attempts(&sub, &incoming, &routing, first, None).await;
            let next_head = match step {
                Step::Finished(Status::Retry) => {
                    return Err(format!(
                        "{} answered RETRY (the sidecar failed)",
                        incoming.id
                    ));
                }
                Step::Finished(_) => None,
                Step::Park {
                    attempt,
                    reasons,
                    delay,
                } => Some((
                    Parked {
                        attempt,
                        reasons,
                        due_at_ms: due_at(delay),
                        ..head.clone()
                    },
                    delay,
                )),
            };
            let delay = next_head.as_ref().map(|(_, d)| *d);
            self.settle_head(&key, &head, next_head.map(|(p, _)| p))
                .await?;
            if let Some(delay) = delay {
                self.sidecar
                    .schedule_job(job, delay, Bytes::from_static(b"{}"))
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Replaces the queue's head `done` (if it is still the head) with `next`, or pops it.
    /// Deletes the job of a queue found empty; if a delivery parked a new queue meanwhile (and
    /// scheduled this job for it), re-arms the job so that queue is not left without one.
    async fn retire_job(&self, job: &str, key: &str) -> Result<(), String> {
        let _ = self.sidecar.delete_job(job).await;
        let store = self.state_store.as_str();
        match self.sidecar.get_state(store, key).await {
            Ok(None) => Ok(()),
            _ => self
                .sidecar
                .schedule_job(job, Duration::from_secs(1), Bytes::from_static(b"{}"))
                .await
                .map_err(|e| format!("re-arming {job}: {e}")),
        }
    }

    async fn settle_head(
        &self,
        key: &str,
        done: &Parked,
        next: Option<Parked>,
    ) -> Result<(), String> {
        let store = self.state_store.as_str();
        for _ in 0..MAX_RACES {
            let Some(entry) = self
                .sidecar
                .get_state(store, key)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            let mut queue = read(&entry);
            if queue.events.first() != Some(done) {
                return Ok(()); // another firing settled it
            }
            match &next {
                Some(p) => queue.events[0] = p.clone(),
                None => {
                    queue.events.remove(0);
                }
            }
            let etag = entry.etag.clone().unwrap_or_default();
            let saved = if queue.events.is_empty() {
                self.sidecar.delete_state(store, key, Some(etag)).await
            } else {
                self.sidecar
                    .save_state(
                        store,
                        key,
                        bytes(&queue),
                        Concurrency::IfMatch(etag),
                        Some(self.record_ttl),
                    )
                    .await
            };
            match saved {
                Ok(()) => return Ok(()),
                Err(SidecarError::Conflict(_)) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("{key}: too many concurrent changes"))
    }
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn queue_and_job_names_are_safe_for_any_user() {
        assert_eq!(
            names(Some("user-1")),
            ("waiting-user-1".into(), "retry-user-1".into())
        );
        let (key, job) = names(Some("a||b/c"));
        assert!(key.starts_with("waiting-sha256-") && job.starts_with("retry-sha256-"));
        assert_eq!(names(None).0, "waiting-no-user");
        assert_ne!(names(Some("a||b")), names(Some("a||c")));
    }
}
