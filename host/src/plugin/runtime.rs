//! The process-wide wasm runtime: one `Engine`, one `Linker`, one epoch ticker.
//!
//! Contract: `Runtime` is created once at start-up and shared (it is cheap to clone). Plugins
//! of every generation are compiled by its engine, so a swapped-in plugin gets the same limits.
//! The epoch ticker is one thread per engine (a thread per call costs 2–3 orders of magnitude,
//! wasmtime #11814); it stops when the last `Runtime` clone is dropped. The pooling allocator
//! is used when the machine can reserve its address space, like `wasmtime serve` and Spin do;
//! otherwise instances are allocated on demand, with a warning. A semaphore in front of
//! instantiation turns "pool exhausted" into waiting (backpressure), never into an error: the
//! caller moves its permit into the blocking task that runs the wasm call, so the permit lives
//! exactly as long as the instance, even when the request that wanted it is cancelled (see
//! `registry`). `instances()` counts live instances and their peak, which must never pass the
//! pool size. The plugin log budget (`logging`) is runtime-wide too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use super::bindings::EventPlugin;
use super::logging::LogBudget;
use super::sandbox::Sandbox;
use crate::config::Limits;

#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: Limits,
    permits: Arc<Semaphore>,
    pooling: bool,
    stop_ticker: Arc<AtomicBool>,
    log_budget: Arc<LogBudget>,
    live: AtomicUsize,
    peak: AtomicUsize,
}

/// Live plugin instances: now, the most ever at once, and the pool size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Instances {
    pub live: usize,
    pub peak: usize,
    pub max: usize,
}

/// One live instance, counted until dropped (with its `Store`).
pub struct LiveInstance(Runtime);

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.inner.live.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    pub fn new(limits: Limits) -> wasmtime::Result<Runtime> {
        let (engine, pooling) = match Engine::new(&config(&limits, true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(
                    "pooling allocator unavailable ({e:#}); allocating instances on demand"
                );
                (Engine::new(&config(&limits, false))?, false)
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        EventPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.weak(), limits.epoch_tick, stop_ticker.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                permits: Arc::new(Semaphore::new(limits.max_instances as usize)),
                limits,
                pooling,
                stop_ticker,
                log_budget: Arc::new(LogBudget::new(limits.log_lines_per_sec)),
                live: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn linker(&self) -> &Linker<Sandbox> {
        &self.inner.linker
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// A slot for one live instance; waits while `max_instances` are in use.
    pub async fn instance_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the instance semaphore is never closed")
    }

    /// The plugin log budget shared by every call.
    pub fn log_budget(&self) -> &Arc<LogBudget> {
        &self.inner.log_budget
    }

    /// Counts one instance as live until the guard is dropped.
    pub fn live_instance(&self) -> LiveInstance {
        let live = self.inner.live.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner.peak.fetch_max(live, Ordering::Relaxed);
        LiveInstance(self.clone())
    }

    pub fn instances(&self) -> Instances {
        Instances {
            live: self.inner.live.load(Ordering::Relaxed),
            peak: self.inner.peak.load(Ordering::Relaxed),
            max: self.inner.limits.max_instances as usize,
        }
    }

    /// Instance permits free right now.
    pub fn free_permits(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// Epoch ticks that make up one call's deadline.
    pub fn deadline_ticks(&self) -> u64 {
        let tick = self.inner.limits.epoch_tick.as_micros().max(1);
        (self.inner.limits.call_deadline.as_micros().div_ceil(tick) as u64).max(1)
    }
}

/// Per pool slot, the most memory (and table) bytes reset in place instead of decommitted; only
/// used with PAGEMAP_SCAN (see `config`). A task-plugin call dirties well under 100 KiB, so the
/// default 1 MiB costs at most 1 MiB of RSS per warm slot. `TASK_EVENTS_WASM_KEEP_RESIDENT_KIB`
/// overrides it; 0 restores madvise-only resets (for comparisons, docs/performance.md).
fn keep_resident() -> usize {
    std::env::var("TASK_EVENTS_WASM_KEEP_RESIDENT_KIB")
        .ok()
        .and_then(|kib| kib.parse::<usize>().ok())
        .map_or(1 << 20, |kib| kib.saturating_mul(1024))
}

fn config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    // `TASK_EVENTS_WASM_PROFILER=perfmap` writes /tmp/perf-<pid>.map so `perf report` names the
    // plugin's functions (docs/performance.md); off by default.
    if std::env::var("TASK_EVENTS_WASM_PROFILER").as_deref() == Ok("perfmap") {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    // The plugin's exports are plain synchronous functions: no component-model concurrency, which
    // also saves its per-store setup (wasmtime PR #14189).
    config.concurrency_support(false);
    if pooling {
        let instances = limits.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            // A Rust wasip2 component is a handful of core modules (the program plus shims).
            .total_core_instances(instances.saturating_mul(8))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(8))
            .max_memory_size(limits.memory_bytes)
            .max_unused_warm_slots(instances.min(16))
            // Fresh instance per delivery, so resetting a slot is on every call's path. By default
            // a slot is reset with madvise(DONTNEED), and the next instance page-faults every page
            // it touches again (~12 faults and 3 madvise calls per task-plugin call, ~18 µs of
            // system time). With PAGEMAP_SCAN (Linux 6.7+) wasmtime finds the pages the instance
            // actually wrote and copies the image back over just those, so they stay mapped and
            // the next instance starts without faults; "keep resident" caps how much is reset that
            // way per slot (the rest is still decommitted). Where the ioctl is missing this falls
            // back to the old behaviour: keeping memory resident without the scan means memsetting
            // the whole budget per call, which measured worse (docs/performance.md).
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(keep_resident())
            .table_keep_resident(keep_resident());
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn spawn_epoch_ticker(
    engine: wasmtime::EngineWeak,
    tick: std::time::Duration,
    stop: Arc<AtomicBool>,
) {
    thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .expect("spawning the epoch ticker thread");
}
