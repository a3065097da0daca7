//! What operators see of the swap logic: the JSON of `GET /admin/plugin` (and of swap and
//! rollback answers), also the snapshot `/metrics` reads its plugin series from
//! (metrics/plugin.rs).
//!
//! Contract: these are snapshots, taken when asked; nothing here holds a generation alive.
//! Field names are part of the admin API (docs/operations.md).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::canary::CanaryReport;
use super::registry::Generation;
use super::runtime::Instances;

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
    /// Topics the plugin declared it publishes to; null for a 1.0 plugin that declares none.
    pub publishes: Option<Vec<String>>,
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
            publishes: g
                .plugin
                .effects
                .declared()
                .map(|d| d.into_iter().map(str::to_string).collect()),
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
    /// Plugins swapped in since start-up.
    pub swaps: u64,
    /// Swap requests whose bytes already served.
    pub unchanged: u64,
    /// Plugins refused, in total and by reason (`Rejection::kind`).
    pub rejections: u64,
    pub rejections_by_reason: BTreeMap<&'static str, u64>,
    /// Rollbacks, in total and by trigger.
    pub rollbacks: u64,
    pub rollbacks_auto: u64,
    pub rollbacks_command: u64,
    /// Live plugin instances, their peak since start-up, and the pool size.
    pub instances: Instances,
    /// Plugin log lines dropped over the runtime-wide budget.
    pub plugin_log_lines_dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    pub window_deliveries: u64,
    pub window_secs: u64,
    pub failure_rate: f64,
    pub min_deliveries: u64,
}

fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
