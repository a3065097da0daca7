//! One state read per handled event: the plugin is called first, and its `done` answer names
//! every key the delivery then reads, so they are read together (one bulk read) instead of one
//! request each.
//!
//! The keys: the user's retry queue (`parking.rs`), the outcome record and the seed-style
//! record (`outcome.rs`), and the timers the outcome cancels (`timers.rs`). What is read is as
//! fresh as before: every read still happens after the plugin call and before the first write,
//! and each write keeps its own guard (first-write, etag). An answer other than `done` reads
//! nothing here; the paths that need state read it themselves.
//!
//! The cost of calling the plugin first: an event that must wait behind its user's parked
//! retries has been handled once for nothing (the plugin is a pure function of its input, and
//! its answer is dropped; the event is handled again, in order, when its turn comes).

use std::collections::HashMap;

use super::parking::queue_key;
use super::recorded::state_key;
use super::routing::Routing;
use super::timers::timer_key;
use super::{Found, Pipeline};
use crate::plugin::bindings::Handled;
use crate::plugin::bindings::timed::TimerChange;
use crate::sidecar::{SidecarError, StateEntry};

/// What a key read for a delivery holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// The user's retry queue.
    Queue,
    /// The outcome record, or the seed-style record.
    Record,
    /// A timer the outcome cancels.
    CancelledTimer,
}

/// Every key a delivery answered with `handled` (and `timers`) reads before it writes, each
/// once, with what it holds.
pub(super) fn reads(
    pipeline: &Pipeline,
    routing: &Routing,
    handled: &Handled,
    timers: &[TimerChange],
) -> Vec<(String, Held)> {
    let mut reads = vec![(queue_key(routing.user_id.as_deref()), Held::Queue)];
    if let Some(record) = state_key(&handled.dedupe_key) {
        reads.push((record, Held::Record));
        if let Some(prefix) = &pipeline.legacy_dedupe_prefix {
            reads.push((format!("{prefix}{}", handled.dedupe_key), Held::Record));
        }
    }
    let user = routing.user_id.as_deref().unwrap_or_default();
    for change in timers {
        if let TimerChange::Cancel(name) = change {
            let key = timer_key(user, name);
            if !reads.iter().any(|(k, _)| *k == key) {
                reads.push((key, Held::CancelledTimer));
            }
        }
    }
    reads
}

impl Pipeline {
    /// One bulk read of `keys` (nothing for none), retried in place like any sidecar call.
    pub(super) async fn read_all(&self, keys: &[String]) -> Result<Found, SidecarError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let store = self.state_store.as_str();
        let found = self
            .with_retries("reading the delivery's records", || {
                self.sidecar.get_bulk_state(store, keys)
            })
            .await?;
        Ok(keys.iter().cloned().zip(found).collect())
    }

    /// The entry under `key`: as the delivery's one read found it when `found` covers the
    /// key, else read now (retried in place).
    pub(super) async fn read_state(
        &self,
        what: &str,
        key: &str,
        found: Option<&Found>,
    ) -> Result<Option<StateEntry>, SidecarError> {
        if let Some(entry) = found.and_then(|f| f.get(key)) {
            return Ok(entry.clone());
        }
        let store = self.state_store.as_str();
        self.with_retries(what, || self.sidecar.get_state(store, key))
            .await
    }
}
