//! The task plugin: what task-events does with each task event.
//!
//! Plain Rust, tested natively (`cargo test -p task-plugin`); `component.rs` is the only file
//! that knows about wit-bindgen, and it is compiled for wasm32 only. The plugin is a pure
//! function of its input: no clock, no randomness, no I/O.

pub mod golden;
pub mod manifest;
pub mod migrate;
pub mod model;
pub mod plugin;
pub mod problem;
pub mod recurrence;
pub mod schema;
pub mod series;

#[cfg(any(target_arch = "wasm32", test))]
mod class_alloc;
#[cfg(target_arch = "wasm32")]
mod component;

/// A fresh instance per call makes a simple allocator the fast one (class_alloc.rs).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: class_alloc::ClassAlloc = class_alloc::ClassAlloc::new();
