//! Replays the fuzz corpus (fuzz/corpus/<target>/*) through the same target functions the
//! cargo-fuzz binaries run (fuzz/src/lib.rs, included here), on the stable toolchain: every
//! input the fuzzers kept, and every crash they found once fixed, stays a regression test.
//! The fuzzers themselves need nightly and run by hand (docs/security.md).

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("app_delivery", targets::app_delivery),
    ("embedded_publish", targets::embedded_publish),
    ("plugin_output", targets::plugin_output),
    ("canary_cases", targets::canary_cases),
    ("guest_validate_migrate", targets::guest_validate_migrate),
    ("guest_occurrences", targets::guest_occurrences),
];

/// Every file of `fuzz/corpus/<name>` through `target`; returns how many there were.
fn replay(name: &str, target: Target) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let input = std::fs::read(file).unwrap();
        // A panic names the file, so a failure is one `cargo fuzz run <target> <file>` away.
        let outcome = std::panic::catch_unwind(|| target(&input));
        assert!(
            outcome.is_ok(),
            "{name}: {} breaks the contract",
            file.display()
        );
    }
    files.len()
}

#[test]
fn every_corpus_input_keeps_its_contract() {
    for (name, target) in TARGETS {
        let count = replay(name, target);
        assert!(count > 0, "{name}: the corpus is empty");
    }
}
