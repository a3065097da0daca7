//! One delivery, start to finish: plugin call, retries, publish, idempotency, dead letters.
//!
//! Contract (docs/architecture.md "One delivery"): nothing is acknowledged before its effects are
//! durable. A delivery answers
//! - `Success` once its outcome is recorded, published and marked done (`outcome.rs`: the first
//!   recorded outcome wins, a redelivery replays it), or once a dead-letter record is published
//!   (`dead_letter.rs`), or when its dedupe key was already handled;
//! - `Retry` when the sidecar stays unavailable past the in-place retry budget
//!   (`sidecar_calls.rs`), is misconfigured (401/403/404), or shutdown interrupted a wait:
//!   daprd redelivers, and nothing new is published twice;
//! - `Drop` only when there is no dead-letter topic to take a dead letter (daprd then applies
//!   its own dead-letter settings), or the sidecar refused even the smallest dead-letter record.
//!
//! Dead-lettered, and acknowledged, never retried: a plugin reject; plugin output the host
//! refuses (undeclared effects, limits, a partition key other than the input's `user_id`,
//! `routing.rs`); a request the sidecar refuses for good (a record too large, a 4xx).
//!
//! Timers a `done` outcome sets or cancels (reminders) are checked like its emits, recorded
//! with them, and applied after they are published (`timers.rs`).
//!
//! Plugin `retry` verdicts and plugin failures (trap, deadline, memory) are retried after the
//! delays of the event type's retry policy, each on the then-current generation (a swap may fix
//! it): a short delay in place, a longer one parked durably (`parking.rs`); when the delays are
//! spent the event is dead-lettered with every attempt's reason.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::InstanceScope;
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::dead_letter::DeadLetterReason;
use crate::metrics::Metrics;
use crate::plugin::bindings::timed::TimedOutcome;
use crate::plugin::bindings::{Delivery, Handled, Outcome, Subscription};
use crate::plugin::{CallError, Generation, Registry};
use crate::sidecar::Sidecar;

mod bulk;
mod dead_letter;
pub(crate) mod dead_letter_log;
mod outcome;
mod parking;
mod prefetch;
mod recorded;
mod routing;
mod sidecar_calls;
mod timers;

use routing::Routing;

pub struct Pipeline {
    pub sidecar: Sidecar,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub state_store: String,
    pub app_id: String,
    pub shutdown: CancellationToken,
    /// How long a transient sidecar failure is retried inside one delivery (sidecar_calls.rs).
    pub sidecar_retry_budget: Duration,
    /// Also honour idempotency records `<prefix><event_id>` written by a previous service
    /// (the seed design's `event-processed-`), read only (outcome.rs).
    pub legacy_dedupe_prefix: Option<String>,
    /// TTL of every idempotency and outcome record (`--record-ttl-secs`).
    pub record_ttl: Duration,
    /// The longest plugin retry delay waited inside a delivery; longer ones are parked
    /// (`parking.rs`, `--max-in-place-retry-ms`).
    pub max_in_place_wait: Duration,
    /// Which entries of a bulk batch share a plugin instance (`--bulk-instance`, bulk.rs).
    pub bulk_instance: InstanceScope,
}

impl Pipeline {
    /// Runs one delivery that arrived on `sub`.
    ///
    /// Everything it logs is inside one `delivery` span carrying the CloudEvent id, the topic,
    /// the trace context and the plugin that handles it, so every line (text or JSON) says which
    /// delivery and which plugin it is about.
    pub async fn process(&self, sub: &Subscription, incoming: &Incoming) -> Status {
        self.process_waiting(sub, incoming, self.max_in_place_wait, None)
            .await
    }

    /// [`process`](Self::process), waiting plugin retry delays up to `in_place` inside the
    /// delivery and parking longer ones; `first`, when given, is the first attempt's answer
    /// (made by a bulk batch's plugin pass), so the plugin is not called again for it.
    async fn process_waiting(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        in_place: Duration,
        first: Option<FirstAnswer>,
    ) -> Status {
        let span = tracing::info_span!(
            "delivery",
            event = %incoming.id,
            topic = %sub.topic,
            plugin = tracing::field::Empty,
            plugin_version = tracing::field::Empty,
            traceparent = tracing::field::Empty,
        );
        if let Some(trace) = &incoming.trace {
            span.record("traceparent", trace.traceparent.as_str());
        }
        crate::telemetry::continue_trace(&span, incoming.trace.as_ref());
        let status = self
            .process_inner(sub, incoming, in_place, first)
            .instrument(span)
            .await;
        self.metrics.delivery(&sub.topic, status);
        status
    }

