//! Builds the test fixture plugins (tests/plugins/*) as wasm32-wasip2 components and hands
//! their paths to the tests; the task plugin itself comes with the host (`BUNDLED_PLUGIN`).

use std::path::Path;

fn main() {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tests_dir
        .parent()
        .expect("tests/ lives in the workspace root");
    let hostile = tests_dir.join("plugins").join("hostile");
    let wasm = guest_build::build_component(root, "hostile-plugin", &hostile);
    println!("cargo:rustc-env=HOSTILE_PLUGIN_WASM={}", wasm.display());
    let legacy = hostile.join("legacy");
    let wasm = guest_build::build_component(root, "legacy-plugin", &legacy);
    println!("cargo:rustc-env=LEGACY_PLUGIN_WASM={}", wasm.display());
}
