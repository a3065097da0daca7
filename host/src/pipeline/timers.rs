//! Timers: emits published later (the task plugin's reminders), kept durably until they are due.
//!
//! Contract:
//! - A plugin sets and cancels timers with a `done` outcome (WIT `timers`). They are checked
//!   like emits (declared topics, caps, the partition key must be the input's `user_id`) plus a
//!   parseable RFC 3339 `at`; one the host refuses dead-letters the delivery, with the reason.
//! - The changes are part of the outcome record (outcome.rs) and applied after its emits are
//!   published, so a redelivery applies exactly the first outcome's changes again.
//! - A timer is named by its user and the plugin's name for it, hashed into one state key and
//!   job name, `timer-sha256-<hex>`: no plugin can touch another user's timers, and no name
//!   can make a key the store or the scheduler refuses.
//! - Set: the record `{user, name, at, pubsub, emit, state: pending}` is saved (TTL: until `at`
//!   plus `--record-ttl-secs`), then the job is scheduled for `at` (replacing a pending one). A
//!   timer set again with the emit it already published (same id) stays published: once.
//!   A timer set again after it was published, with the same emit or for the same time, stays
//!   published: a reminder goes out once, even when its task is renamed afterwards.
//! - Cancel: a pending record becomes `cancelled` (etag-guarded; nothing is written when there
//!   is no record, as for most tasks, which have no reminder). Records are never deleted, only
//!   expired by their TTL, so an etag is never reused while a firing may still hold it.
//! - Firing (`POST /job/timer-...`): a record not due yet (an older job) re-arms the job for its
//!   time. A due one re-arms the job a minute later first (a crash mid-way fires it again),
//!   publishes the emit, and marks the record published, etag-guarded so a reschedule or cancel
//!   that raced it is kept. That re-armed job then fires once more and finds nothing to do: it is
//!   not deleted, since a delete could remove a reschedule made meanwhile. A crash between the
//!   publish and the mark republishes the same bytes under the same id (at-least-once, as every
//!   publish). A publish the sidecar refuses for good is logged, counted and not retried.
//! - A job is never scheduled more than 30 days ahead (Go durations end at ~292 years, and
//!   daprd parses `dueTime` as one); a later timer's job fires, finds it not due, and re-arms.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dead_letter::host_problem;
use super::recorded::{RecordedEmit, key_part, recorded};
use super::routing::Routing;
use super::{Found, Pipeline};
use crate::plugin::bindings::timed::TimerChange;
use crate::plugin::bindings::{Emit, Problem, Subscription};
use crate::plugin::effects::EffectPolicy;
use crate::sidecar::{Concurrency, SidecarError, StateEntry};
use crate::trace_context::TraceContext;

/// How long a firing may take before its job fires again (a crash mid-way).
const WATCHDOG: Duration = Duration::from_secs(60);
/// Most timer changes one delivery may make.
pub(super) const MAX_TIMER_CHANGES: usize = 64;
/// Longest timer name, in bytes.
const MAX_NAME: usize = 256;
/// Longest `at`, in bytes (an RFC 3339 instant with nanoseconds and an offset is 35).
const MAX_AT: usize = 64;
/// Furthest a job is scheduled ahead; a later timer re-arms when this fires.
const MAX_JOB_WAIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// A timer change as the outcome record holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(super) enum RecordedTimer {
    Set {
        user: String,
        name: String,
        at: String,
        emit: RecordedEmit,
    },
    Cancel {
        user: String,
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TimerState {
    Pending,
    Published,
    Cancelled,
}

/// A pending (or published) timer in the state store, under [`timer_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TimerRecord {
    state: TimerState,
    user: String,
    name: String,
    at: String,
    pubsub: String,
    emit: RecordedEmit,
}

/// The state key and job name of a user's timer.
pub(super) fn timer_key(user: &str, name: &str) -> String {
    let both = serde_json::to_string(&[user, name]).expect("strings serialize");
    format!("timer-{}", key_part(&both))
}

/// Whether a stored timer is pending: cancelling it is a write (an unreadable one is ignored,
/// as `apply_timers` ignores it).
pub(super) fn is_pending(entry: &StateEntry) -> bool {
    serde_json::from_slice::<TimerRecord>(&entry.value)
        .is_ok_and(|record| record.state == TimerState::Pending)
}

/// The plugin's timer changes as the outcome record keeps them: under the input's `user`, each
/// emit as the CloudEvent it will be, in the delivery's trace.
pub(super) fn record(
    changes: &[TimerChange],
    user: &str,
    app_id: &str,
    trace: Option<&TraceContext>,
) -> Vec<RecordedTimer> {
    changes
        .iter()
        .map(|t| match t {
            TimerChange::Set(t) => RecordedTimer::Set {
                user: user.to_string(),
                name: t.name.clone(),
                at: t.at.clone(),
                emit: recorded(&t.emit, app_id, trace),
            },
            TimerChange::Cancel(name) => RecordedTimer::Cancel {
                user: user.to_string(),
                name: name.clone(),
            },
        })
        .collect()
}

