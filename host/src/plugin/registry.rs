//! The plugin generation that serves deliveries, behind an `ArcSwap`.
//!
//! Contract: a delivery loads the current generation once, at its start, and finishes on it even
//! if a swap happens meanwhile; the old generation is dropped when its last delivery ends
//! (draining is reference counting). Reads never block. Each generation counts its deliveries
//! and failures, which the swap logic and `/metrics` read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use super::bindings::{Delivery, Outcome};
use super::loaded::{CallError, Plugin};

pub struct Generation {
    /// 1 for the plugin loaded at start-up, +1 for every swap.
    pub number: u64,
    pub plugin: Plugin,
    pub loaded_at: DateTime<Utc>,
    deliveries: AtomicU64,
    failures: AtomicU64,
}

impl Generation {
    pub fn new(number: u64, plugin: Plugin) -> Generation {
        Generation { number, plugin, loaded_at: Utc::now(), deliveries: AtomicU64::new(0), failures: AtomicU64::new(0) }
    }

    /// Calls `handle` on a fresh instance, off the async executor, waiting for an instance slot.
    pub async fn handle(self: &Arc<Self>, delivery: Delivery) -> Result<Outcome, CallError> {
        let _permit = self.plugin.runtime().instance_permit().await;
        let generation = self.clone();
        let result = tokio::task::spawn_blocking(move || generation.plugin.handle(&delivery))
            .await
            .unwrap_or_else(|join| {
                Err(CallError::Trap { plugin: self.plugin.label().to_string(), reason: format!("host task failed: {join}") })
            });
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    pub fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

pub struct Registry {
    current: ArcSwap<Generation>,
}

impl Registry {
    pub fn new(plugin: Plugin) -> Registry {
        Registry { current: ArcSwap::from_pointee(Generation::new(1, plugin)) }
    }

    /// The generation new deliveries use.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }
}
