//! Declared effects only: what a plugin may publish, and how much, checked against what it
//! declared when it was loaded.
//!
//! Contract:
//! - At load, `EffectPolicy::new` reads the manifest and the plugin's declared topics (WIT
//!   `effects.publishes`, since 1.1.0) and refuses, with the reason, a plugin that declares a
//!   dead-letter topic, a malformed topic, too many topics, or a retry schedule longer (in
//!   delays or in total time) than the host allows. A plugin built against 1.0.0 declares
//!   nothing (`declared: None`): it may publish nowhere, unless the operator passed
//!   `--allow-undeclared-topics`, which lets it publish to any topic that is neither subscribed
//!   nor a dead-letter topic (the old behaviour, minus the loops). Why nothing rather than the
//!   task plugin's topics: the host cannot know what an arbitrary 1.0.0 plugin is for, and a
//!   default would grant a swapped-in plugin another plugin's topics. The canary checks golden
//!   outcomes against the policy too, so a 1.0.0 plugin whose golden cases publish is refused
//!   at load, not discovered in production.
//! - Per delivery, `check` is a pure function of the policy and the emits: it returns the first
//!   `EffectViolation` (too many emits, an emit too large, a dead-letter topic, a subscribed
//!   topic not declared, an undeclared topic, a malformed topic or key) or `Ok`. It never
//!   panics, whatever the plugin returned; the pipeline dead-letters the delivery with the
//!   violation as its problem, and publishes none of its emits (all or nothing, so a refused
//!   delivery never leaves half its effects behind).
//! - Text from the plugin is shown cut and escaped (`{:?}`), so a violation message cannot carry
//!   control characters into logs or dead-letter records.

use std::collections::BTreeSet;

use super::bindings::{Emit, Manifest, Problem, Subscription};
use crate::config::EffectLimits;

/// Most topics a plugin may declare.
pub const MAX_DECLARED_TOPICS: usize = 64;
/// Longest topic name (Kafka's own limit).
pub const MAX_TOPIC_LEN: usize = 249;
/// Longest partition key, in bytes.
pub const MAX_KEY_LEN: usize = 256;
/// Longest piece of plugin text quoted in a message.
const QUOTE: usize = 80;

/// An emit the host refuses to publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectViolation {
    #[error(
        "the plugin emitted {count} events for one delivery; the limit is {limit} (--max-emits)"
    )]
    TooManyEmits { count: usize, limit: usize },
    #[error(
        "emit {index} (topic {topic}) is {bytes} bytes; the limit is {limit} (--max-emit-bytes)"
    )]
    TooLarge {
        index: usize,
        topic: String,
        bytes: usize,
        limit: usize,
    },
    #[error("emit {index} names topic {topic}, which {why}")]
    BadTopic {
        index: usize,
        topic: String,
        why: &'static str,
    },
    #[error("emit {index} publishes to {topic}, a dead-letter topic of this host")]
    DeadLetterTopic { index: usize, topic: String },
    #[error(
        "emit {index} publishes to {topic}, a topic the host subscribes to, which the plugin did not declare (a loop)"
    )]
    SubscribedTopic { index: usize, topic: String },
    #[error(
        "emit {index} publishes to {topic}, which the plugin did not declare (it declares {declared})"
    )]
    UndeclaredTopic {
        index: usize,
        topic: String,
        declared: String,
    },
    #[error(
        "emit {index} publishes to {topic}, but the plugin declares no topics (it was built against task-events:plugin@1.0; rebuild it against 1.1 or start the host with --allow-undeclared-topics)"
    )]
    NothingDeclared { index: usize, topic: String },
    #[error("emit {index} has partition key {key}, which {why}")]
    BadKey {
        index: usize,
        key: String,
        why: &'static str,
    },
}

