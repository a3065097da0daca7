//! Who the plugin is and what it needs from the host: subscriptions and retry schedules.
//!
//! Topics, routes and schedules come from the seed design (docs/migrating-from-the-seed.md):
//! three topics on the `kafka-pubsub` component, each with a dead-letter topic `<topic>-dlq`,
//! and the seed's retry schedules: its per-event-type strategies for `task.completed`,
//! `reminder.due` and `task.updated`, and for `task.created` and `task.deleted`, which have no
//! strategy of their own there, its generic backoff (three attempts, 1 s then 2 s apart). The
//! host has no default: a type with no policy here (and no `*` policy) is dead-lettered at its
//! first failure, so every task event type the seed publishes is listed. All fit the host's
//! load-time caps (16 delays, 3600 s in all) unshortened.

use crate::model::{Manifest, RetryPolicy, Subscription};
use crate::schema::Version;

/// The Dapr pub/sub component every subscription and emit uses.
pub const PUBSUB: &str = "kafka-pubsub";
/// Task lifecycle events; `task.created` for a next occurrence is published here.
pub const TASK_EVENTS: &str = "task-events";
/// Reminder events; `reminder.scheduled` is published here.
pub const REMINDERS: &str = "reminders";
/// Task update notifications.
pub const TASK_UPDATES: &str = "task-updates";

/// The seed's generic backoff: 3 attempts, waiting 1 s, then 2 s, then dead-letter.
const SEED_BACKOFF_S: [u32; 2] = [1, 2];

pub fn manifest() -> Manifest {
    Manifest {
        name: "task-plugin".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        schema_versions: Version::ALL
            .iter()
            .map(|v| v.as_str().to_string())
            .collect(),
        subscriptions: [TASK_EVENTS, REMINDERS, TASK_UPDATES]
            .into_iter()
            .map(subscription)
            .collect(),
        retry_policies: vec![
            // Seed: RETRY_STRATEGIES[TASK_COMPLETION] = [30, 300, 1800] seconds.
            policy("task.completed", &[30, 300, 1800]),
            // Seed: [1, 2, 4, ..., 512] seconds.
            policy("reminder.due", &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512]),
            policy("task.updated", &[1, 2, 4, 8, 16]),
            // Seed: retry_event_processing(max_retries=3, initial_delay=1.0), doubling: the
            // backoff of every event type without a strategy of its own.
            policy("task.created", &SEED_BACKOFF_S),
            policy("task.deleted", &SEED_BACKOFF_S),
        ],
    }
}

/// Topics the plugin publishes to (WIT `effects.publishes`; the host refuses any other): the
/// next occurrence's `task.created` goes back onto `task-events`, a deliberate loop that ends
/// because a created task does not create another; reminders go to `reminders`.
pub fn publishes() -> Vec<String> {
    vec![TASK_EVENTS.into(), REMINDERS.into()]
}

fn subscription(topic: &str) -> Subscription {
    Subscription {
        pubsub: PUBSUB.into(),
        topic: topic.into(),
        route: format!("/events/{topic}"),
        dead_letter_topic: Some(format!("{topic}-dlq")),
    }
}

fn policy(event_type: &str, delays_s: &[u32]) -> RetryPolicy {
    RetryPolicy {
        event_type: event_type.into(),
        delays_ms: delays_s.iter().map(|s| s * 1000).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_topics_are_subscribed_ones_and_never_a_dead_letter_topic() {
        let m = manifest();
        for topic in publishes() {
            assert!(m.subscriptions.iter().any(|s| s.topic == topic), "{topic}");
            assert!(
                m.subscriptions
                    .iter()
                    .all(|s| s.dead_letter_topic.as_deref() != Some(topic.as_str())),
                "{topic}"
            );
        }
    }

    #[test]
    fn manifest_matches_the_seed() {
        let m = manifest();
        assert_eq!(m.name, "task-plugin");
        assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(m.schema_versions, ["1.0", "1.1", "2.0"]);
        let subs: Vec<(&str, &str, &str, Option<&str>)> = m
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.pubsub.as_str(),
                    s.topic.as_str(),
                    s.route.as_str(),
                    s.dead_letter_topic.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            subs,
            [
                (
                    "kafka-pubsub",
                    "task-events",
                    "/events/task-events",
                    Some("task-events-dlq")
                ),
                (
                    "kafka-pubsub",
                    "reminders",
                    "/events/reminders",
                    Some("reminders-dlq")
                ),
                (
                    "kafka-pubsub",
                    "task-updates",
                    "/events/task-updates",
                    Some("task-updates-dlq")
                ),
            ]
        );
        let delays = |t: &str| {
            m.retry_policies
                .iter()
                .find(|p| p.event_type == t)
                .map(|p| p.delays_ms.clone())
        };
        assert_eq!(
            delays("task.completed"),
            Some(vec![30_000, 300_000, 1_800_000])
        );
        assert_eq!(
            delays("reminder.due"),
            Some(vec![
                1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000
            ])
        );
        assert_eq!(
            delays("task.updated"),
            Some(vec![1000, 2000, 4000, 8000, 16_000])
        );
        assert_eq!(delays("task.created"), Some(vec![1000, 2000]));
        assert_eq!(delays("task.deleted"), Some(vec![1000, 2000]));
        assert_eq!(m.retry_policies.len(), 5);
    }

    /// The host has no default policy, so a seed event type missing here would be dead-lettered
    /// at its first failure.
    #[test]
    fn every_seed_task_event_type_has_a_retry_policy() {
        let m = manifest();
        for t in [
            "task.created",
            "task.updated",
            "task.completed",
            "task.deleted",
        ] {
            assert!(
                m.retry_policies.iter().any(|p| p.event_type == t),
                "{t} has no retry policy"
            );
        }
    }

    /// The host refuses at load a schedule of more than 16 delays or 3600 s in all
    /// (host/src/plugin/effects.rs); none of the seed's had to be shortened to fit.
    #[test]
    fn every_schedule_fits_the_hosts_default_caps() {
        for p in manifest().retry_policies {
            assert!(
                !p.delays_ms.is_empty() && p.delays_ms.len() <= 16,
                "{}",
                p.event_type
            );
            let total: u64 = p.delays_ms.iter().map(|&d| u64::from(d)).sum();
            assert!(total <= 3_600_000, "{}: {total} ms", p.event_type);
        }
    }
}
