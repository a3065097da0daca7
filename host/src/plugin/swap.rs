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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use super::bindings::Subscription;
use super::canary::CanaryReport;
use super::loaded::sha256_hex;
use super::prepare::{Preparer, Rejection};
use super::probation::{Alarm, Probation};
use super::registry::{Generation, Registry, RollbackRefused};
use crate::config::RollbackPolicy;
use crate::metrics::MetricsSource;

/// One generation as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationInfo {
    pub generation: u64,
    pub name: String,
    pub version: String,
    pub sha256: String,
    #[serde(serialize_with = "rfc3339")]
    pub loaded_at: DateTime<Utc>,
    pub origin: String,
    pub deliveries: u64,
    pub failures: u64,
    /// Whether the automatic-rollback window is still open.
    pub on_probation: bool,
}

impl GenerationInfo {
    pub fn of(g: &Generation) -> GenerationInfo {
        GenerationInfo {
            generation: g.number,
            name: g.plugin.name.clone(),
            version: g.plugin.version.clone(),
            sha256: g.plugin.sha256.clone(),
            loaded_at: g.loaded_at,
            origin: g.origin.clone(),
            deliveries: g.deliveries(),
            failures: g.failures(),
            on_probation: g.probation().is_some(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RejectionRecord {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub origin: String,
    pub sha256: Option<String>,
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The probation's failure rate.
    Auto,
    /// `POST /admin/rollback`.
    Command,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackRecord {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub trigger: Trigger,
    pub reason: String,
    pub from: GenerationInfo,
    pub to: GenerationInfo,
}

/// How the current plugin's subscriptions differ from those served since start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Swapped {
    pub current: GenerationInfo,
    pub replaced: GenerationInfo,
    /// `hit` when the compiled code came from the cache.
    pub compile_cache: &'static str,
    pub canary: CanaryReport,
    pub took_ms: u128,
    pub restart_required: bool,
    pub subscription_changes: SubscriptionChanges,
}

#[derive(Debug, Clone)]
pub enum SwapOutcome {
    Unchanged(GenerationInfo),
    Swapped(Box<Swapped>),
}

/// Everything `GET /admin/plugin` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub current: GenerationInfo,
    pub previous: Option<GenerationInfo>,
    pub last_rejection: Option<RejectionRecord>,
    pub last_rollback: Option<RollbackRecord>,
    pub restart_required: bool,
    pub subscription_changes: SubscriptionChanges,
    pub rollback_policy: PolicyInfo,
    pub swaps: u64,
    pub rejections: u64,
    pub rollbacks: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    pub window_deliveries: u64,
    pub window_secs: u64,
    pub failure_rate: f64,
    pub min_deliveries: u64,
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
            canary_cases = prepared.canary.plugin_cases + prepared.canary.operator_cases,
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
            rejections: journal.rejections.values().sum(),
            rollbacks: self.counters.rollbacks_auto.load(Relaxed)
                + self.counters.rollbacks_command.load(Relaxed),
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

impl MetricsSource for Swapper {
    fn render(&self, out: &mut String) {
        let status = self.status();
        let mut metric = |name: &str, kind: &str, help: &str, series: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let c = &self.counters;
        metric(
            "task_events_plugin_swaps_total",
            "counter",
            "Plugins swapped in.",
            &[(String::new(), c.swaps.load(Relaxed))],
        );
        metric(
            "task_events_plugin_swaps_unchanged_total",
            "counter",
            "Swap requests whose plugin already served (no-ops).",
            &[(String::new(), c.unchanged.load(Relaxed))],
        );
        let rejections: Vec<(String, u64)> = {
            let journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            journal
                .rejections
                .iter()
                .map(|(kind, n)| (format!("{{reason=\"{kind}\"}}"), *n))
                .collect()
        };
        metric(
            "task_events_plugin_rejections_total",
            "counter",
            "Plugins refused before serving, by reason.",
            &rejections,
        );
        metric(
            "task_events_plugin_rollbacks_total",
            "counter",
            "Rollbacks to the previous plugin, by trigger.",
            &[
                ("{trigger=\"auto\"}".into(), c.rollbacks_auto.load(Relaxed)),
                (
                    "{trigger=\"command\"}".into(),
                    c.rollbacks_command.load(Relaxed),
                ),
            ],
        );
        let generations: Vec<(&str, &GenerationInfo)> =
            std::iter::once(("current", &status.current))
                .chain(status.previous.iter().map(|g| ("previous", g)))
                .collect();
        let label = |g: &GenerationInfo| format!("{{generation=\"{}\"}}", g.generation);
        metric(
            "task_events_plugin_generation_info",
            "gauge",
            "The current and previous plugin generations (value 1).",
            &generations
                .iter()
                .map(|(role, g)| {
                    let labels = format!(
                        "{{generation=\"{}\",role=\"{role}\",name=\"{}\",version=\"{}\",sha256=\"{}\"}}",
                        g.generation,
                        escape(&g.name),
                        escape(&g.version),
                        g.sha256
                    );
                    (labels, 1)
                })
                .collect::<Vec<_>>(),
        );
        metric(
            "task_events_plugin_generation_deliveries_total",
            "counter",
            "Plugin calls per generation.",
            &generations
                .iter()
                .map(|(_, g)| (label(g), g.deliveries))
                .collect::<Vec<_>>(),
        );
        metric(
            "task_events_plugin_generation_failures_total",
            "counter",
            "Plugin calls that trapped or hit a limit, per generation.",
            &generations
                .iter()
                .map(|(_, g)| (label(g), g.failures))
                .collect::<Vec<_>>(),
        );
        metric(
            "task_events_plugin_restart_required",
            "gauge",
            "1 when the serving plugin subscribes differently from the routes served since start-up.",
            &[(String::new(), u64::from(status.restart_required))],
        );
    }
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
