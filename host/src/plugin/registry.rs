//! Plugin generations: the one that serves, the one before it, behind `ArcSwap`s.
//!
//! Contract:
//! - A delivery loads the current generation once per attempt (`current()`) and finishes that
//!   attempt on it even if a swap happens meanwhile; new attempts see the new generation at once.
//!   Reads never block and never see a half-made switch.
//! - Lifetime: the registry holds at most two generations, the current one and the previous one
//!   (the rollback target). A generation ends when it is neither (a later swap pushed it out, or
//!   a rollback discarded it) *and* its last in-flight call has returned: draining is reference
//!   counting, nothing waits for it. Its compiled code and `InstancePre` are freed then.
//! - What leaks: nothing by design. Memory the pooling allocator keeps in warm slots (at most
//!   `max_unused_warm_slots`) stays resident until the slot is reused, which is the allocator's
//!   normal behaviour for any instance, not a per-generation cost.
//! - Writers (`install`, `roll_back`) are serialised by an internal lock; the swap logic also
//!   serialises whole swaps, so a rollback never interleaves with a half-checked new plugin.
//! - Each generation counts its plugin calls and their failures (trap, deadline, memory), which
//!   the probation (automatic rollback), `/admin/plugin` and `/metrics` read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use chrono::{DateTime, Utc};

use super::bindings::Delivery;
use super::bindings::timed::TimedOutcome;
use super::loaded::{CallError, Plugin};
use super::probation::Probation;

pub struct Generation {
    /// 1 for the plugin loaded at start-up, +1 for every swap (a rollback reuses the old number).
    pub number: u64,
    pub plugin: Plugin,
    pub loaded_at: DateTime<Utc>,
    /// Where the plugin came from, for operators: `start-up (...)`, `file ...`, `POST /admin/plugin`.
    pub origin: String,
    deliveries: AtomicU64,
    failures: AtomicU64,
    probation: Option<Probation>,
}

impl Generation {
    pub fn new(number: u64, plugin: Plugin) -> Generation {
        Generation::with_origin(number, plugin, "start-up".into(), None)
    }

    pub fn with_origin(
        number: u64,
        plugin: Plugin,
        origin: String,
        probation: Option<Probation>,
    ) -> Generation {
        Generation {
            number,
            plugin,
            loaded_at: Utc::now(),
            origin,
            deliveries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            probation,
        }
    }

    /// Calls `handle` (`timers.handle` when exported) on a fresh instance, off the async executor, waiting for an instance slot.
    ///
    /// The permit moves into the blocking task: if this future is dropped (the delivery's HTTP
    /// request was cancelled) while the wasm call runs, the call runs to its end (or deadline)
    /// and only then frees its slot, so live instances never exceed the pool.
    pub async fn handle(self: &Arc<Self>, delivery: Delivery) -> Result<TimedOutcome, CallError> {
        let permit = self.plugin.runtime().instance_permit().await;
        let generation = self.clone();
        // The plugin's own log lines belong to the delivery that caused them.
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _in_delivery = span.enter();
            generation.plugin.handle_timed(&delivery)
        })
        .await
        .unwrap_or_else(|join| {
            Err(CallError::Trap {
                plugin: self.plugin.label().to_string(),
                reason: format!("host task failed: {join}"),
            })
        });
        self.count(&result);
        result
    }

    /// Calls `handle` for every delivery of a batch in one blocking task: each group of
    /// deliveries on one instance of its own (`Plugin::handle_on_one_instance`), groups one
    /// after another. Results come back grouped as given. One instance slot is taken for the
    /// whole batch, since only one instance is alive at a time.
    pub async fn handle_batch(
        self: &Arc<Self>,
        groups: Vec<Vec<Delivery>>,
    ) -> Vec<Vec<Result<TimedOutcome, CallError>>> {
        let permit = self.plugin.runtime().instance_permit().await;
        let generation = self.clone();
        let span = tracing::Span::current();
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        let results = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _in_batch = span.enter();
            groups
                .iter()
                .map(|group| generation.plugin.handle_on_one_instance(group))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|join| {
            let failed = || {
                Err(CallError::Trap {
                    plugin: self.plugin.label().to_string(),
                    reason: format!("host task failed: {join}"),
                })
            };
            sizes
                .iter()
                .map(|n| (0..*n).map(|_| failed()).collect())
                .collect()
        });
        for result in results.iter().flatten() {
            self.count(result);
        }
        results
    }

    /// Counts one call, and tells the probation.
    fn count<T>(&self, result: &Result<T, CallError>) {
        let deliveries = self.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = match result {
            Err(_) => self.failures.fetch_add(1, Ordering::Relaxed) + 1,
            Ok(_) => self.failures.load(Ordering::Relaxed),
        };
        if let Some(probation) = &self.probation {
            probation.observe(self.number, deliveries, failures);
        }
    }

    /// Plugin calls made (each delivery attempt is one).
    pub fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    /// Plugin calls that failed: trap, deadline or memory limit.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The probation, while its window is open.
    pub fn probation(&self) -> Option<&Probation> {
        self.probation
            .as_ref()
            .filter(|p| p.active(self.deliveries()))
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        tracing::info!(
            generation = self.number,
            sha256 = %self.plugin.sha256,
            calls = self.deliveries(),
            failures = self.failures(),
            "plugin generation {} {} drained and dropped",
            self.number,
            self.plugin.label()
        );
    }
}

