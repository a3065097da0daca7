//! What the stand-in observed: every delivery attempt to the app and how each message settled.
//!
//! Tests assert on these instead of sleeping: `FakeDaprd::wait_until` re-checks its predicate
//! whenever the journal or the broker changes. The journal records; it never judges, so a buggy
//! app under test shows up here as data (odd statuses, bodies that do not parse), not as a panic.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// How daprd classified one answer from the app (dapr-contract.md §3, §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acked (2xx with SUCCESS, empty, non-JSON, `{}`, or `"status":""`).
    Success,
    /// Retriable, as the app asked or implied: `RETRY`, an unknown status string, or a non-2xx
    /// status other than 404. The text says which.
    Retry(String),
    /// Not retried: `DROP` or 404 (dead-lettered when a DLQ is set).
    Drop,
    /// Retriable transport failure: connection refused/reset, timeout, bad header value.
    Error(String),
}

impl Outcome {
    /// Whether daprd's resiliency policy would try again.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Outcome::Retry(_) | Outcome::Error(_))
    }
}

/// Per-entry result of one bulk delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryStatus {
    pub entry_id: String,
    pub offset: u64,
    pub event_id: Option<String>,
    pub outcome: Outcome,
}

/// One HTTP request daprd made to the app's delivery route, and its answer.
#[derive(Clone, Debug)]
pub struct DeliveryAttempt {
    /// Global order of attempts.
    pub seq: u64,
    pub pubsub: String,
    pub topic: String,
    pub partition: u32,
    /// Broker offsets carried by this request (one for a single delivery).
    pub offsets: Vec<u64>,
    /// The request path, e.g. `/orders`.
    pub route: String,
    /// The CloudEvent `id` (single delivery), when it is a string.
    pub event_id: Option<String>,
    pub bulk: bool,
    /// 1-based attempt number within daprd's resiliency policy.
    pub attempt: u32,
    /// 0 for the first run of the handler; n for the n-th component-level (Kafka) redelivery.
    pub round: u32,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    /// None on a transport error or timeout.
    pub status: Option<u16>,
    pub response_body: Vec<u8>,
    /// The response body as JSON, when it is JSON.
    pub parsed: Option<serde_json::Value>,
    pub outcome: Outcome,
    /// Bulk only: what happened to each entry in this attempt.
    pub entries: Vec<EntryStatus>,
}

impl DeliveryAttempt {
    /// A request header by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.request_headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The request body as JSON.
    pub fn request_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.request_body).ok()
    }
}

/// Why a message left the subscription (was acked to the broker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The app answered SUCCESS.
    Delivered,
    /// The app answered DROP or 404.
    Dropped,
    /// The resiliency policy gave up (only settles with a DLQ).
    RetriesExhausted,
    /// `expiration` passed before delivery.
    Expired,
    /// No routing rule matched.
    Unrouted,
    /// Not a JSON object, a routing error, or bad `rawPayload` metadata (only settles with a DLQ).
    Undeliverable(String),
}

/// One acknowledged message.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    pub seq: u64,
    pub pubsub: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub how: Settlement,
    /// The dead-letter topic the message was copied to, if any.
    pub dead_letter: Option<String>,
}

/// The handler gave the error back to the Kafka component, which will run it again after its
/// back-off: the policy was spent without a DLQ, or the message could not even be sent.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentRetry {
    pub seq: u64,
    pub pubsub: String,
    pub topic: String,
    pub partition: u32,
    pub offsets: Vec<u64>,
    /// Which run of the handler failed (0 = the first).
    pub round: u32,
    pub reason: String,
}

#[derive(Default)]
pub(crate) struct Journal {
    seq: AtomicU64,
    attempts: Mutex<Vec<DeliveryAttempt>>,
    settled: Mutex<Vec<Settled>>,
    retries: Mutex<Vec<ComponentRetry>>,
    pub(crate) changed: Notify,
}

impl Journal {
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }
    pub(crate) fn attempt(&self, mut a: DeliveryAttempt) {
        a.seq = self.next_seq();
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(a);
        self.changed.notify_waiters();
    }
    pub(crate) fn settle(&self, mut s: Settled) {
        s.seq = self.next_seq();
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(s);
        self.changed.notify_waiters();
    }
    pub(crate) fn component_retry(&self, mut r: ComponentRetry) {
        r.seq = self.next_seq();
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
        self.changed.notify_waiters();
    }
    pub(crate) fn component_retries(&self) -> Vec<ComponentRetry> {
        self.retries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub(crate) fn attempts(&self) -> Vec<DeliveryAttempt> {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub(crate) fn settled(&self) -> Vec<Settled> {
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
