//! Builds a guest crate of this workspace into a wasm32-wasip2 component, from a build script.
//!
//! The README promises two commands on a fresh clone with only rustup, so the build must add the
//! wasm target itself: rustup 1.29 does not add a toolchain file's `targets` to a toolchain that
//! is already installed. The guest is built by a nested `cargo` into its own target directory
//! (`target/wasm-guests`): the outer cargo holds the lock on `target/<profile>`, and sharing it
//! would deadlock. This mirrors wasmtime's `crates/test-programs/artifacts/build.rs`.
//!
//! Failures panic with a message that says what to do: a build script has no better channel.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const TARGET: &str = "wasm32-wasip2";

/// Compiles `package` (a member of the workspace at `workspace_root`) for wasm32-wasip2 in
/// release mode and returns the path of the component (`<lib name>.wasm`).
///
/// Emits `cargo:rerun-if-changed` for the guest's sources and the WIT contract.
pub fn build_component(workspace_root: &Path, package: &str, package_dir: &Path) -> PathBuf {
    ensure_target();
    let target_dir = workspace_root.join("target").join("wasm-guests");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            package,
            "--target-dir",
        ])
        .arg(&target_dir)
        .stdout(Stdio::null());
    // The outer build's flags and jobserver belong to the host target, not to this build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the guest `{package}`: {e}"));
    assert!(
        status.success(),
        "building the guest `{package}` for {TARGET} failed (see the compiler output above)"
    );

    for watched in [
        package_dir.join("src"),
        package_dir.join("Cargo.toml"),
        package_dir.join("build.rs"),
        workspace_root.join("wit"),
    ] {
        // A missing path would make cargo rerun this script on every build.
        if watched.exists() {
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
    let file = format!("{}.wasm", package.replace('-', "_"));
    let wasm = target_dir.join(TARGET).join("release").join(file);
    assert!(
        wasm.exists(),
        "the guest build succeeded but {} is missing",
        wasm.display()
    );
    wasm
}

/// Adds the wasm32-wasip2 standard library to the active toolchain when it is missing.
fn ensure_target() {
    if target_installed() {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (first build only)");
    // The host's and the tests' build scripts may both get here at once on a fresh machine, so
    // a failed `rustup target add` is retried and success is judged by the target being there.
    for _ in 0..3 {
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "add", TARGET]);
        // rustup's proxy sets RUSTUP_TOOLCHAIN to the toolchain running this build.
        if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
            cmd.args(["--toolchain", &toolchain]);
        }
        let _ = cmd.stdout(Stdio::null()).status();
        if target_installed() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    panic!(
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; \
         run it by hand, or install rustup (https://rustup.rs) if this toolchain is not managed by it"
    );
}

fn target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let dir = String::from_utf8_lossy(&out.stdout).into_owned();
            // The path is printed whether or not the target is installed; look for its std.
            std::fs::read_dir(dir.trim())
                .map(|entries| {
                    entries
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
                })
                .unwrap_or(false)
        }
        _ => false,
    }
}
