//! What a plugin instance sees of the world: the per-delivery store data.
//!
//! Lifetime: one `Sandbox` per `Store`, one `Store` per delivery; dropped with the store when
//! the call returns, so nothing crosses events or users. The guest gets no filesystem, network,
//! environment variables, arguments or real clock: the WASI imports that Rust's std links are
//! satisfied with empty stand-ins (clocks frozen at the epoch).
//!
//! Randomness is the one thing that differs between instances: every instance gets fresh seeds
//! from the host's RNG (secure and insecure random, and the insecure seed that std's `HashMap`
//! keys come from), so an input crafted to collide one instance's hash tables does not collide
//! the next one's (hash flooding). A plugin's output must not depend on it (wit/plugin.wit:
//! no randomness); the task plugin never lets it reach its output, which the canary and the
//! byte-identical redelivery tests check.
//!
//! Memory growth past the limit fails the call with a recorded `MemoryHit`. The `log` import is
//! capped per call and by the runtime-wide `LogBudget` (across calls), its text has control
//! characters escaped, and each line is tagged with the plugin's identity (`logging`).

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng as _, SeedableRng};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::{
    Level,
    task_events::plugin::{log, types},
};
use super::logging::{Admit, LogBudget, escape_controls};

/// Longest log line kept; the rest is cut (guests choose what they print, not how much).
const MAX_LOG_LINE: usize = 1024;

/// A memory growth the limiter refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryHit {
    pub current: usize,
    pub desired: usize,
    pub limit: usize,
}

pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    /// `name@version` of the plugin, for log lines.
    label: Arc<str>,
    memory_limit: usize,
    pub memory_hit: Option<MemoryHit>,
    log_lines_left: u32,
    log_budget: Arc<LogBudget>,
}

impl Sandbox {
    pub fn new(
        label: Arc<str>,
        memory_limit: usize,
        max_log_lines: u32,
        log_budget: Arc<LogBudget>,
    ) -> Self {
        let mut host_rng = rand::rng();
        let mut wasi = WasiCtxBuilder::new();
        wasi.wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(rand::rngs::StdRng::from_rng(&mut host_rng))
            .insecure_random(rand::rngs::StdRng::from_rng(&mut host_rng))
            .insecure_random_seed(
                u128::from(host_rng.next_u64()) << 64 | u128::from(host_rng.next_u64()),
            )
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Sandbox {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            label,
            memory_limit,
            memory_hit: None,
            log_lines_left: max_log_lines,
            log_budget,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for Sandbox {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_hit = Some(MemoryHit {
                current,
                desired,
                limit: self.memory_limit,
            });
            // Failing the grow (instead of returning false) ends the call at once with a trap we
            // can name, rather than letting the guest's allocator abort somewhere later.
            wasmtime::bail!("memory limit of {} bytes exceeded", self.memory_limit);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The `types` interface has no functions; the trait is only a marker.
impl types::Host for Sandbox {}

impl log::Host for Sandbox {
    fn log(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let plugin = &*self.label;
        match self.log_budget.admit() {
            Admit::No => return,
            Admit::Yes { dropped: 0 } => {}
            Admit::Yes { dropped } => tracing::warn!(
                target: "plugin",
                plugin,
                "{dropped} plugin log lines dropped: over the budget of {} lines a second",
                self.log_budget.per_sec()
            ),
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let message = escape_controls(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
        if self.log_lines_left == 0 {
            tracing::warn!(target: "plugin", plugin, "log limit for this call reached; further lines dropped");
        }
    }
}

/// Wall and monotonic clock stuck at zero: the plugin must not depend on time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}
