//! The plugin files the tests load: the real task plugin and the hostile fixture.

use std::path::{Path, PathBuf};

/// The hostile fixture plugin (tests/plugins/hostile), built by this package's build script.
pub const HOSTILE_WASM: &str = env!("HOSTILE_PLUGIN_WASM");

/// The task plugin's bytes, as bundled with the host.
pub fn task_plugin_bytes() -> &'static [u8] {
    task_events_host::BUNDLED_PLUGIN
}

/// Writes the task plugin into `dir` and returns its path (for `--guest`).
pub fn task_plugin_file(dir: &Path) -> PathBuf {
    let path = dir.join("task_plugin.wasm");
    std::fs::write(&path, task_plugin_bytes()).expect("writing the task plugin");
    path
}
