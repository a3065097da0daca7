//! A bulk batch (docs/dapr-contract.md §4) on a fast path: one plugin pass, one bulk state read,
//! one bulk save of the outcome records, one bulk publish per topic and one bulk save of the done
//! marks, for every entry a single delivery would have handled with exactly those calls.
//!
//! Contract: every guarantee of a single delivery (mod.rs) holds for every entry. An entry takes
//! the fast path only when
//! - its user has no parked retries (`waiting-<user>` absent or empty, parking.rs),
//! - the plugin answered `done` and the outcome passes every effect check,
//! - its event was not handled before: no outcome record, no legacy record, and no earlier entry
//!   of the batch with the same dedupe key,
//! - its timer changes need no write (cancels of timers that are not pending; a set goes the
//!   single path, which records and schedules it).
//!
//! Every other entry, and every later entry of the same user (so a user's order holds), goes
//! through the single-delivery path after the fast ones, in batch order, with the plugin pass's
//! answer as its first attempt (a failing plugin is not called twice). There a plugin retry
//! is parked at once instead of waited in place (waits would add up over a batch), so RETRY
//! only means the sidecar failed past its retry budget: the batch's remaining entries then
//! answer RETRY unprocessed, and the batch is held at most one retry budget.
//!
//! Failures: the bulk read failing answers RETRY for the batch (nothing was written). The bulk
//! save of the pending records failing (a rival delivery's record, or daprd's 500 for
//! first-write on an existing key), or the publish being refused, sends the fast entries down the
//! single path, where each finds the record it or a rival saved and replays it: nothing is ever
//! published in two versions. The publish staying unavailable answers RETRY for the batch; the
//! pending records make the redelivery republish the same bytes.
//!
//! Plugin instances: `--bulk-instance` says which entries share one (`InstanceScope`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tracing::Instrument as _;

use super::outcome::batch_records;
use super::parking::holds_events;
use super::prefetch::{self, Held};
use super::recorded::{RecordedEmit, publish_request, recorded, state_key};
use super::routing::Routing;
use super::timers::{self, RecordedTimer, is_pending};
use super::{Pipeline, delivery};
use crate::config::InstanceScope;
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::plugin::bindings::timed::{TimedOutcome, TimerChange};
use crate::plugin::bindings::{Outcome, Subscription};
use crate::plugin::{CallError, Generation};
use crate::sidecar::{Concurrency, PublishRequest, SaveItem, SidecarError, StateEntry};

/// An entry the fast path may take, pending its reads.
struct Fast {
    /// The outcome record's key; `None` when the dedupe key is empty (nothing recorded).
    record_key: Option<String>,
    emits: Vec<RecordedEmit>,
    timers: Vec<RecordedTimer>,
    /// The keys its single delivery would read (prefetch.rs).
    reads: Vec<(String, Held)>,
}

impl Pipeline {
    /// Runs a decoded bulk batch that arrived on `sub`: one status per entry, in order.
    pub async fn process_batch(&self, sub: &Subscription, batch: &[Incoming]) -> Vec<Status> {
        let span = tracing::info_span!(
            "bulk_delivery",
            topic = %sub.topic,
            entries = batch.len(),
            plugin = tracing::field::Empty,
        );
        self.batch_inner(sub, batch).instrument(span).await
    }

