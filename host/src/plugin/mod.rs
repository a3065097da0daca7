//! The wasm side of the host: engine and limits, loading and checking a plugin component, and
//! the generation that currently serves.
//!
//! Layout: `runtime` (one Engine, Linker, epoch ticker, instance permits), `sandbox` (what an
//! instance sees: WASI stand-ins, per-instance random seeds, memory limiter, log import),
//! `logging` (the plugin log budget, control-character escaping, one event per line),
//! `bindings` (the WIT world), `loaded` (one checked plugin version and its calls), `effects`
//! (the topics and sizes a plugin may publish, checked at load and per delivery), `registry`
//! (the current generation behind an ArcSwap).
//!
//! Swapping while the host runs: `cache` (compiled code on disk) and `cache_trust` (the key and
//! file checks that let the host trust it), `canary` (golden cases a new
//! version must reproduce), `prepare` (bytes -> checked plugin, used at start-up and for every
//! swap), `probation` (the automatic-rollback verdict), `swap` (validate, switch, roll back),
//! `report` (what `/admin/plugin` and `/metrics` show of it), `watch` (the `--guest` file and
//! SIGHUP as triggers).

pub mod bindings;
pub mod cache;
pub mod cache_trust;
pub mod canary;
pub mod effects;
pub mod loaded;
pub mod logging;
pub(crate) mod offline;
pub mod prepare;
pub mod probation;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod swap;
pub mod watch;

pub use loaded::{CallError, LoadError, Plugin};
pub use prepare::{Prepared, Preparer, Rejection};
pub use registry::{Generation, Registry};
pub use runtime::Runtime;
pub use swap::Swapper;

/// The bundled task plugin, compiled once per test binary, for unit tests of the swap logic.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::OnceLock;

    use wasmtime::component::Component;

    use super::{Plugin, Runtime};

    /// A fresh `Plugin` of the bundled task plugin (sharing one compiled component).
    pub fn bundled_plugin() -> Plugin {
        static COMPILED: OnceLock<(Runtime, Component)> = OnceLock::new();
        let (runtime, component) = COMPILED.get_or_init(|| {
            let runtime = Runtime::new(crate::config::Limits::default()).expect("a wasm runtime");
            let component = Component::new(runtime.engine(), crate::BUNDLED_PLUGIN)
                .expect("the bundled plugin compiles");
            (runtime, component)
        });
        let sha256 = super::loaded::sha256_hex(crate::BUNDLED_PLUGIN);
        Plugin::from_component(runtime, component.clone(), sha256)
            .expect("the bundled plugin loads")
    }
}