impl EffectViolation {
    /// Stable code, for the dead-letter record's problem.
    pub fn code(&self) -> &'static str {
        match self {
            EffectViolation::TooManyEmits { .. } => "too-many-emits",
            EffectViolation::TooLarge { .. } => "emit-too-large",
            EffectViolation::BadTopic { .. } => "bad-topic",
            EffectViolation::DeadLetterTopic { .. } => "dead-letter-topic",
            EffectViolation::SubscribedTopic { .. } => "undeclared-loop",
            EffectViolation::UndeclaredTopic { .. } | EffectViolation::NothingDeclared { .. } => {
                "undeclared-topic"
            }
            EffectViolation::BadKey { .. } => "bad-partition-key",
        }
    }

    /// The violation as the problem a dead-letter record carries.
    pub fn problem(&self) -> Problem {
        Problem {
            code: format!("effect-refused:{}", self.code()),
            message: self.to_string(),
            pointer: None,
        }
    }
}

/// A manifest the host refuses at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestViolation {
    #[error("it declares {count} topics; the limit is {MAX_DECLARED_TOPICS}")]
    TooManyTopics { count: usize },
    #[error("declared topic {topic} {why}")]
    BadTopic { topic: String, why: &'static str },
    #[error("it declares {topic}, a dead-letter topic of its own subscriptions")]
    DeadLetterTopic { topic: String },
    #[error(
        "the retry policy for {event_type} lists {count} delays; the limit is {limit} (--max-retry-delays)"
    )]
    TooManyRetries {
        event_type: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "the retry policy for {event_type} waits {total_ms} ms in all; the limit is {limit_ms} ms (--max-retry-total-secs)"
    )]
    RetriesTooLong {
        event_type: String,
        total_ms: u64,
        limit_ms: u128,
    },
}

/// What one loaded plugin may publish.
#[derive(Debug, Clone)]
pub struct EffectPolicy {
    /// `None`: the plugin declares nothing (built against 1.0.0).
    declared: Option<BTreeSet<String>>,
    subscribed: BTreeSet<String>,
    dead_letter: BTreeSet<String>,
    limits: EffectLimits,
}

impl EffectPolicy {
    /// Checks `manifest` and `declared` against `limits`.
    pub fn new(
        manifest: &Manifest,
        declared: Option<Vec<String>>,
        limits: EffectLimits,
    ) -> Result<EffectPolicy, ManifestViolation> {
        let subscribed = manifest
            .subscriptions
            .iter()
            .map(|s| s.topic.clone())
            .collect();
        let dead_letter: BTreeSet<String> = manifest
            .subscriptions
            .iter()
            .filter_map(|s| s.dead_letter_topic.clone())
            .collect();
        if let Some(topics) = &declared {
            if topics.len() > MAX_DECLARED_TOPICS {
                return Err(ManifestViolation::TooManyTopics {
                    count: topics.len(),
                });
            }
            for topic in topics {
                if let Err(why) = topic_ok(topic) {
                    return Err(ManifestViolation::BadTopic {
                        topic: quote(topic),
                        why,
                    });
                }
                if dead_letter.contains(topic) {
                    return Err(ManifestViolation::DeadLetterTopic {
                        topic: quote(topic),
                    });
                }
            }
        }
        for policy in &manifest.retry_policies {
            let count = policy.delays_ms.len();
            if count > limits.max_retry_delays {
                return Err(ManifestViolation::TooManyRetries {
                    event_type: quote(&policy.event_type),
                    count,
                    limit: limits.max_retry_delays,
                });
            }
            let total_ms: u64 = policy.delays_ms.iter().map(|d| u64::from(*d)).sum();
            if u128::from(total_ms) > limits.max_retry_total.as_millis() {
                return Err(ManifestViolation::RetriesTooLong {
                    event_type: quote(&policy.event_type),
                    total_ms,
                    limit_ms: limits.max_retry_total.as_millis(),
                });
            }
        }
        Ok(EffectPolicy {
            declared: declared.map(|d| d.into_iter().collect()),
            subscribed,
            dead_letter,
            limits,
        })
    }

