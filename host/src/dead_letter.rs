//! Why the host dead-letters an event: one enum, used by the dead-letter record, the logs and
//! `/metrics`, so a reason is spelled the same everywhere an operator looks.

/// The cause recorded in a dead-letter record's `reason` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The plugin rejected the event; every problem is listed in the record.
    Rejected,
    /// The plugin asked to retry (or failed) on every attempt of the event type's schedule.
    RetriesExhausted,
    /// The plugin's output breaks what its manifest declares or the host's limits allow
    /// (plugin/effects.rs): nothing of it was published.
    EffectRefused,
    /// The sidecar refused, for good, a request this event needs (a record too large for the
    /// broker, a key the state store cannot hold): retrying could never succeed.
    SidecarRefused,
}

impl DeadLetterReason {
    /// The stable, machine-readable name (a `/metrics` label and the record's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Rejected => "rejected",
            DeadLetterReason::RetriesExhausted => "retries-exhausted",
            DeadLetterReason::EffectRefused => "effect-refused",
            DeadLetterReason::SidecarRefused => "sidecar-refused",
        }
    }
}