/// The timers' emits, for the effect checks.
pub(super) fn timer_emits(timers: &[TimerChange]) -> Vec<Emit> {
    timers
        .iter()
        .filter_map(|t| match t {
            TimerChange::Set(t) => Some(t.emit.clone()),
            TimerChange::Cancel(_) => None,
        })
        .collect()
}

/// The first reason the host refuses these timer changes, if any. `emits` are the outcome's
/// own (already checked): the caps count them and the timers' emits together.
pub(super) fn refused(
    policy: &EffectPolicy,
    sub: &Subscription,
    routing: &Routing,
    emits: &[Emit],
    timers: &[TimerChange],
) -> Option<Problem> {
    if timers.is_empty() {
        return None;
    }
    let problem = |code: &str, message: String| Some(host_problem(code, message));
    if timers.len() > MAX_TIMER_CHANGES {
        let n = timers.len();
        return problem(
            "effect-refused:too-many-timers",
            format!(
                "the plugin made {n} timer changes for one delivery; the limit is {MAX_TIMER_CHANGES}"
            ),
        );
    }
    if routing.user_id.is_none() {
        return problem(
            "effect-refused:timer-without-user",
            "the plugin set or cancelled a timer, but the event has no string user_id to keep it under".into(),
        );
    }
    for (index, change) in timers.iter().enumerate() {
        let (name, at) = match change {
            TimerChange::Set(t) => (&t.name, Some(&t.at)),
            TimerChange::Cancel(name) => (name, None),
        };
        if name.is_empty() || name.len() > MAX_NAME {
            return problem(
                "effect-refused:bad-timer-name",
                format!(
                    "timer change {index} has a name of {} bytes; 1 to {MAX_NAME} are allowed",
                    name.len()
                ),
            );
        }
        if let Some(at) =
            at.filter(|at| at.len() > MAX_AT || DateTime::parse_from_rfc3339(at).is_err())
        {
            let at = at.chars().take(80).collect::<String>();
            return problem(
                "effect-refused:bad-timer-time",
                format!("timer {name:?} is due at {at:?}, which is not an RFC 3339 instant"),
            );
        }
    }
    let mut all = emits.to_vec();
    all.extend(timer_emits(timers));
    match policy.check(sub, &all) {
        Err(violation) => {
            let mut p = violation.problem();
            p.message = format!(
                "{} (emits from {} on are its timers')",
                p.message,
                emits.len()
            );
            Some(p)
        }
        Ok(()) => routing.foreign_key(&all),
    }
}

/// Write only over the value read at `etag` (any value when the store gives no etags).
fn guard(etag: &Option<String>) -> Concurrency {
    match etag {
        Some(etag) => Concurrency::IfMatch(etag.clone()),
        None => Concurrency::LastWrite,
    }
}

