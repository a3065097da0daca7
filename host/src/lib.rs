//! task-events host: runs an event plugin (a wasm component) beside a Dapr sidecar.
//!
//! The host knows CloudEvents, Dapr and wasmtime, and nothing about tasks: the plugin decides
//! what each event means (wit/plugin.wit). See docs/architecture.md for the data flow.
//!
//! The public surface is what the binary and the end-to-end tests use: the CLI, the
//! configuration, and the plugin runtime. Everything else is internal.

pub mod cli;
pub mod config;
/// Entry points for fuzz/ and its corpus replay; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod plugin;

mod admin;
mod canary_record;
mod dapr;
mod dead_letter;
mod dead_letters;
mod dead_letters_cli;
mod embedded;
mod http_limits;
mod http_server;
mod metrics;
mod not_found;
mod pid_file;
mod pipeline;
mod recurrence_preview;
mod serve;
mod shadow;
mod sidecar;
mod standalone;
mod telemetry;
mod trace_context;

/// The task plugin built with this host (guest/), run when `serve` gets no `--guest`.
pub const BUNDLED_PLUGIN: &[u8] = include_bytes!(env!("TASK_PLUGIN_WASM"));