    async fn batch_inner(&self, sub: &Subscription, batch: &[Incoming]) -> Vec<Status> {
        let routings: Vec<Routing> = batch.iter().map(|i| Routing::read(&i.data)).collect();
        let generation = self.registry.current();
        tracing::Span::current().record("plugin", generation.plugin.label());
        let answers = self.call_batch(&generation, sub, batch, &routings).await;
        let mut plans: Vec<Option<Fast>> = answers
            .iter()
            .zip(batch.iter().zip(&routings))
            .map(|(answer, (incoming, routing))| {
                self.plan(&generation, sub, incoming, routing, answer.as_ref().ok()?)
            })
            .collect();

        // One read for every key a fast entry depends on.
        let mut keys: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for (key, _) in plans.iter().flatten().flat_map(|p| &p.reads) {
            if seen.insert(key.as_str()) {
                keys.push(key.clone());
            }
        }
        let found = match self.read_all(&keys).await {
            Ok(found) => found,
            Err(e) => {
                return self.all(
                    sub,
                    batch,
                    self.sidecar_failed("reading the batch's records", e),
                );
            }
        };

        // Fast or single, in order; a user's entries after a single one are single too.
        let mut single_users: HashSet<Option<&str>> = HashSet::new();
        let mut claimed: HashSet<String> = HashSet::new();
        for (plan, routing) in plans.iter_mut().zip(&routings) {
            let user = routing.user_id.as_deref();
            let fast = plan.take().filter(|p| {
                !single_users.contains(&user)
                    && p.reads
                        .iter()
                        .all(|(key, held)| allows_fast(*held, found.get(key)))
                    && p.record_key
                        .as_ref()
                        .is_none_or(|k| claimed.insert(k.clone()))
            });
            if fast.is_none() {
                tracing::debug!(user, "entry takes the single path");
                single_users.insert(user);
            }
            *plan = fast;
        }

        let mut statuses: Vec<Option<Status>> = vec![None; batch.len()];
        match self.publish_fast(sub, &generation, &plans).await {
            FastEnd::Done => {
                for (status, plan) in statuses.iter_mut().zip(&plans) {
                    if plan.is_some() {
                        *status = Some(Status::Success);
                        self.metrics.delivery(&sub.topic, Status::Success);
                    }
                }
            }
            FastEnd::Single => {}
            FastEnd::Answer(status) => return self.all(sub, batch, status),
        }

        // The single path, in batch order, for whatever the fast path did not take. Plugin
        // retries park at once (a batch must not add up in-place waits), so a RETRY here means
        // the sidecar failed past its retry budget: the rest of the batch is answered RETRY
        // rather than spending that budget again per entry, and daprd re-sends them.
        // Each takes the pass's answer as its first attempt: the plugin is not called twice.
        let mut failed = false;
        for ((status, incoming), answer) in statuses.iter_mut().zip(batch).zip(answers) {
            if status.is_some() {
                continue;
            }
            let answer = if failed {
                self.metrics.delivery(&sub.topic, Status::Retry);
                Status::Retry
            } else {
                let first = Some((generation.clone(), answer));
                self.process_waiting(sub, incoming, Duration::ZERO, first)
                    .await
            };
            if answer == Status::Retry && !failed {
                tracing::info!(event = %incoming.id, "an entry must be retried; retrying the rest of the batch after it");
                failed = true;
            }
            *status = Some(answer);
        }
        statuses
            .into_iter()
            .map(|s| s.unwrap_or(Status::Retry))
            .collect()
    }

