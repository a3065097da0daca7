//! What an operator watches, served as Prometheus text on `GET /metrics`.
//!
//! Contract: one `prometheus::Registry` per host, encoded by the crate's `TextEncoder` (which
//! escapes label values: plugin names, versions and topics come from outside the host). Series
//! names are part of the operator contract: docs/operations.md lists every one, and
//! tests/e2e/observability.rs checks that each documented name is served. Series whose label
//! values are known up front (statuses, reasons, failure kinds, the subscribed topics, sidecar
//! operations) exist from start-up at 0, so dashboards and alerts see them before the first event.
//!
//! Each counter is written where its event happens; the plugin swap logic's series are read from
//! its status when `/metrics` is scraped (`plugin.rs`); sidecar calls are timed by a wrapper
//! around the sidecar (`sidecar.rs`).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use crate::dapr::Status;
use crate::dead_letter::DeadLetterReason;
use crate::plugin::{CallError, Swapper};
use crate::sidecar::SidecarError;

mod plugin;
mod sidecar;

pub use sidecar::Instrumented;

/// Plugin call latencies: most calls take well under a millisecond; the default deadline is 2 s.
const PLUGIN_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Sidecar call latencies: loopback HTTP to daprd, then the broker or the state store.
const SIDECAR_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A sidecar call, as the `operation` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidecarOp {
    Publish,
    GetState,
    SaveState,
    DeleteState,
    ScheduleJob,
    DeleteJob,
    BulkGetState,
    BulkSaveState,
    BulkPublish,
}

impl SidecarOp {
    const ALL: [SidecarOp; 9] = [
        SidecarOp::Publish,
        SidecarOp::GetState,
        SidecarOp::SaveState,
        SidecarOp::DeleteState,
        SidecarOp::ScheduleJob,
        SidecarOp::DeleteJob,
        SidecarOp::BulkGetState,
        SidecarOp::BulkSaveState,
        SidecarOp::BulkPublish,
    ];

    fn as_str(self) -> &'static str {
        match self {
            SidecarOp::Publish => "publish",
            SidecarOp::GetState => "get_state",
            SidecarOp::SaveState => "save_state",
            SidecarOp::DeleteState => "delete_state",
            SidecarOp::ScheduleJob => "schedule_job",
            SidecarOp::DeleteJob => "delete_job",
            SidecarOp::BulkGetState => "bulk_get_state",
            SidecarOp::BulkSaveState => "bulk_save_state",
            SidecarOp::BulkPublish => "bulk_publish",
        }
    }
}

/// Every dead-letter reason, so each has a series from start-up. The match makes a new reason a
/// compile error here rather than a series missing from `/metrics`.
fn all_reasons() -> [DeadLetterReason; 4] {
    use DeadLetterReason::*;
    let _exhaustive = |r: DeadLetterReason| match r {
        Rejected | RetriesExhausted | EffectRefused | SidecarRefused => (),
    };
    [Rejected, RetriesExhausted, EffectRefused, SidecarRefused]
}

pub struct Metrics {
    registry: Registry,
    deliveries: IntCounterVec,
    duplicates: IntCounter,
    dead_letters: IntCounterVec,
    sidecar_retries: IntCounter,
    sidecar_errors: IntCounter,
    sidecar_calls: IntCounterVec,
    sidecar_seconds: HistogramVec,
    envelope_errors: IntCounter,
    plugin_failures: IntCounterVec,
    plugin_seconds: Histogram,
    timers: IntCounterVec,
}

impl Metrics {
    /// The host's metrics; `topics` are the subscribed topics, whose delivery series start at 0.
    pub fn new(topics: &[&str]) -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("a valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let family = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let metrics = Metrics {
            deliveries: family(
                "task_events_deliveries_total",
                "Deliveries answered, by subscribed topic and status (SUCCESS, RETRY, DROP).",
                &["topic", "status"],
            ),
            duplicates: counter(
                "task_events_duplicates_total",
                "Deliveries whose dedupe key was already handled.",
            ),
            dead_letters: family(
                "task_events_dead_letters_total",
                "Events dead-lettered (or dropped without a dead-letter topic), by reason.",
                &["reason"],
            ),
            sidecar_retries: counter(
                "task_events_sidecar_retries_total",
                "Transient sidecar failures retried inside a delivery.",
            ),
            sidecar_errors: counter(
                "task_events_sidecar_errors_total",
                "Deliveries answered RETRY because the sidecar failed.",
            ),
            sidecar_calls: family(
                "task_events_sidecar_calls_total",
                "Sidecar calls, by operation and result (ok, unavailable, conflict, misconfigured, refused).",
                &["operation", "result"],
            ),
            sidecar_seconds: {
                let opts = HistogramOpts::new(
                    "task_events_sidecar_call_duration_seconds",
                    "Time of one sidecar call, by operation.",
                )
                .buckets(SIDECAR_BUCKETS.to_vec());
                let h = HistogramVec::new(opts, &["operation"]).expect("a valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("registered once");
                h
            },
            envelope_errors: counter(
                "task_events_envelope_errors_total",
                "Bodies that were not usable CloudEvents (answered DROP).",
            ),
            plugin_failures: family(
                "task_events_plugin_failures_total",
                "Plugin calls that failed, by limit (trap, deadline, memory).",
                &["kind"],
            ),
            plugin_seconds: {
                let opts = HistogramOpts::new(
                    "task_events_plugin_call_duration_seconds",
                    "Time of one plugin call, including the wait for a free instance.",
                )
                .buckets(PLUGIN_BUCKETS.to_vec());
                let h = Histogram::with_opts(opts).expect("a valid metric");
                registry
                    .register(Box::new(h.clone()))
                    .expect("registered once");
                h
            },
            timers: family(
                "task_events_timers_total",
                "Timer changes and firings (reminders), by action (set, cancelled, fired, refused).",
                &["action"],
            ),
            registry,
        };
        for topic in topics {
            for status in [Status::Success, Status::Retry, Status::Drop] {
                metrics
                    .deliveries
                    .with_label_values(&[topic, status.as_str()]);
            }
        }
        for reason in all_reasons() {
            metrics.dead_letters.with_label_values(&[reason.as_str()]);
        }
        for action in ["set", "cancelled", "fired", "refused"] {
            metrics.timers.with_label_values(&[action]);
        }
        for kind in ["trap", "deadline", "memory"] {
            metrics.plugin_failures.with_label_values(&[kind]);
        }
        for op in SidecarOp::ALL {
            metrics
                .sidecar_calls
                .with_label_values(&[op.as_str(), "ok"]);
            metrics.sidecar_seconds.with_label_values(&[op.as_str()]);
        }
        metrics
    }

