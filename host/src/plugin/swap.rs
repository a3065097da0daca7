//! Swapping the serving plugin: validate, canary, atomic switch, drain, rollback, report.
//!
//! Contract:
//! - `swap` takes plugin bytes from any trigger (watched file, SIGHUP, `POST /admin/plugin`).
//!   Bytes whose sha256 equals the serving plugin's are a no-op ("unchanged"). Otherwise they
//!   are prepared (`prepare`: compile or cache, world check, manifest, canary) while the current
//!   generation keeps serving, then installed in one atomic store: deliveries in flight finish
//!   on the generation they started with, new ones use the new one, and the replaced generation
//!   is kept as the rollback target (older ones drain and are dropped; see `registry`).
//! - A rejected plugin changes nothing that serves; the rejection is logged, kept as
//!   `last_rejection`, and counted by reason.
//! - A swapped-in generation is on probation (`probation`); if it fails too often it is rolled
//!   back automatically, if it still serves. `roll_back` also does it on command. A rollback
//!   restores the previous generation and discards the failed one (there is no previous
//!   generation afterwards); it is logged, kept as `last_rollback` and counted.
//! - Swaps and rollbacks run one at a time (an async lock); readers never wait for them.
//! - daprd reads `/dapr/subscribe` once, so the routes served are the start-up plugin's for the
//!   life of the process. A plugin whose subscriptions differ is swapped in anyway, and the
//!   difference is reported (`restart_required`) until a restart or a rollback ends it.
//! - What operators see is shaped in `report` (`status`); `/metrics` reads the same snapshot
//!   (metrics/plugin.rs).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::mpsc;

use super::bindings::Subscription;
use super::loaded::sha256_hex;
use super::prepare::{Preparer, Rejection};
use super::probation::{Alarm, Probation};
use super::registry::{Generation, Registry, RollbackRefused};
use super::report::{
    GenerationInfo, PolicyInfo, RejectionRecord, RollbackRecord, Status, SubscriptionChanges,
    Swapped, Trigger,
};
use crate::config::RollbackPolicy;

/// What a swap request did.
#[derive(Debug, Clone)]
pub enum SwapOutcome {
    Unchanged(GenerationInfo),
    Swapped(Box<Swapped>),
}

#[derive(Default)]
struct Counters {
    swaps: AtomicU64,
    unchanged: AtomicU64,
    rollbacks_auto: AtomicU64,
    rollbacks_command: AtomicU64,
}

#[derive(Default)]
struct Journal {
    last_rejection: Option<RejectionRecord>,
    last_rollback: Option<RollbackRecord>,
    rejections: BTreeMap<&'static str, u64>,
}

pub struct Swapper {
    preparer: Preparer,
    registry: Arc<Registry>,
    policy: RollbackPolicy,
    /// What daprd was told at start-up.
    served: Vec<Subscription>,
    lock: tokio::sync::Mutex<()>,
    alarms: mpsc::UnboundedSender<Alarm>,
    counters: Counters,
    journal: Mutex<Journal>,
}

