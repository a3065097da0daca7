//! One delivery, start to finish: plugin call, retries, publish, idempotency, dead letters.
//!
//! Contract (docs/architecture.md "One delivery"): nothing is acknowledged before its effects are
//! durable. A delivery answers
//! - `Success` once its emits are published and its dedupe record is saved, or once a
//!   dead-letter record is published, or when its dedupe key was already handled;
//! - `Retry` when the sidecar failed (publish or state 5xx, refused, timeout) or shutdown
//!   interrupted a retry wait: daprd redelivers, and the deterministic plugin produces the same
//!   emits with the same ids, so a redelivery never publishes anything new;
//! - `Drop` only for a reject or an exhausted retry on a subscription without a dead-letter topic
//!   (daprd then applies its own dead-letter settings or acks).
//!
//! Plugin `retry` verdicts and plugin failures (trap, deadline, memory) are retried in-process
//! after the delays of the event type's retry policy, each on the then-current generation (a swap
//! may fix it); when the delays are spent the event is dead-lettered. The one field of the task
//! event the host reads is its top-level `event_type`, to pick that policy.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::dapr::Status;
use crate::dead_letter::DeadLetterReason;
use crate::dapr::envelope::Incoming;
use crate::metrics::Metrics;
use crate::plugin::bindings::{Delivery, Outcome, Subscription};
use crate::plugin::{Generation, Registry};
use crate::sidecar::Sidecar;

mod dead_letter;
mod outcome;
mod sidecar_calls;

pub struct Pipeline {
    pub sidecar: Sidecar,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub state_store: String,
    pub app_id: String,
    pub shutdown: CancellationToken,
    /// How long a transient sidecar failure is retried inside one delivery (sidecar_calls.rs).
    pub sidecar_retry_budget: Duration,
}

impl Pipeline {
    /// Runs one delivery that arrived on `sub`.
    pub async fn process(&self, sub: &Subscription, incoming: &Incoming) -> Status {
        let status = self.process_inner(sub, incoming).await;
        self.metrics.delivery(status);
        status
    }

    async fn process_inner(&self, sub: &Subscription, incoming: &Incoming) -> Status {
        let mut attempt = 1u32;
        loop {
            let generation = self.registry.current();
            let delivery = Delivery {
                id: incoming.id.clone(),
                pubsub: sub.pubsub.clone(),
                topic: sub.topic.clone(),
                kind: incoming.kind.clone(),
                source: incoming.source.clone(),
                data: incoming.data.clone(),
                attempt,
            };
            let reason = match generation.handle(delivery).await {
                // Declared effects only (plugin/effects.rs): an emit the host refuses
                // dead-letters the whole delivery with the reason; nothing is published.
                Ok(Outcome::Done(handled)) => {
                    if let Err(refused) = generation.plugin.effects.check(sub, &handled.emits) {
                        let reason = DeadLetterReason::EffectRefused;
                        return self
                            .dead_letter(sub, incoming, &generation, reason, vec![refused.problem()], attempt)
                            .await;
                    }
                    return self.finish(sub, incoming, &generation, handled, attempt).await;
                }
                Ok(Outcome::Reject(problems)) => {
                    let reason = DeadLetterReason::Rejected;
                    return self
                        .dead_letter(sub, incoming, &generation, reason, problems, attempt)
                        .await;
                }
                Ok(Outcome::Retry(problem)) => format!(
                    "the plugin asked to retry: {}: {}",
                    problem.code, problem.message
                ),
                Err(error) => {
                    self.metrics.plugin_failure(&error);
                    tracing::warn!(event = %incoming.id, attempt, "{error}");
                    error.to_string()
                }
            };
            let delays = retry_delays(&generation, &incoming.data, &incoming.kind);
            let Some(delay) = delays.get(attempt as usize - 1) else {
                let why = format!("{reason} (after {attempt} attempts)");
                let problem = dead_letter::host_problem("retries-exhausted", why);
                let exhausted = DeadLetterReason::RetriesExhausted;
                return self
                    .dead_letter(sub, incoming, &generation, exhausted, vec![problem], attempt)
                    .await;
            };
            tracing::info!(event = %incoming.id, attempt, delay_ms = delay, "retrying: {reason}");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(u64::from(*delay))) => {}
                _ = self.shutdown.cancelled() => return Status::Retry,
            }
            attempt += 1;
        }
    }
}

/// The retry delays for this event: the policy for its `event_type`, else for its CloudEvent
/// type, else the `*` policy, else none (dead-letter at once).
fn retry_delays<'a>(generation: &'a Generation, data: &str, cloud_event_type: &str) -> &'a [u32] {
    let event_type = serde_json::from_str::<Value>(data).ok().and_then(|v| {
        v.get("event_type")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let policies = &generation.plugin.manifest.retry_policies;
    let find = |t: &str| {
        policies
            .iter()
            .find(|p| p.event_type == t)
            .map(|p| p.delays_ms.as_slice())
    };
    event_type
        .as_deref()
        .and_then(find)
        .or_else(|| find(cloud_event_type))
        .or_else(|| find("*"))
        .unwrap_or(&[])
}
