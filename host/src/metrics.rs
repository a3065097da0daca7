//! Counters an operator watches, served as Prometheus text on `GET /metrics`.
//!
//! Plain atomics: a handful of counters does not justify a metrics framework. Each counter is
//! written where its event happens and read only when `/metrics` is scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use crate::dapr::Status;
use crate::dead_letter::DeadLetterReason;
use crate::plugin::CallError;

/// Another part of the host that writes its own series into `/metrics` (e.g. the plugin swap
/// logic: swaps, rejections, rollbacks, per-generation counts).
pub trait MetricsSource: Send + Sync {
    /// Appends complete `# HELP`/`# TYPE`/sample lines to `out`.
    fn render(&self, out: &mut String);
}

#[derive(Default)]
pub struct Metrics {
    sources: RwLock<Vec<Arc<dyn MetricsSource>>>,
    success: AtomicU64,
    retry: AtomicU64,
    drop: AtomicU64,
    duplicates: AtomicU64,
    dead_letter_rejected: AtomicU64,
    dead_letter_exhausted: AtomicU64,
    dead_letter_effect: AtomicU64,
    dead_letter_sidecar: AtomicU64,
    sidecar_retries: AtomicU64,
    sidecar_errors: AtomicU64,
    plugin_trap: AtomicU64,
    plugin_deadline: AtomicU64,
    plugin_memory: AtomicU64,
    envelope_errors: AtomicU64,
}

impl Metrics {
    /// Adds `source` to every later `render`.
    pub fn add_source(&self, source: Arc<dyn MetricsSource>) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    pub fn delivery(&self, status: Status) {
        match status {
            Status::Success => &self.success,
            Status::Retry => &self.retry,
            Status::Drop => &self.drop,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Relaxed);
    }

    pub fn dead_letter(&self, reason: DeadLetterReason) {
        match reason {
            DeadLetterReason::Rejected => &self.dead_letter_rejected,
            DeadLetterReason::RetriesExhausted => &self.dead_letter_exhausted,
            DeadLetterReason::EffectRefused => &self.dead_letter_effect,
            DeadLetterReason::SidecarRefused => &self.dead_letter_sidecar,
        }
        .fetch_add(1, Relaxed);
    }

    /// A transient sidecar failure retried inside the delivery.
    pub fn sidecar_retry(&self) {
        self.sidecar_retries.fetch_add(1, Relaxed);
    }

    pub fn sidecar_error(&self) {
        self.sidecar_errors.fetch_add(1, Relaxed);
    }

    pub fn envelope_error(&self) {
        self.envelope_errors.fetch_add(1, Relaxed);
    }

    pub fn plugin_failure(&self, error: &CallError) {
        match error {
            CallError::Trap { .. } => &self.plugin_trap,
            CallError::Deadline { .. } => &self.plugin_deadline,
            CallError::MemoryLimit { .. } => &self.plugin_memory,
        }
        .fetch_add(1, Relaxed);
    }

    /// Prometheus text exposition format; `extra` is appended (e.g. per-generation gauges).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, series: &[(&str, &AtomicU64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Relaxed));
            }
        };
        counter(
            "task_events_deliveries_total",
            "Deliveries answered, by status.",
            &[
                ("{status=\"SUCCESS\"}", &self.success),
                ("{status=\"RETRY\"}", &self.retry),
                ("{status=\"DROP\"}", &self.drop),
            ],
        );
        counter(
            "task_events_duplicates_total",
            "Deliveries whose dedupe key was already handled.",
            &[("", &self.duplicates)],
        );
        counter(
            "task_events_dead_letters_total",
            "Events published to a dead-letter topic, by reason.",
            &[
                ("{reason=\"rejected\"}", &self.dead_letter_rejected),
                (
                    "{reason=\"retries-exhausted\"}",
                    &self.dead_letter_exhausted,
                ),
                ("{reason=\"effect-refused\"}", &self.dead_letter_effect),
                ("{reason=\"sidecar-refused\"}", &self.dead_letter_sidecar),
            ],
        );
        counter(
            "task_events_sidecar_retries_total",
            "Transient sidecar failures retried inside a delivery.",
            &[("", &self.sidecar_retries)],
        );
        counter(
            "task_events_sidecar_errors_total",
            "Failed sidecar calls (answered RETRY).",
            &[("", &self.sidecar_errors)],
        );
        counter(
            "task_events_envelope_errors_total",
            "Bodies that were not usable CloudEvents (answered DROP).",
            &[("", &self.envelope_errors)],
        );
        counter(
            "task_events_plugin_failures_total",
            "Plugin calls that failed, by limit.",
            &[
                ("{kind=\"trap\"}", &self.plugin_trap),
                ("{kind=\"deadline\"}", &self.plugin_deadline),
                ("{kind=\"memory\"}", &self.plugin_memory),
            ],
        );
        out.push_str(extra);
        for source in self
            .sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            source.render(&mut out);
        }
        out
    }
}
