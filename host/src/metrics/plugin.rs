//! The plugin swap logic's series, read from `Swapper::status()` at every scrape.
//!
//! The swap logic keeps its own counters (plugin/swap.rs) and reports them as a snapshot; this
//! collector turns the snapshot into series of the host's one registry. Swaps and rollbacks are
//! counters whose value is the snapshot's; generation info names the plugin (name, version,
//! sha256 as labels, escaped by the encoder, value 1). One scrape at a time fills the families
//! (a lock), so two concurrent scrapes never see a half-filled one.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::plugin::Swapper;

pub(super) struct PluginCollector {
    swapper: Arc<Swapper>,
    fill: Mutex<()>,
    swaps: IntCounter,
    unchanged: IntCounter,
    rejections: IntCounterVec,
    rollbacks: IntCounterVec,
    generation: IntGaugeVec,
    generation_info: IntGaugeVec,
    generation_deliveries: IntCounterVec,
    generation_failures: IntCounterVec,
    instances: IntGaugeVec,
    log_lines_dropped: IntCounter,
    restart_required: IntGauge,
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("a valid metric name")
}

fn counters(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric")
}

impl PluginCollector {
    pub(super) fn new(swapper: Arc<Swapper>) -> PluginCollector {
        PluginCollector {
            swapper,
            fill: Mutex::new(()),
            swaps: counter("task_events_plugin_swaps_total", "Plugins swapped in."),
            unchanged: counter(
                "task_events_plugin_swaps_unchanged_total",
                "Swap requests whose plugin already served (no-ops).",
            ),
            rejections: counters(
                "task_events_plugin_rejections_total",
                "Plugins refused before serving, by reason.",
                &["reason"],
            ),
            rollbacks: counters(
                "task_events_plugin_rollbacks_total",
                "Rollbacks to the previous plugin, by trigger.",
                &["trigger"],
            ),
            generation: gauges(
                "task_events_plugin_generation",
                "Generation number of the serving plugin.",
                &["name", "version", "sha256"],
            ),
            generation_info: gauges(
                "task_events_plugin_generation_info",
                "The current and previous plugin generations (value 1).",
                &["generation", "role", "name", "version", "sha256"],
            ),
            generation_deliveries: counters(
                "task_events_plugin_generation_deliveries_total",
                "Plugin calls per generation.",
                &["generation"],
            ),
            generation_failures: counters(
                "task_events_plugin_generation_failures_total",
                "Plugin calls that trapped or hit a limit, per generation.",
                &["generation"],
            ),
            instances: gauges(
                "task_events_plugin_instances",
                "Plugin instances: live now, the most at once since start-up, and the pool size.",
                &["kind"],
            ),
            log_lines_dropped: counter(
                "task_events_plugin_log_lines_dropped_total",
                "Plugin log lines dropped over the rate limit (--plugin-log-lines-per-sec).",
            ),
            restart_required: IntGauge::new(
                "task_events_plugin_restart_required",
                "1 when the serving plugin subscribes differently from the routes served since start-up.",
            )
            .expect("a valid metric name"),
        }
    }

    fn parts(&self) -> [&dyn Collector; 11] {
        [
            &self.swaps,
            &self.unchanged,
            &self.rejections,
            &self.rollbacks,
            &self.generation,
            &self.generation_info,
            &self.generation_deliveries,
            &self.generation_failures,
            &self.instances,
            &self.log_lines_dropped,
            &self.restart_required,
        ]
    }
}

/// Sets a counter to a snapshot's value (counters only go up; the snapshot's do too).
fn set(counter: &IntCounter, value: u64) {
    counter.reset();
    counter.inc_by(value);
}

impl Collector for PluginCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.parts().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_scrape = self.fill.lock().unwrap_or_else(|e| e.into_inner());
        let status = self.swapper.status();
        set(&self.swaps, status.swaps);
        set(&self.unchanged, status.unchanged);
        self.rejections.reset();
        for (reason, n) in &status.rejections_by_reason {
            self.rejections.with_label_values(&[reason]).inc_by(*n);
        }
        self.rollbacks.reset();
        self.rollbacks
            .with_label_values(&["auto"])
            .inc_by(status.rollbacks_auto);
        self.rollbacks
            .with_label_values(&["command"])
            .inc_by(status.rollbacks_command);
        self.generation.reset();
        let current = &status.current;
        self.generation
            .with_label_values(&[&current.name, &current.version, &current.sha256])
            .set(i64::try_from(current.generation).unwrap_or(i64::MAX));
        self.generation_info.reset();
        self.generation_deliveries.reset();
        self.generation_failures.reset();
        let roles = std::iter::once(("current", current))
            .chain(status.previous.iter().map(|g| ("previous", g)));
        for (role, g) in roles {
            let number = g.generation.to_string();
            self.generation_info
                .with_label_values(&[&number, role, &g.name, &g.version, &g.sha256])
                .set(1);
            self.generation_deliveries
                .with_label_values(&[&number])
                .inc_by(g.deliveries);
            self.generation_failures
                .with_label_values(&[&number])
                .inc_by(g.failures);
        }
        let instances = &status.instances;
        for (kind, n) in [
            ("live", instances.live),
            ("peak", instances.peak),
            ("max", instances.max),
        ] {
            self.instances
                .with_label_values(&[kind])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        set(&self.log_lines_dropped, status.plugin_log_lines_dropped);
        self.restart_required
            .set(i64::from(status.restart_required));
        self.parts().into_iter().flat_map(|c| c.collect()).collect()
    }
}