/// Milliseconds from now until `at` (0 when past or unreadable).
fn due_in(at: &str) -> Duration {
    let at = DateTime::parse_from_rfc3339(at).map(|t| t.with_timezone(&Utc));
    let ms = at.map_or(0, |t| (t - Utc::now()).num_milliseconds());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl Pipeline {
    /// Applies recorded timer changes. `Err` is how the delivery must end: a refusal (dead
    /// letter) or a failure daprd should redeliver.
    pub(super) async fn apply_timers(
        &self,
        sub: &Subscription,
        timers: &[RecordedTimer],
        found: Option<&Found>,
    ) -> Result<(), SidecarError> {
        for timer in timers {
            match timer {
                RecordedTimer::Cancel { user, name } => {
                    let key = timer_key(user, name);
                    let Some((record, etag)) = self.read_timer(&key, found).await? else {
                        continue;
                    };
                    if record.state != TimerState::Pending {
                        continue;
                    }
                    let cancelled = TimerRecord {
                        state: TimerState::Cancelled,
                        ..record
                    };
                    self.write_timer(&key, &cancelled, guard(&etag), self.record_ttl)
                        .await?;
                    self.metrics.timer("cancelled");
                }
                RecordedTimer::Set {
                    user,
                    name,
                    at,
                    emit,
                } => {
                    let key = timer_key(user, name);
                    let existing = self.read_timer(&key, None).await?.map(|(record, _)| record);
                    let fired = |r: &TimerRecord| {
                        r.state == TimerState::Published && (r.emit.id == emit.id || &r.at == at)
                    };
                    if existing.as_ref().is_some_and(fired) {
                        continue;
                    }
                    let record = TimerRecord {
                        state: TimerState::Pending,
                        user: user.clone(),
                        name: name.clone(),
                        at: at.clone(),
                        pubsub: sub.pubsub.clone(),
                        emit: emit.clone(),
                    };
                    let wait = due_in(at);
                    let ttl = wait.saturating_add(self.record_ttl);
                    self.write_timer(&key, &record, Concurrency::LastWrite, ttl)
                        .await?;
                    let what = "scheduling a timer";
                    self.with_retries(what, || {
                        self.sidecar.schedule_job(
                            &key,
                            wait.min(MAX_JOB_WAIT),
                            Bytes::from_static(b"{}"),
                        )
                    })
                    .await?;
                    self.metrics.timer("set");
                    tracing::info!(timer = %name, at = %at, event = %emit.id, "timer set");
                }
            }
        }
        Ok(())
    }

    /// The job `job` (`timer-...`) fired: publishes its emit if it is due and still pending.
    /// `Err` makes the scheduler fire it again.
    pub async fn fire_timer(&self, job: &str) -> Result<(), String> {
        let failed = |what: &str, e: SidecarError| format!("{what}: {e}");
        let (record, etag) = match self.read_timer(job, None).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(()), // long published or cancelled, and expired
            Err(e) => {
                // Should the scheduler give up on this firing, the re-armed job comes back.
                let _ = self
                    .sidecar
                    .schedule_job(job, WATCHDOG, Bytes::from_static(b"{}"))
                    .await;
                return Err(failed("reading the timer", e));
            }
        };
        if record.state != TimerState::Pending {
            return Ok(());
        }
        let wait = due_in(&record.at);
        let rearm = match wait.is_zero() {
            true => WATCHDOG,
            false => wait.min(MAX_JOB_WAIT),
        };
        let what = "re-arming the timer";
        self.with_retries(what, || {
            self.sidecar
                .schedule_job(job, rearm, Bytes::from_static(b"{}"))
        })
        .await
        .map_err(|e| failed(what, e))?;
        if !wait.is_zero() {
            return Ok(()); // early: an older job of a timer set later, or a clock ahead
        }
        let sub = Subscription {
            pubsub: record.pubsub.clone(),
            topic: record.emit.topic.clone(),
            route: String::new(),
            dead_letter_topic: None,
        };
        match self.publish_one(&sub, &record.emit).await {
            Ok(()) => self.metrics.timer("fired"),
            Err(SidecarError::Refused(why)) => {
                self.metrics.timer("refused");
                tracing::error!(job, timer = %record.name, event = %record.emit.id,
                    "the sidecar refused the timer's event for good; it is not retried: {why}");
            }
            Err(e) => return Err(failed("publishing the timer's event", e)),
        }
        let published = TimerRecord {
            state: TimerState::Published,
            ..record
        };
        match self
            .write_timer(job, &published, guard(&etag), self.record_ttl)
            .await
        {
            // Rescheduled or cancelled meanwhile: that change stands.
            Ok(()) | Err(SidecarError::Conflict(_)) => Ok(()),
            Err(e) => Err(failed("marking the timer published", e)),
        }
    }

    /// A timer's record and etag (from `found` when it covers the key); `None` when there is
    /// none (or it is unreadable: logged).
    async fn read_timer(
        &self,
        key: &str,
        found: Option<&Found>,
    ) -> Result<Option<(TimerRecord, Option<String>)>, SidecarError> {
        let Some(entry) = self.read_state("reading a timer", key, found).await? else {
            return Ok(None);
        };
        match serde_json::from_slice::<TimerRecord>(&entry.value) {
            Ok(record) => Ok(Some((record, entry.etag))),
            Err(e) => {
                tracing::error!(key, "the timer record is unreadable ({e}); it is ignored");
                Ok(None)
            }
        }
    }

    /// Saves a timer's record under `concurrency`, expiring after `ttl`.
    async fn write_timer(
        &self,
        key: &str,
        record: &TimerRecord,
        concurrency: Concurrency,
        ttl: Duration,
    ) -> Result<(), SidecarError> {
        let store = self.state_store.as_str();
        let value = Bytes::from(serde_json::to_vec(record).expect("a record serializes"));
        self.with_retries("saving a timer", || {
            let concurrency = concurrency.clone();
            self.sidecar
                .save_state(store, key, value.clone(), concurrency, Some(ttl))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::timer_key;

    #[test]
    fn timer_keys_never_cross_users() {
        assert_ne!(timer_key("a-b", "c"), timer_key("a", "b-c"));
        assert_ne!(timer_key("u1", "reminder:1"), timer_key("u2", "reminder:1"));
        let key = timer_key("u||1", "reminder:x||y");
        assert!(
            key.starts_with("timer-sha256-") && !key.contains("||"),
            "{key}"
        );
    }
}
