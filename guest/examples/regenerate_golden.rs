//! Rewrites the expected outcomes in guest/golden/cases.json from the current code.
//!
//! The fixture is the plugin's canary spec: run this on purpose after an intended behaviour
//! change (`cargo run -p task-plugin --example regenerate_golden`), then review every changed
//! line by hand before committing it.

use task_plugin::golden::{case_to_json, parse_cases};
use task_plugin::plugin::handle;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/cases.json");
    let text = std::fs::read_to_string(path).expect("reading guest/golden/cases.json");
    let cases: Vec<serde_json::Value> = parse_cases(&text)
        .expect("the fixture parses")
        .into_iter()
        .map(|mut case| {
            case.expected = handle(&case.delivery);
            case_to_json(&case)
        })
        .collect();
    let text = serde_json::to_string_pretty(&cases).expect("cases serialize") + "\n";
    std::fs::write(path, text).expect("writing guest/golden/cases.json");
    println!("rewrote {path}; review the diff before committing");
}