    /// A policy that allows no emit at all (a plugin whose manifest is not read yet).
    pub fn nothing(limits: EffectLimits) -> EffectPolicy {
        EffectPolicy {
            declared: Some(BTreeSet::new()),
            subscribed: BTreeSet::new(),
            dead_letter: BTreeSet::new(),
            limits,
        }
    }

    /// The declared topics (`None` for a 1.0.0 plugin), for operators.
    pub fn declared(&self) -> Option<Vec<&str>> {
        self.declared
            .as_ref()
            .map(|d| d.iter().map(String::as_str).collect())
    }

    /// Whether every emit of a delivery that arrived on `served` may be published; the first
    /// violation otherwise. `served` is the route the delivery came through, which after a swap
    /// may belong to the start-up plugin's manifest rather than this one's: its topic counts as
    /// subscribed and its dead-letter topic as a dead-letter topic too.
    pub fn check(&self, served: &Subscription, emits: &[Emit]) -> Result<(), EffectViolation> {
        if emits.len() > self.limits.max_emits {
            return Err(EffectViolation::TooManyEmits {
                count: emits.len(),
                limit: self.limits.max_emits,
            });
        }
        for (index, emit) in emits.iter().enumerate() {
            self.check_one(served, index, emit)?;
        }
        Ok(())
    }

    fn check_one(
        &self,
        served: &Subscription,
        index: usize,
        emit: &Emit,
    ) -> Result<(), EffectViolation> {
        let topic = &emit.topic;
        let bytes = [&emit.topic, &emit.key, &emit.id, &emit.kind, &emit.data]
            .iter()
            .map(|s| s.len())
            .fold(0usize, usize::saturating_add);
        if bytes > self.limits.max_emit_bytes {
            return Err(EffectViolation::TooLarge {
                index,
                topic: quote(topic),
                bytes,
                limit: self.limits.max_emit_bytes,
            });
        }
        if let Err(why) = topic_ok(topic) {
            return Err(EffectViolation::BadTopic {
                index,
                topic: quote(topic),
                why,
            });
        }
        if self.dead_letter.contains(topic) || served.dead_letter_topic.as_ref() == Some(topic) {
            return Err(EffectViolation::DeadLetterTopic {
                index,
                topic: quote(topic),
            });
        }
        match &self.declared {
            Some(declared) if declared.contains(topic) => {}
            Some(_) if self.subscribed.contains(topic) || served.topic == *topic => {
                return Err(EffectViolation::SubscribedTopic {
                    index,
                    topic: quote(topic),
                });
            }
            Some(declared) => {
                let list: Vec<&str> = declared.iter().map(String::as_str).collect();
                return Err(EffectViolation::UndeclaredTopic {
                    index,
                    topic: quote(topic),
                    declared: quote(&format!("{list:?}")),
                });
            }
            None if !self.limits.allow_undeclared_topics => {
                return Err(EffectViolation::NothingDeclared {
                    index,
                    topic: quote(topic),
                });
            }
            None if self.subscribed.contains(topic) || served.topic == *topic => {
                return Err(EffectViolation::SubscribedTopic {
                    index,
                    topic: quote(topic),
                });
            }
            None => {}
        }
        let key_problem = if emit.key.len() > MAX_KEY_LEN {
            Some("is longer than 256 bytes")
        } else if emit.key.chars().any(char::is_control) {
            Some("contains control characters")
        } else {
            None
        };
        if let Some(why) = key_problem {
            return Err(EffectViolation::BadKey {
                index,
                key: quote(&emit.key),
                why,
            });
        }
        Ok(())
    }
}

/// A topic name the host will publish to: non-empty, at most 249 bytes, no whitespace or
/// control characters.
pub fn topic_ok(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("is empty");
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err("is longer than 249 bytes");
    }
    if topic.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains whitespace or control characters");
    }
    Ok(())
}

/// Plugin text for a message: cut to a few dozen characters, then escaped and quoted.
fn quote(text: &str) -> String {
    let cut: String = text.chars().take(QUOTE).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
#[path = "effects_tests.rs"]
mod tests;
