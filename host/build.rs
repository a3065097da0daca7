//! Builds the bundled task plugin (guest/) as a wasm32-wasip2 component; `serve` without
//! `--guest` runs it, and the tests load it.

use std::path::Path;

fn main() {
    let host_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = host_dir
        .parent()
        .expect("host/ lives in the workspace root");
    let wasm = guest_build::build_component(root, "task-plugin", &root.join("guest"));
    println!("cargo:rustc-env=TASK_PLUGIN_WASM={}", wasm.display());
}