    /// Adds the plugin swap logic's series (generations, swaps, rollbacks, instances), read from
    /// `swapper`'s status at every scrape.
    pub fn watch_plugin(&self, swapper: Arc<Swapper>) {
        self.registry
            .register(Box::new(plugin::PluginCollector::new(swapper)))
            .expect("the plugin series are registered once");
    }

    pub fn delivery(&self, topic: &str, status: Status) {
        self.deliveries
            .with_label_values(&[topic, status.as_str()])
            .inc();
    }

    pub fn duplicate(&self) {
        self.duplicates.inc();
    }

    pub fn dead_letter(&self, reason: DeadLetterReason) {
        self.dead_letters
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// A transient sidecar failure retried inside the delivery.
    pub fn sidecar_retry(&self) {
        self.sidecar_retries.inc();
    }

    pub fn sidecar_error(&self) {
        self.sidecar_errors.inc();
    }

    /// One sidecar call and how it ended (`Instrumented` calls this for every call).
    pub fn sidecar_call<T>(&self, op: SidecarOp, took: Duration, result: &Result<T, SidecarError>) {
        let result = match result {
            Ok(_) => "ok",
            Err(SidecarError::Unavailable(_)) => "unavailable",
            Err(SidecarError::Conflict(_)) => "conflict",
            Err(SidecarError::Misconfigured(_)) => "misconfigured",
            Err(SidecarError::Refused(_)) => "refused",
        };
        self.sidecar_calls
            .with_label_values(&[op.as_str(), result])
            .inc();
        self.sidecar_seconds
            .with_label_values(&[op.as_str()])
            .observe(took.as_secs_f64());
    }

    /// A timer was set, cancelled, fired, or its event refused by the sidecar.
    pub fn timer(&self, action: &str) {
        self.timers.with_label_values(&[action]).inc();
    }

    pub fn envelope_error(&self) {
        self.envelope_errors.inc();
    }

    /// One plugin call, whatever it answered.
    pub fn plugin_call(&self, took: Duration) {
        self.plugin_seconds.observe(took.as_secs_f64());
    }

    pub fn plugin_failure(&self, error: &CallError) {
        let kind = match error {
            CallError::Trap { .. } => "trap",
            CallError::Deadline { .. } => "deadline",
            CallError::MemoryLimit { .. } => "memory",
        };
        self.plugin_failures.with_label_values(&[kind]).inc();
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("encoding /metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of `render`'s text.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_series_exist_from_start_up_and_count() {
        let metrics = Metrics::new(&["task-events"]);
        let text = metrics.render();
        for series in [
            r#"task_events_deliveries_total{status="RETRY",topic="task-events"} 0"#,
            r#"task_events_dead_letters_total{reason="sidecar-refused"} 0"#,
            r#"task_events_plugin_failures_total{kind="memory"} 0"#,
            r#"task_events_sidecar_calls_total{operation="publish",result="ok"} 0"#,
            "task_events_plugin_call_duration_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == series), "{series} in\n{text}");
        }
        metrics.delivery("task-events", Status::Retry);
        metrics.dead_letter(DeadLetterReason::SidecarRefused);
        metrics.sidecar_call::<()>(
            SidecarOp::SaveState,
            Duration::from_millis(3),
            &Err(SidecarError::Conflict("409".into())),
        );
        let text = metrics.render();
        for series in [
            r#"task_events_deliveries_total{status="RETRY",topic="task-events"} 1"#,
            r#"task_events_dead_letters_total{reason="sidecar-refused"} 1"#,
            r#"task_events_sidecar_calls_total{operation="save_state",result="conflict"} 1"#,
            r#"task_events_sidecar_call_duration_seconds_count{operation="save_state"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == series), "{series} in\n{text}");
        }
    }

    #[test]
    fn label_values_from_outside_are_escaped() {
        let metrics = Metrics::new(&["a\"b\\c\nd"]);
        let text = metrics.render();
        assert!(
            text.contains(r#"topic="a\"b\\c\nd""#),
            "escaped by the encoder:\n{text}"
        );
        assert!(text.lines().all(|l| !l.starts_with('d')), "no forged line");
    }
}