/// A rollback that cannot happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefused {
    #[error(
        "there is no previous plugin generation to roll back to (none was swapped in since start-up, or the last one was already rolled back)"
    )]
    NoPrevious,
    #[error(
        "generation {expected} no longer serves (generation {serving} does); nothing to roll back"
    )]
    NotCurrent { expected: u64, serving: u64 },
}

pub struct Registry {
    current: ArcSwap<Generation>,
    previous: ArcSwapOption<Generation>,
    last_number: AtomicU64,
    writer: Mutex<()>,
}

impl Registry {
    /// A registry serving `plugin` as generation 1.
    pub fn new(plugin: Plugin) -> Registry {
        Registry::with_generation(Generation::new(1, plugin))
    }

    pub fn with_generation(generation: Generation) -> Registry {
        Registry {
            last_number: AtomicU64::new(generation.number),
            current: ArcSwap::from_pointee(generation),
            previous: ArcSwapOption::empty(),
            writer: Mutex::new(()),
        }
    }

    /// The generation new deliveries use.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// The generation a rollback would restore.
    pub fn previous(&self) -> Option<Arc<Generation>> {
        self.previous.load_full()
    }

    /// Makes `plugin` the current generation; the replaced one becomes the previous one, and the
    /// one before that is let go (it drains). Returns `(new, replaced)`.
    pub fn install(
        &self,
        plugin: Plugin,
        origin: String,
        probation: Option<Probation>,
    ) -> (Arc<Generation>, Arc<Generation>) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let number = self.last_number.fetch_add(1, Ordering::Relaxed) + 1;
        let new = Arc::new(Generation::with_origin(number, plugin, origin, probation));
        let replaced = self.current.swap(new.clone());
        self.previous.store(Some(replaced.clone()));
        (new, replaced)
    }

    /// Restores the previous generation; the rolled-back one is let go (it drains) and there is
    /// no previous generation afterwards. With `only_if_current`, refuses unless that generation
    /// still serves (an automatic rollback must not undo a later swap). Returns `(from, to)`.
    pub fn roll_back(
        &self,
        only_if_current: Option<u64>,
    ) -> Result<(Arc<Generation>, Arc<Generation>), RollbackRefused> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let serving = self.current.load_full();
        if let Some(expected) = only_if_current.filter(|n| *n != serving.number) {
            return Err(RollbackRefused::NotCurrent {
                expected,
                serving: serving.number,
            });
        }
        let Some(previous) = self.previous.swap(None) else {
            return Err(RollbackRefused::NoPrevious);
        };
        let from = self.current.swap(previous.clone());
        Ok((from, previous))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plugin::testing::bundled_plugin;

    #[test]
    fn a_swap_keeps_one_previous_generation_and_drains_the_rest() {
        let registry = Registry::new(bundled_plugin());
        let first = Arc::downgrade(&registry.current());
        let in_flight = registry.current(); // a delivery that started on generation 1

        let (second, replaced) = registry.install(bundled_plugin(), "test".into(), None);
        assert_eq!((second.number, replaced.number), (2, 1));
        assert_eq!(registry.current().number, 2);
        assert_eq!(registry.previous().map(|g| g.number), Some(1));
        drop(replaced);

        let (third, _) = registry.install(bundled_plugin(), "test".into(), None);
        assert_eq!(third.number, 3);
        assert_eq!(registry.previous().map(|g| g.number), Some(2));
        assert!(
            first.upgrade().is_some(),
            "generation 1 lives while its delivery is in flight"
        );
        drop(in_flight);
        assert!(
            first.upgrade().is_none(),
            "generation 1 is dropped when its last delivery ends"
        );
    }

    #[test]
    fn a_rollback_restores_the_previous_generation_once() {
        let registry = Registry::new(bundled_plugin());
        assert_eq!(
            registry.roll_back(None).err(),
            Some(RollbackRefused::NoPrevious)
        );
        registry.install(bundled_plugin(), "test".into(), None);
        assert_eq!(
            registry.roll_back(Some(7)).err(),
            Some(RollbackRefused::NotCurrent {
                expected: 7,
                serving: 2
            })
        );

        let (from, to) = registry.roll_back(Some(2)).unwrap();
        assert_eq!((from.number, to.number), (2, 1));
        assert_eq!(registry.current().number, 1);
        assert!(registry.previous().is_none());
        assert_eq!(
            registry.roll_back(None).err(),
            Some(RollbackRefused::NoPrevious)
        );
        // Numbers keep counting up after a rollback.
        assert_eq!(
            registry
                .install(bundled_plugin(), "test".into(), None)
                .0
                .number,
            3
        );
    }
}