    /// The plugin's answer for every entry, on instances shared as `--bulk-instance` says.
    async fn call_batch(
        &self,
        generation: &std::sync::Arc<Generation>,
        sub: &Subscription,
        batch: &[Incoming],
        routings: &[Routing],
    ) -> Vec<Result<TimedOutcome, CallError>> {
        // Entries with the same key share an instance; groups keep the batch's order.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of: HashMap<(usize, Option<&str>), usize> = HashMap::new();
        for (index, routing) in routings.iter().enumerate() {
            let key = match self.bulk_instance {
                InstanceScope::Entry => (index, None),
                InstanceScope::User => (0, routing.user_id.as_deref()),
                InstanceScope::Batch => (0, None),
            };
            let group = *group_of.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(index);
        }
        let deliveries = groups
            .iter()
            .map(|g| g.iter().map(|&i| delivery(sub, &batch[i], 1)).collect())
            .collect();
        let started = std::time::Instant::now();
        let results = generation.handle_batch(deliveries).await;
        let each = started.elapsed() / u32::try_from(batch.len().max(1)).unwrap_or(u32::MAX);
        let mut answers: Vec<Option<Result<TimedOutcome, CallError>>> =
            (0..batch.len()).map(|_| None).collect();
        for (group, results) in groups.iter().zip(results) {
            for (&index, result) in group.iter().zip(results) {
                self.metrics.plugin_call(each);
                // A failed call goes the single path, which counts it and retries it under
                // the policy.
                answers[index] = Some(result);
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every entry is in one group"))
            .collect()
    }

    /// The fast-path plan for one answer, or `None` when the single path must handle it.
    fn plan(
        &self,
        generation: &Generation,
        sub: &Subscription,
        incoming: &Incoming,
        routing: &Routing,
        answer: &TimedOutcome,
    ) -> Option<Fast> {
        let TimedOutcome {
            outcome: Outcome::Done(handled),
            timers: changes,
        } = answer
        else {
            return None;
        };
        let policy = &generation.plugin.effects;
        let refused = policy.check(sub, &handled.emits).is_err()
            || routing.foreign_key(&handled.emits).is_some()
            || timers::refused(policy, sub, routing, &handled.emits, changes).is_some();
        if refused {
            return None;
        }
        // A timer set goes the single path, which records and schedules it.
        if changes.iter().any(|c| matches!(c, TimerChange::Set(_))) {
            return None;
        }
        let user = routing.user_id.as_deref().unwrap_or_default();
        let trace = incoming.trace.as_ref();
        let timers = timers::record(changes, user, &self.app_id, trace);
        let reads = prefetch::reads(self, routing, handled, changes);
        let record_key = state_key(&handled.dedupe_key);
        let emits = handled
            .emits
            .iter()
            .map(|e| recorded(e, &self.app_id, trace))
            .collect();
        Some(Fast {
            record_key,
            emits,
            timers,
            reads,
        })
    }

    /// Records, publishes and marks done every fast entry (`plans`' `Some`s).
    async fn publish_fast(
        &self,
        sub: &Subscription,
        generation: &Generation,
        plans: &[Option<Fast>],
    ) -> FastEnd {
        let fast: Vec<&Fast> = plans.iter().flatten().collect();
        if fast.is_empty() {
            return FastEnd::Single;
        }
        let store = self.state_store.as_str();
        let mut pending = Vec::new();
        let mut done = Vec::new();
        for plan in &fast {
            let Some(key) = &plan.record_key else {
                continue;
            };
            let (record, mark) = batch_records(generation, plan.emits.clone(), plan.timers.clone());
            let item = |value: Bytes, concurrency| SaveItem {
                key: key.clone(),
                value,
                concurrency,
                ttl: Some(self.record_ttl),
            };
            pending.push(item(record, Concurrency::FirstWrite));
            done.push(item(mark, Concurrency::LastWrite));
        }
        if !pending.is_empty() {
            // Not retried in place: daprd answers first-write on an existing key with a 500.
            if let Err(e) = self.sidecar.save_bulk_state(store, pending).await {
                tracing::info!(
                    "saving the batch's outcome records failed ({e}); handling its entries one by one"
                );
                return match e {
                    SidecarError::Misconfigured(_) => {
                        FastEnd::Answer(self.sidecar_failed("saving the batch's records", e))
                    }
                    _ => FastEnd::Single,
                };
            }
        }
        let messages: Vec<PublishRequest> = fast
            .iter()
            .flat_map(|plan| &plan.emits)
            .map(|emit| publish_request(&sub.pubsub, emit))
            .collect();
        if !messages.is_empty() {
            let what = "publishing the batch's emits";
            match self
                .with_retries(what, || self.sidecar.publish_bulk(messages.clone()))
                .await
            {
                Ok(()) => {}
                // One emit the broker will never take: each entry's own delivery dead-letters
                // it, and replays the others' records.
                Err(SidecarError::Refused(why)) => {
                    tracing::info!("{what}: refused ({why}); handling the entries one by one");
                    return FastEnd::Single;
                }
                Err(e) => return FastEnd::Answer(self.sidecar_failed(what, e)),
            }
        }
        if !done.is_empty() {
            let what = "marking the batch's outcomes done";
            if let Err(e) = self
                .with_retries(what, || self.sidecar.save_bulk_state(store, done.clone()))
                .await
            {
                tracing::warn!("{what} failed ({e}); a redelivery would republish the same events");
            }
        }
        FastEnd::Done
    }

    /// The same status for every entry of the batch, counted.
    fn all(&self, sub: &Subscription, batch: &[Incoming], status: Status) -> Vec<Status> {
        for _ in batch {
            self.metrics.delivery(&sub.topic, status);
        }
        vec![status; batch.len()]
    }
}

/// How the fast path ended.
enum FastEnd {
    /// Every fast entry is handled.
    Done,
    /// Nothing published by the fast path that a single delivery would not replay: the fast
    /// entries go the single path too.
    Single,
    /// The sidecar failed: every entry gets this answer.
    Answer(Status),
}

/// Whether a read found what lets an entry take the fast path: no queued events, no record,
/// no pending timer to cancel (cancelling one is a write).
fn allows_fast(held: Held, found: Option<&Option<StateEntry>>) -> bool {
    let Some(found) = found else {
        return false;
    };
    match (held, found) {
        (_, None) => true,
        (Held::Queue, Some(entry)) => !holds_events(entry),
        (Held::CancelledTimer, Some(entry)) => !is_pending(entry),
        (Held::Record, Some(_)) => false,
    }
}
