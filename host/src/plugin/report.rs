//! What operators see of the swap logic: the JSON of `GET /admin/plugin` (and of swap and
//! rollback answers) and the series it adds to `/metrics`.
//!
//! Contract: these are snapshots, taken when asked; nothing here holds a generation alive.
//! Field names are part of the admin API (docs/operations.md); series names are part of the
//! metrics contract. Label values that come from a plugin (name, version) are escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

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

/// Appends the swap series to a Prometheus text exposition.
pub fn render_metrics(status: &Status, out: &mut String) {
    let mut metric = |name: &str, kind: &str, help: &str, series: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in series {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let plain = |value: u64| [(String::new(), value)];
    metric(
        "task_events_plugin_swaps_total",
        "counter",
        "Plugins swapped in.",
        &plain(status.swaps),
    );
    metric(
        "task_events_plugin_swaps_unchanged_total",
        "counter",
        "Swap requests whose plugin already served (no-ops).",
        &plain(status.unchanged),
    );
    let by_reason: Vec<(String, u64)> = status
        .rejections_by_reason
        .iter()
        .map(|(kind, n)| (format!("{{reason=\"{kind}\"}}"), *n))
        .collect();
    metric(
        "task_events_plugin_rejections_total",
        "counter",
        "Plugins refused before serving, by reason.",
        &by_reason,
    );
    metric(
        "task_events_plugin_rollbacks_total",
        "counter",
        "Rollbacks to the previous plugin, by trigger.",
        &[
            ("{trigger=\"auto\"}".into(), status.rollbacks_auto),
            ("{trigger=\"command\"}".into(), status.rollbacks_command),
        ],
    );
    let generations: Vec<(&str, &GenerationInfo)> = std::iter::once(("current", &status.current))
        .chain(status.previous.iter().map(|g| ("previous", g)))
        .collect();
    let info: Vec<(String, u64)> = generations
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
        .collect();
    metric(
        "task_events_plugin_generation_info",
        "gauge",
        "The current and previous plugin generations (value 1).",
        &info,
    );
    let per_generation = |value: fn(&GenerationInfo) -> u64| -> Vec<(String, u64)> {
        generations
            .iter()
            .map(|(_, g)| (format!("{{generation=\"{}\"}}", g.generation), value(g)))
            .collect()
    };
    metric(
        "task_events_plugin_generation_deliveries_total",
        "counter",
        "Plugin calls per generation.",
        &per_generation(|g| g.deliveries),
    );
    metric(
        "task_events_plugin_generation_failures_total",
        "counter",
        "Plugin calls that trapped or hit a limit, per generation.",
        &per_generation(|g| g.failures),
    );
    metric(
        "task_events_plugin_instances",
        "gauge",
        "Plugin instances: live now, the most at once since start-up, and the pool size.",
        &[
            ("{kind=\"live\"}".into(), status.instances.live as u64),
            ("{kind=\"peak\"}".into(), status.instances.peak as u64),
            ("{kind=\"max\"}".into(), status.instances.max as u64),
        ],
    );
    metric(
        "task_events_plugin_log_lines_dropped_total",
        "counter",
        "Plugin log lines dropped over the rate limit (--plugin-log-lines-per-sec).",
        &plain(status.plugin_log_lines_dropped),
    );
    metric(
        "task_events_plugin_restart_required",
        "gauge",
        "1 when the serving plugin subscribes differently from the routes served since start-up.",
        &plain(u64::from(status.restart_required)),
    );
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
