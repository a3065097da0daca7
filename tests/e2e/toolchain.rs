//! The toolchain file works on a machine that has only rustup's `stable` toolchain and sets
//! `RUSTUP_AUTO_INSTALL=0` (issue 10): rustup resolves `rust-toolchain.toml` to a toolchain that
//! is already installed, and that toolchain's rustc is at least the workspace `rust-version`.
//!
//! The checks ask rustup itself, from the repository root, with `RUSTUP_TOOLCHAIN` removed (cargo
//! sets it for the test process, and it would win over the toolchain file). Without rustup they
//! say so and check only that `rustc` meets `rust-version`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}

fn read_toml(file: &str) -> toml::Table {
    let path = root().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", path.display()))
}

/// `toolchain.channel` of rust-toolchain.toml.
fn channel() -> String {
    let file = read_toml("rust-toolchain.toml");
    file.get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(|c| c.as_str())
        .expect("rust-toolchain.toml has `[toolchain] channel = \"...\"`")
        .to_string()
}

/// `workspace.package.rust-version` of Cargo.toml, as (major, minor, patch).
fn rust_version() -> (u64, u64, u64) {
    let file = read_toml("Cargo.toml");
    let text = file
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(|v| v.as_str())
        .expect("Cargo.toml has `[workspace.package] rust-version`");
    parse_version(text).unwrap_or_else(|| panic!("rust-version {text:?} is not a version"))
}

/// "1.95" or "1.95.0" or "1.96.0-nightly" -> (1, 95, 0) / (1, 96, 0).
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let numeric = text.split(['-', '+']).next()?;
    let mut parts = numeric.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// The directory of the `rustup` executable on PATH (its proxies, `rustc` and `cargo`, live
/// there too), or None without rustup.
fn rustup_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| dir.join("rustup").is_file())
}

/// Runs `program args` in the repository root as a fresh shell would: no toolchain forced by
/// the environment, and no automatic installs.
fn run_in_repo(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", program.display()))
}

fn stdout_of(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The version in `rustc --version` output ("rustc 1.95.0 (59807616e 2026-04-14)").
fn rustc_version(output: &str) -> (u64, u64, u64) {
    output
        .split_whitespace()
        .nth(1)
        .and_then(parse_version)
        .unwrap_or_else(|| panic!("cannot read a version from `rustc --version`: {output:?}"))
}

#[test]
fn rustup_resolves_the_toolchain_file_without_installing() {
    let channel = channel();
    let Some(dir) = rustup_dir() else {
        println!(
            "rustup is not on PATH: not checking that rust-toolchain.toml (channel {channel:?}) \
             resolves to an installed toolchain; rustc_meets_rust_version checks rustc alone"
        );
        return;
    };
    let rustup = dir.join("rustup");

    // The channel names an installed toolchain: rustup would not have to download anything.
    let list = stdout_of(
        &run_in_repo(&rustup, &["toolchain", "list"]),
        "rustup toolchain list",
    );
    let installed: Vec<&str> = list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // Toolchain names are `<channel>-<host triple>` (a custom toolchain: just its name).
    let resolves = |name: &str| name == channel || name.starts_with(&format!("{channel}-"));
    assert!(
        installed.iter().any(|name| resolves(name)),
        "rust-toolchain.toml asks for channel {channel:?}, which is not installed \
         (installed: {installed:?}); with RUSTUP_AUTO_INSTALL=0 every cargo command in this \
         repository fails. Use `stable` and pin the minimum with `rust-version` in Cargo.toml."
    );

    // rustup resolves the directory to that toolchain, with auto-install off.
    let active = stdout_of(
        &run_in_repo(&rustup, &["show", "active-toolchain"]),
        "RUSTUP_AUTO_INSTALL=0 rustup show active-toolchain",
    );
    let active_name = active.split_whitespace().next().unwrap_or_default();
    assert!(
        resolves(active_name),
        "in the repository rustup resolves {active:?}, not the toolchain file's {channel:?}"
    );
    println!("rustup resolves the repository to {}", active.trim());
}

#[test]
fn rustc_meets_rust_version() {
    let minimum = rust_version();
    // Through rustup's proxy in the repository, the rustc is the toolchain file's; without
    // rustup, the rustc on PATH is the only one there is.
    let (rustc, how) = match rustup_dir() {
        Some(dir) => (dir.join("rustc"), "rustc through rustup, in the repository"),
        None => {
            println!("rustup is not on PATH: checking the rustc on PATH against rust-version");
            (PathBuf::from("rustc"), "rustc on PATH")
        }
    };
    let output = stdout_of(&run_in_repo(&rustc, &["--version"]), how);
    let version = rustc_version(&output);
    assert!(
        version >= minimum,
        "{how} is {} but Cargo.toml's rust-version is {minimum:?}",
        output.trim()
    );
    println!("{how}: {} >= rust-version {minimum:?}", output.trim());
}

#[test]
fn versions_parse_as_rustc_and_cargo_write_them() {
    assert_eq!(parse_version("1.95"), Some((1, 95, 0)));
    assert_eq!(parse_version("1.95.0"), Some((1, 95, 0)));
    assert_eq!(parse_version("1.96.0-nightly"), Some((1, 96, 0)));
    assert_eq!(parse_version("stable"), None);
    assert_eq!(
        rustc_version("rustc 1.100.1 (59807616e 2026-04-14)"),
        (1, 100, 1)
    );
    assert!((1, 100, 0) > (1, 95, 0), "versions compare numerically");
}