impl Swapper {
    /// Starts the swap logic for `registry`, whose current generation serves `served`. Spawns the
    /// task that acts on probation alarms (it ends with the process).
    pub fn start(
        preparer: Preparer,
        registry: Arc<Registry>,
        policy: RollbackPolicy,
        served: Vec<Subscription>,
    ) -> Arc<Swapper> {
        let (alarms, mut rx) = mpsc::unbounded_channel::<Alarm>();
        let swapper = Arc::new(Swapper {
            preparer,
            registry,
            policy,
            served,
            lock: tokio::sync::Mutex::new(()),
            alarms,
            counters: Counters::default(),
            journal: Mutex::new(Journal::default()),
        });
        let weak = Arc::downgrade(&swapper);
        tokio::spawn(async move {
            while let Some(alarm) = rx.recv().await {
                let Some(swapper) = weak.upgrade() else {
                    return;
                };
                tracing::warn!(
                    generation = alarm.generation,
                    "automatic rollback: {}",
                    alarm.reason
                );
                if let Err(e) = swapper
                    .roll_back(Trigger::Auto, alarm.reason, Some(alarm.generation))
                    .await
                {
                    tracing::info!("automatic rollback not needed: {e}");
                }
            }
        });
        swapper
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Prepares `bytes` and, when they pass, makes them the serving generation.
    pub async fn swap(&self, bytes: Vec<u8>, origin: &str) -> Result<SwapOutcome, Rejection> {
        let _one_at_a_time = self.lock.lock().await;
        let sha256 = sha256_hex(&bytes);
        let current = self.registry.current();
        if current.plugin.sha256 == sha256 {
            self.counters.unchanged.fetch_add(1, Relaxed);
            tracing::info!(
                origin,
                sha256,
                "plugin unchanged: {} already serves these bytes",
                current.plugin.label()
            );
            return Ok(SwapOutcome::Unchanged(GenerationInfo::of(&current)));
        }
        tracing::info!(
            origin,
            sha256,
            "loading a new plugin ({} bytes)",
            bytes.len()
        );
        let prepared = match self.preparer.prepare(bytes).await {
            Ok(prepared) => prepared,
            Err(rejection) => {
                self.reject(origin, Some(sha256), &rejection);
                return Err(rejection);
            }
        };
        let probation = Probation::new(self.policy, self.alarms.clone());
        let (new, replaced) =
            self.registry
                .install(prepared.plugin, origin.to_string(), Some(probation));
        self.counters.swaps.fetch_add(1, Relaxed);
        let changes = self.subscription_changes(&new);
        let canary_cases = prepared.canary.plugin_cases + prepared.canary.operator_cases;
        let swapped = Swapped {
            current: GenerationInfo::of(&new),
            replaced: GenerationInfo::of(&replaced),
            compile_cache: prepared.compiled.as_str(),
            canary: prepared.canary,
            took_ms: prepared.took.as_millis(),
            restart_required: changes != SubscriptionChanges::default(),
            subscription_changes: changes,
        };
        tracing::info!(
            origin,
            sha256 = %new.plugin.sha256,
            compile_cache = swapped.compile_cache,
            canary_cases,
            canary_ran = ?swapped.canary.ran,
            took_ms = swapped.took_ms,
            "plugin swapped: generation {} {} now serves; generation {} {} drains and stays as the rollback target",
            new.number,
            new.plugin.label(),
            replaced.number,
            replaced.plugin.label(),
        );
        if swapped.restart_required {
            tracing::warn!(
                added = ?swapped.subscription_changes.added,
                removed = ?swapped.subscription_changes.removed,
                "the new plugin subscribes differently; the start-up routes keep serving until the host restarts"
            );
        }
        Ok(SwapOutcome::Swapped(Box::new(swapped)))
    }

    /// Records a plugin that could not even be read (the watcher and SIGHUP report those here).
    pub fn reject(&self, origin: &str, sha256: Option<String>, rejection: &Rejection) {
        let serving = self.registry.current();
        tracing::warn!(
            origin,
            kind = rejection.kind(),
            "plugin rejected; {} keeps serving: {rejection}",
            serving.plugin.label()
        );
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        *journal.rejections.entry(rejection.kind()).or_default() += 1;
        journal.last_rejection = Some(RejectionRecord {
            at: Utc::now(),
            origin: origin.to_string(),
            sha256,
            kind: rejection.kind(),
            reason: rejection.to_string(),
        });
    }

    /// Restores the previous generation (see `Registry::roll_back` for `only_if_current`).
    pub async fn roll_back(
        &self,
        trigger: Trigger,
        reason: String,
        only_if_current: Option<u64>,
    ) -> Result<RollbackRecord, RollbackRefused> {
        let _one_at_a_time = self.lock.lock().await;
        let (from, to) = self.registry.roll_back(only_if_current)?;
        match trigger {
            Trigger::Auto => &self.counters.rollbacks_auto,
            Trigger::Command => &self.counters.rollbacks_command,
        }
        .fetch_add(1, Relaxed);
        let record = RollbackRecord {
            at: Utc::now(),
            trigger,
            reason,
            from: GenerationInfo::of(&from),
            to: GenerationInfo::of(&to),
        };
        tracing::warn!(
            ?trigger,
            "rolled back: generation {} {} serves again; generation {} {} ({} of {} calls failed) drains and is dropped: {}",
            to.number,
            to.plugin.label(),
            from.number,
            from.plugin.label(),
            record.from.failures,
            record.from.deliveries,
            record.reason,
        );
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_rollback = Some(record.clone());
        Ok(record)
    }

    pub fn status(&self) -> Status {
        let current = self.registry.current();
        let changes = self.subscription_changes(&current);
        let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        let rollbacks_auto = self.counters.rollbacks_auto.load(Relaxed);
        let rollbacks_command = self.counters.rollbacks_command.load(Relaxed);
        Status {
            current: GenerationInfo::of(&current),
            previous: self.registry.previous().map(|g| GenerationInfo::of(&g)),
            last_rejection: journal.last_rejection.clone(),
            last_rollback: journal.last_rollback.clone(),
            restart_required: changes != SubscriptionChanges::default(),
            subscription_changes: changes,
            rollback_policy: PolicyInfo {
                window_deliveries: self.policy.window_deliveries,
                window_secs: self.policy.window.as_secs(),
                failure_rate: self.policy.failure_rate,
                min_deliveries: self.policy.min_deliveries,
            },
            swaps: self.counters.swaps.load(Relaxed),
            unchanged: self.counters.unchanged.load(Relaxed),
            rejections: journal.rejections.values().sum(),
            rejections_by_reason: journal.rejections.clone(),
            rollbacks: rollbacks_auto + rollbacks_command,
            rollbacks_auto,
            rollbacks_command,
            instances: current.plugin.runtime().instances(),
            plugin_log_lines_dropped: current.plugin.runtime().log_budget().dropped(),
        }
    }

    fn subscription_changes(&self, generation: &Generation) -> SubscriptionChanges {
        let describe = |s: &Subscription| {
            let dlq = s
                .dead_letter_topic
                .as_deref()
                .map(|t| format!(" (dead letters to {t})"))
                .unwrap_or_default();
            format!("{}/{} -> {}{dlq}", s.pubsub, s.topic, s.route)
        };
        let served: Vec<String> = self.served.iter().map(describe).collect();
        let wanted: Vec<String> = generation
            .plugin
            .manifest
            .subscriptions
            .iter()
            .map(describe)
            .collect();
        SubscriptionChanges {
            added: wanted
                .iter()
                .filter(|s| !served.contains(s))
                .cloned()
                .collect(),
            removed: served
                .iter()
                .filter(|s| !wanted.contains(s))
                .cloned()
                .collect(),
        }
    }
}
