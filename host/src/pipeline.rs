//! One delivery, start to finish: plugin call, retries, publish, idempotency, dead letters.
//!
//! Contract (ARCHITECTURE.md "Data flow"): nothing is acknowledged before its effects are
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

use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::dapr::Status;
use crate::dead_letter::DeadLetterReason;
use crate::dapr::envelope::Incoming;
use crate::metrics::Metrics;
use crate::plugin::bindings::{Delivery, Emit, Handled, Outcome, Problem, Subscription};
use crate::plugin::{Generation, Registry};
use crate::sidecar::{Concurrency, PublishRequest, Sidecar, SidecarError};

/// Why a delivery ends up dead-lettered.
enum Failure {
    Rejected(Vec<Problem>),
    RetriesExhausted(String),
}

pub struct Pipeline {
    pub sidecar: Sidecar,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub state_store: String,
    pub app_id: String,
    pub shutdown: CancellationToken,
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
                        let failure = Failure::Rejected(vec![refused.problem()]);
                        return self
                            .dead_letter(sub, incoming, &generation, failure, attempt)
                            .await;
                    }
                    return self.finish(sub, &generation, handled).await;
                }
                Ok(Outcome::Reject(problems)) => {
                    return self
                        .dead_letter(
                            sub,
                            incoming,
                            &generation,
                            Failure::Rejected(problems),
                            attempt,
                        )
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
                let failure =
                    Failure::RetriesExhausted(format!("{reason} (after {attempt} attempts)"));
                return self
                    .dead_letter(sub, incoming, &generation, failure, attempt)
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

    /// Publishes the emits, then records the dedupe key; a key seen before publishes nothing.
    async fn finish(
        &self,
        sub: &Subscription,
        generation: &Generation,
        handled: Handled,
    ) -> Status {
        let key =
            (!handled.dedupe_key.is_empty()).then(|| format!("processed-{}", handled.dedupe_key));
        if let Some(key) = &key {
            match self.sidecar.get_state(&self.state_store, key).await {
                Ok(Some(_)) => {
                    self.metrics.duplicate();
                    tracing::debug!(dedupe_key = %handled.dedupe_key, "duplicate delivery; already handled");
                    return Status::Success;
                }
                Ok(None) => {}
                Err(e) => return self.sidecar_failed("reading the dedupe record", e),
            }
        }
        for emit in &handled.emits {
            if let Err(e) = self
                .sidecar
                .publish(emit_request(sub, emit, &self.app_id))
                .await
            {
                return self.sidecar_failed("publishing an emitted event", e);
            }
        }
        let Some(key) = key else {
            return Status::Success;
        };
        let record = json!({
            "plugin": generation.plugin.label(),
            "emits": handled.emits.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            "processed_at": chrono::Utc::now().to_rfc3339(),
        });
        match self
            .sidecar
            .save_state(
                &self.state_store,
                &key,
                Bytes::from(record.to_string()),
                Concurrency::FirstWrite,
            )
            .await
        {
            Ok(()) => Status::Success,
            // A concurrent duplicate recorded it first (409), or the store answered 500 for
            // first-write on an existing key (Redis, Postgres): re-read to tell which.
            Err(SidecarError::Conflict(_) | SidecarError::Unavailable(_)) => {
                match self.sidecar.get_state(&self.state_store, &key).await {
                    Ok(Some(_)) => Status::Success,
                    Ok(None) => self.sidecar_failed(
                        "saving the dedupe record",
                        SidecarError::Unavailable("the save failed".into()),
                    ),
                    Err(e) => self.sidecar_failed("saving the dedupe record", e),
                }
            }
            Err(e) => self.sidecar_failed("saving the dedupe record", e),
        }
    }

    async fn dead_letter(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        generation: &Generation,
        failure: Failure,
        attempt: u32,
    ) -> Status {
        let (reason, problems) = match failure {
            Failure::Rejected(problems) => (DeadLetterReason::Rejected, problems),
            Failure::RetriesExhausted(why) => (
                DeadLetterReason::RetriesExhausted,
                vec![Problem {
                    code: "retries-exhausted".into(),
                    message: why,
                    pointer: None,
                }],
            ),
        };
        self.metrics.dead_letter(reason);
        let Some(topic) = &sub.dead_letter_topic else {
            tracing::warn!(event = %incoming.id, reason = reason.as_str(), "no dead-letter topic on {}; answering DROP", sub.topic);
            return Status::Drop;
        };
        let original: Value = serde_json::from_str(&incoming.data)
            .unwrap_or_else(|_| Value::String(incoming.data.clone()));
        let record = json!({
            "specversion": "1.0",
            "id": format!("{}:dead-letter", incoming.id),
            "source": self.app_id,
            "type": "task-events.dead-letter",
            "datacontenttype": "application/json",
            "data": {
                "reason": reason.as_str(),
                "problems": problems.iter().map(|p| json!({"code": p.code, "message": p.message, "pointer": p.pointer})).collect::<Vec<_>>(),
                "plugin": {"name": generation.plugin.name, "version": generation.plugin.version, "sha256": generation.plugin.sha256},
                "attempt": attempt,
                "original": {"id": incoming.id, "type": incoming.kind, "source": incoming.source, "topic": sub.topic, "pubsub": sub.pubsub, "data": original},
            },
        });
        tracing::warn!(event = %incoming.id, reason = reason.as_str(), topic = %topic, problems = problems.len(), "dead-lettering");
        let request = PublishRequest {
            pubsub: sub.pubsub.clone(),
            topic: topic.clone(),
            content_type: "application/cloudevents+json".into(),
            body: Bytes::from(record.to_string()),
            metadata: vec![],
        };
        match self.sidecar.publish(request).await {
            Ok(()) => Status::Success,
            Err(e) => self.sidecar_failed("publishing a dead-letter record", e),
        }
    }

    fn sidecar_failed(&self, what: &str, error: SidecarError) -> Status {
        self.metrics.sidecar_error();
        tracing::warn!("{what} failed: {error}; answering RETRY");
        Status::Retry
    }
}

/// The CloudEvent the host publishes for one emit: the plugin's deterministic id and type,
/// partitioned by the emit's key.
fn emit_request(sub: &Subscription, emit: &Emit, app_id: &str) -> PublishRequest {
    let data: Value =
        serde_json::from_str(&emit.data).unwrap_or_else(|_| Value::String(emit.data.clone()));
    let event = json!({
        "specversion": "1.0",
        "id": emit.id,
        "source": app_id,
        "type": emit.kind,
        "datacontenttype": "application/json",
        "data": data,
    });
    PublishRequest {
        pubsub: sub.pubsub.clone(),
        topic: emit.topic.clone(),
        content_type: "application/cloudevents+json".into(),
        body: Bytes::from(event.to_string()),
        metadata: vec![("partitionKey".into(), emit.key.clone())],
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
