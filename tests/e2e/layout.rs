//! The code's shape, checked: no import cycles between modules (tools/module-cycles), so
//! dependencies keep pointing one way as the tree grows.

use std::path::Path;
use std::process::Command;

#[test]
fn no_module_imports_another_in_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(root.join("tools/module-cycles"))
        .args(["host/src", "guest/src", "tests/src"])
        .current_dir(&root)
        .output()
        .expect("tools/module-cycles needs python3 on PATH");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "import cycles:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("host/src:"),
        "the tool read the tree:\n{report}"
    );
}
