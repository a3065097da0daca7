//! task-events host: runs an event plugin (a wasm component) beside a Dapr sidecar.
//!
//! The host knows CloudEvents, Dapr and wasmtime, and nothing about tasks: the plugin decides
//! what each event means (wit/plugin.wit). See ARCHITECTURE.md for the data flow.

pub mod admin;
pub mod cli;
pub mod config;
pub mod dapr;
pub mod embedded;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod serve;
pub mod sidecar;

/// The task plugin built with this host (guest/), run when `serve` gets no `--guest`.
pub const BUNDLED_PLUGIN: &[u8] = include_bytes!(env!("TASK_PLUGIN_WASM"));