    /// Names the attempt's plugin in the delivery span; again only if a swap changed it.
    fn record_plugin(generation: &Generation, last: &mut Option<u64>) {
        if *last != Some(generation.number) {
            let span = tracing::Span::current();
            span.record("plugin", generation.plugin.name.as_str());
            span.record("plugin_version", generation.plugin.version.as_str());
            *last = Some(generation.number);
        }
    }

    async fn process_inner(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        in_place: Duration,
        first: Option<FirstAnswer>,
    ) -> Status {
        let routing = Routing::read(&incoming.data);
        // The plugin first: a `done` answer names every key the delivery reads, and they are
        // read at once (prefetch.rs).
        let (generation, answer) = match first {
            Some(first) => first,
            None => {
                let generation = self.registry.current();
                let answer = self.call_plugin(&generation, sub, incoming, 1).await;
                (generation, answer)
            }
        };
        let found = match &answer {
            Ok(TimedOutcome {
                outcome: Outcome::Done(handled),
                timers,
            }) => {
                let keys: Vec<String> = prefetch::reads(self, &routing, handled, timers)
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                match self.read_all(&keys).await {
                    Ok(found) => Some(found),
                    Err(e) => return self.sidecar_failed("reading the delivery's records", e),
                }
            }
            _ => None,
        };
        if let Some(status) = self
            .wait_behind(sub, incoming, &routing, found.as_ref())
            .await
        {
            return status;
        }
        let first = Attempt {
            number: 1,
            reasons: Vec::new(),
            in_place,
        };
        let answered = Answered {
            generation,
            answer,
            found,
        };
        match self
            .attempts(sub, incoming, &routing, first, Some(answered))
            .await
        {
            Step::Finished(status) => status,
            Step::Park {
                attempt,
                reasons,
                delay,
            } => {
                self.park(sub, incoming, &routing, attempt, reasons, delay)
                    .await
            }
        }
    }

    /// One plugin call for attempt `attempt` at `incoming`, timed.
    async fn call_plugin(
        &self,
        generation: &Arc<Generation>,
        sub: &Subscription,
        incoming: &Incoming,
        attempt: u32,
    ) -> Result<TimedOutcome, CallError> {
        let started = std::time::Instant::now();
        let answer = generation.handle(delivery(sub, incoming, attempt)).await;
        self.metrics.plugin_call(started.elapsed());
        answer
    }

    /// Calls the plugin from attempt `first.number` on (taking `answered` as that attempt's
    /// answer when given), waiting retry delays up to `first.in_place` in place, until the
    /// event is finished or a delay is too long to hold the delivery for (`parking.rs`).
    async fn attempts(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        routing: &Routing,
        first: Attempt,
        mut answered: Option<Answered>,
    ) -> Step {
        let Attempt {
            number,
            mut reasons,
            in_place,
        } = first;
        let mut attempt = number.max(1);
        let mut named = None;
        loop {
            let (generation, answer, found) = match answered.take() {
                Some(a) => (a.generation, a.answer, a.found),
                None => {
                    let generation = self.registry.current();
                    let answer = self.call_plugin(&generation, sub, incoming, attempt).await;
                    (generation, answer, None)
                }
            };
            Self::record_plugin(&generation, &mut named);
            let reason = match answer {
                // Declared effects only (plugin/effects.rs): an emit the host refuses
                // dead-letters the whole delivery with the reason; nothing is published.
                Ok(TimedOutcome {
                    outcome: Outcome::Done(handled),
                    timers: changes,
                }) => {
                    let policy = &generation.plugin.effects;
                    let refused = match policy.check(sub, &handled.emits) {
                        Err(refused) => Some(refused.problem()),
                        Ok(()) => routing.foreign_key(&handled.emits),
                    }
                    .or_else(|| timers::refused(policy, sub, routing, &handled.emits, &changes));
                    let status = match refused {
                        Some(problem) => {
                            let reason = DeadLetterReason::EffectRefused;
                            self.dead_letter(
                                sub,
                                incoming,
                                &generation,
                                reason,
                                vec![problem],
                                attempt,
                            )
                            .await
                        }
                        None => {
                            // `refused` above made sure a timer has a user to be kept under.
                            let user = routing.user_id.as_deref().unwrap_or_default();
                            let trace = incoming.trace.as_ref();
                            let kept = timers::record(&changes, user, &self.app_id, trace);
                            let done = Done {
                                generation: &generation,
                                handled,
                                timers: kept,
                                attempt,
                            };
                            self.finish(sub, incoming, done, found.as_ref()).await
                        }
                    };
                    return Step::Finished(status);
                }
                Ok(TimedOutcome {
                    outcome: Outcome::Reject(problems),
                    ..
                }) => {
                    let reason = DeadLetterReason::Rejected;
                    return Step::Finished(
                        self.dead_letter(sub, incoming, &generation, reason, problems, attempt)
                            .await,
                    );
                }
                Ok(TimedOutcome {
                    outcome: Outcome::Retry(problem),
                    ..
                }) => format!(
                    "the plugin asked to retry: {}: {}",
                    problem.code, problem.message
                ),
                Err(error) => {
                    self.metrics.plugin_failure(&error);
                    tracing::warn!(event = %incoming.id, attempt, "{error}");
                    error.to_string()
                }
            };
            reasons.push(reason.clone());
            let delays = retry_delays(&generation, routing.event_type.as_deref(), &incoming.kind);
            let Some(delay) = delays.get(attempt as usize - 1) else {
                let why = format!("{reason} (after {attempt} attempts)");
                let mut problems = vec![dead_letter::host_problem("retries-exhausted", why)];
                problems.extend(reasons.iter().enumerate().map(|(i, r)| {
                    dead_letter::host_problem("attempt-failed", format!("attempt {}: {r}", i + 1))
                }));
                let exhausted = DeadLetterReason::RetriesExhausted;
                return Step::Finished(
                    self.dead_letter(sub, incoming, &generation, exhausted, problems, attempt)
                        .await,
                );
            };
            let delay = Duration::from_millis(u64::from(*delay));
            if delay > in_place {
                return Step::Park {
                    attempt: attempt + 1,
                    reasons,
                    delay,
                };
            }
            tracing::info!(event = %incoming.id, attempt, delay_ms = delay.as_millis() as u64, "retrying: {reason}");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.cancelled() => return Step::Finished(Status::Retry),
            }
            attempt += 1;
        }
    }
}

