//! Plain-Rust mirrors of the WIT records the plugin exchanges with the host (wit/plugin.wit).
//!
//! The domain code works on these; `component.rs` is the only place that converts them to and
//! from the wit-bindgen types, so every module here is testable natively.

use crate::problem::Problem;

/// One message from the broker, already unpacked from its CloudEvent envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub pubsub: String,
    pub topic: String,
    pub kind: String,
    pub source: String,
    /// The task event as JSON text.
    pub data: String,
    pub attempt: u32,
}

/// An event the plugin asks the host to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emit {
    pub topic: String,
    /// Partition key: the event's `user_id`.
    pub key: String,
    /// Deterministic CloudEvent id.
    pub id: String,
    /// CloudEvent type, e.g. `task.created`.
    pub kind: String,
    pub data: String,
}

/// An emit published at a given time (WIT `timers.timer`), unless replaced or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Names the timer within the user, e.g. `reminder:<task_id>`.
    pub name: String,
    /// RFC 3339 UTC instant.
    pub at: String,
    pub emit: Emit,
}

/// One change to the user's timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerChange {
    Set(Timer),
    Cancel(String),
}

/// The plugin's verdict on one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done {
        dedupe_key: String,
        emits: Vec<Emit>,
    },
    Retry(Problem),
    Reject(Vec<Problem>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub pubsub: String,
    pub topic: String,
    pub route: String,
    pub dead_letter_topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub event_type: String,
    pub delays_ms: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub schema_versions: Vec<String>,
    pub subscriptions: Vec<Subscription>,
    pub retry_policies: Vec<RetryPolicy>,
}

/// A delivery with the outcome the plugin must produce for it (canary input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenCase {
    pub name: String,
    pub delivery: Delivery,
    pub expected: Outcome,
}
