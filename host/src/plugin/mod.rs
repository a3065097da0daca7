//! The wasm side of the host: engine and limits, loading and checking a plugin component, and
//! the generation that currently serves.
//!
//! Layout: `runtime` (one Engine, Linker, epoch ticker, instance permits), `sandbox` (what an
//! instance sees: deterministic WASI stand-ins, memory limiter, log import), `bindings` (the WIT
//! world), `loaded` (one checked plugin version and its calls), `registry` (the current
//! generation behind an ArcSwap).

pub mod bindings;
pub mod loaded;
pub mod registry;
pub mod runtime;
pub mod sandbox;

pub use loaded::{CallError, LoadError, Plugin};
pub use registry::{Generation, Registry};
pub use runtime::Runtime;
