//! The command line an operator uses besides `serve`: `check` and `topics tail`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use task_events_tests::embedded_api;
use task_events_tests::events::daily_completion;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::{HOSTILE_WASM, task_plugin_file};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(HOST)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("running the host binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_prints_the_manifest_of_a_valid_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = task_plugin_file(dir.path());
    let (ok, stdout, stderr) = run(&["check", wasm.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let manifest: Value = serde_json::from_str(&stdout).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "task-plugin");
    assert_eq!(manifest["subscriptions"][0]["topic"], "task-events");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);
    let (ok, _, _) = run(&["check", HOSTILE_WASM]);
    assert!(ok, "the hostile fixture fits the world too");
}

#[test]
fn check_explains_what_is_wrong_with_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "core wasm module, not a component",
        ),
        ("text.wasm", b"hello", "not WebAssembly"),
        (
            "truncated.wasm",
            &task_events_tests::plugins::task_plugin_bytes()[..4096],
            "does not compile",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (ok, _, stderr) = run(&["check", path.to_str().unwrap()]);
        assert!(!ok, "{name} must be refused");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let (ok, _, stderr) = run(&["check", "/nonexistent/plugin.wasm"]);
    assert!(
        !ok && stderr.contains("cannot read /nonexistent/plugin.wasm"),
        "{stderr}"
    );
}

#[tokio::test]
async fn topics_tail_prints_what_came_out() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    embedded_api::publish(&host, &daily_completion(9)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, stdout, stderr) = run(&[
            "topics",
            "tail",
            "task-events",
            "--url",
            &host.base,
            "--no-follow",
        ]);
        assert!(ok, "{stderr}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
            .collect();
        if lines.iter().any(|r| r["event"]["type"] == "task.created") {
            assert_eq!(lines[0]["offset"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "no task.created in {stdout}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn check_runs_the_operators_canary_cases() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = task_plugin_file(dir.path());
    let canary = dir.path().join("canary.jsonl");
    let case = serde_json::json!({
        "name": "garbage is handled, says the operator",
        "delivery": {"id": "c1", "pubsub": "kafka-pubsub", "topic": "task-events", "kind": "k", "source": "s", "data": "not json", "attempt": 1},
        "expected": {"done": {"dedupe_key": "c1", "emits": []}},
    });
    std::fs::write(&canary, format!("{case}\n")).unwrap();
    let (ok, _, stderr) = run(&[
        "check",
        wasm.to_str().unwrap(),
        "--canary-file",
        canary.to_str().unwrap(),
    ]);
    assert!(!ok, "the plugin rejects garbage, so the canary must fail");
    assert!(
        stderr.contains("garbage is handled, says the operator"),
        "{stderr}"
    );
}