/// The plugin's view of one attempt at `incoming`.
fn delivery(sub: &Subscription, incoming: &Incoming, attempt: u32) -> Delivery {
    Delivery {
        id: incoming.id.clone(),
        pubsub: sub.pubsub.clone(),
        topic: sub.topic.clone(),
        kind: incoming.kind.clone(),
        source: incoming.source.clone(),
        data: incoming.data.clone(),
        attempt,
    }
}

/// The first attempt's answer, and the plugin generation that gave it.
type FirstAnswer = (Arc<Generation>, Result<TimedOutcome, CallError>);

/// An attempt's answer made before the run of attempts started, with what the delivery's
/// one read found for it (prefetch.rs).
struct Answered {
    generation: Arc<Generation>,
    answer: Result<TimedOutcome, CallError>,
    found: Option<Found>,
}

/// What one state read found, by key (prefetch.rs); a key that was not read is absent.
type Found = std::collections::HashMap<String, Option<crate::sidecar::StateEntry>>;

/// A `done` answer the host accepted: what `finish` records and publishes.
struct Done<'a> {
    generation: &'a Generation,
    handled: Handled,
    timers: Vec<timers::RecordedTimer>,
    attempt: u32,
}

/// Where a run of attempts starts.
struct Attempt {
    /// The attempt to make first (1 for a new event).
    number: u32,
    /// The earlier attempts' failures.
    reasons: Vec<String>,
    /// The longest retry delay to wait inside the delivery; longer ones park.
    in_place: Duration,
}

/// Where a run of attempts ended.
enum Step {
    /// Answered: handled, dead-lettered, or RETRY for daprd.
    Finished(Status),
    /// The next attempt (`attempt`) is due after `delay`, too long to hold the delivery.
    Park {
        attempt: u32,
        reasons: Vec<String>,
        delay: Duration,
    },
}

/// The retry delays for this event: the policy for its `event_type`, else for its CloudEvent
/// type, else the `*` policy, else none (dead-letter at once).
fn retry_delays<'a>(
    generation: &'a Generation,
    event_type: Option<&str>,
    cloud_event_type: &str,
) -> &'a [u32] {
    let policies = &generation.plugin.manifest.retry_policies;
    let find = |t: &str| {
        policies
            .iter()
            .find(|p| p.event_type == t)
            .map(|p| p.delays_ms.as_slice())
    };
    event_type
        .and_then(find)
        .or_else(|| find(cloud_event_type))
        .or_else(|| find("*"))
        .unwrap_or(&[])
}
