//! Runtime-togglable fault injection for the sidecar API the app calls (dapr-contract.md §5).
//!
//! What each fault looks like to the app, and why it is shaped that way:
//! - `publish_fail_next(n)`: the next `n` publishes reach the broker step and fail there, so the
//!   app sees daprd's broker-error answer, 500 `ERR_PUBSUB_PUBLISH_MESSAGE`. Validation errors
//!   (unknown pubsub, bad metadata) still come first and do not consume a fault.
//! - `state_fail_next(n)`: the next `n` state store operations (get, save, delete) fail with
//!   500 `ERR_STATE_GET` / `ERR_STATE_SAVE` / `ERR_STATE_DELETE`.
//! - `refuse(true)`: the sidecar port closes (new connections are refused) and connections
//!   already open are reset on their next use, as when daprd dies; `refuse(false)` re-opens the
//!   same port.
//! - `slow_ms(ms)`: every sidecar answer (healthz included) is delayed by `ms`.
//!
//! Faults only affect the app-facing API; deliveries to the app and dead-letter publishes are
//! unaffected. All counters are atomics, so tests toggle them from any task.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::sync::watch;

#[derive(Debug)]
pub struct Faults {
    publish_fail: AtomicU32,
    state_fail: AtomicU32,
    refusing: AtomicBool,
    /// Bumped each time `refuse(true)` is set; connections remember the epoch they were
    /// accepted in and fail once it moves on.
    epoch: AtomicU64,
    slow_ms: AtomicU64,
    changed: watch::Sender<()>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            publish_fail: AtomicU32::new(0),
            state_fail: AtomicU32::new(0),
            refusing: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            slow_ms: AtomicU64::new(0),
            changed: watch::Sender::new(()),
        }
    }
}

impl Faults {
    /// The next `n` publishes fail with 500 `ERR_PUBSUB_PUBLISH_MESSAGE` (0 clears).
    pub fn publish_fail_next(&self, n: u32) {
        self.publish_fail.store(n, Ordering::SeqCst);
    }

    /// The next `n` state operations fail with 500 (0 clears).
    pub fn state_fail_next(&self, n: u32) {
        self.state_fail.store(n, Ordering::SeqCst);
    }

    /// Stop answering (close the port, reset open connections) or start again.
    pub fn refuse(&self, on: bool) {
        if on && !self.refusing.swap(true, Ordering::SeqCst) {
            self.epoch.fetch_add(1, Ordering::SeqCst);
        } else if !on {
            self.refusing.store(false, Ordering::SeqCst);
        }
        self.changed.send_replace(());
    }

    /// Delay every sidecar answer by `ms` milliseconds (0 clears).
    pub fn slow_ms(&self, ms: u64) {
        self.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// Whether the sidecar currently refuses connections.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// Publish faults still pending.
    pub fn pending_publish_failures(&self) -> u32 {
        self.publish_fail.load(Ordering::SeqCst)
    }

    /// State faults still pending.
    pub fn pending_state_failures(&self) -> u32 {
        self.state_fail.load(Ordering::SeqCst)
    }

    pub(crate) fn take_publish_failure(&self) -> bool {
        take(&self.publish_fail)
    }

    pub(crate) fn take_state_failure(&self) -> bool {
        take(&self.state_fail)
    }

    pub(crate) fn delay_ms(&self) -> u64 {
        self.slow_ms.load(Ordering::SeqCst)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub(crate) fn watch(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }
}

/// Decrement a fault counter if it is positive; true when a fault fires.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
