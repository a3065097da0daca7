//! The operator's tools for a plugin change, run as the real binary: `canary record` writes
//! golden cases `check --canary-file` accepts as they are, and `replay --against` shows how a
//! candidate's outcomes differ from the serving plugin's, from a file or from a running host's
//! topic, with the exit code CI gates on (0 identical, 1 different, 2 could not compare).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::embedded_api;
use task_events_tests::events::{completed_v1, daily_completion};
use task_events_tests::host::{HostProcess, run_command};
use task_events_tests::plugins::{
    HOSTILE_WASM, task_plugin_bytes, task_plugin_file, task_plugin_variant,
};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

/// Exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    run_command(HOST, args)
}

/// A task event the task plugin rejects: it lacks task_id, timestamp and payload.
fn incomplete_event() -> Value {
    json!({"event_id": "bad-1", "event_type": "task.completed", "event_version": "1.0",
           "user_id": "user-3"})
}

/// Two recurring completions (done, one emit each) and one incomplete event (reject).
fn write_events(dir: &Path) -> PathBuf {
    let weekly = completed_v1(
        "evt-weekly",
        2001,
        "user-2",
        "WEEKLY",
        "2025-12-29T09:00:00Z",
        "2025-12-29T10:00:00Z",
    );
    let lines = [daily_completion(1), weekly, incomplete_event()];
    let path = dir.join("events.jsonl");
    let text: String = lines.iter().map(|e| e.to_string() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// The task plugin with every "is required" in its problem messages spelt "is REQUIRED": a
/// candidate whose only change is one field of its reject outcomes. Same-length bytes inside a
/// data segment, so the component stays valid.
fn shouting_plugin(dir: &Path) -> PathBuf {
    let (from, to) = (b"is required", b"is REQUIRED");
    let mut bytes = task_plugin_bytes().to_vec();
    let mut patched = 0;
    for i in 0..bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            patched += 1;
        }
    }
    assert!(
        patched > 0,
        "the task plugin no longer says \"is required\""
    );
    let path = dir.join("shouting.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[test]
fn recorded_cases_pass_check_and_an_edited_one_fails_naming_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let (code, stdout, stderr) = run(&["canary", "record", path(&events)]);
    assert_eq!(code, 0, "{stderr}");
    let cases: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON case per line"))
        .collect();
    assert_eq!(cases.len(), 3, "{stdout}");
    assert_eq!(cases[0]["name"], "line 1: task.completed evt-1");
    // The complete outcome: the emitted event itself, not an excerpt of it.
    let emit = &cases[0]["expected"]["done"]["emits"][0];
    let created: Value = serde_json::from_str(emit["data"].as_str().unwrap()).unwrap();
    assert_eq!(created["event_type"], "task.created");
    assert_eq!(created["payload"]["due_date"], "2025-12-30T09:00:00Z");
    assert_eq!(cases[2]["expected"]["reject"][0]["code"], "missing-field");

    let canary = dir.path().join("canary.jsonl");
    std::fs::write(&canary, &stdout).unwrap();
    let wasm = task_plugin_file(dir.path());
    let (code, _, stderr) = run(&["check", path(&wasm), "--canary-file", path(&canary)]);
    assert_eq!(code, 0, "the recorded canary passes as written: {stderr}");

    let mut edited = cases.clone();
    let mut data = created.clone();
    data["payload"]["due_date"] = json!("2025-12-31T09:00:00Z");
    edited[0]["expected"]["done"]["emits"][0]["data"] = json!(data.to_string());
    let text: String = edited.iter().map(|c| c.to_string() + "\n").collect();
    std::fs::write(&canary, text).unwrap();
    let (code, _, stderr) = run(&["check", path(&wasm), "--canary-file", path(&canary)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("canary case \"line 1: task.completed evt-1\" (--canary-file)")
            && stderr.contains("2025-12-31"),
        "{stderr}"
    );
}

#[test]
fn replaying_the_serving_plugin_against_another_build_of_it_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let serving = task_plugin_file(dir.path());
    let candidate = dir.path().join("build-7.wasm");
    std::fs::write(&candidate, task_plugin_variant(7)).unwrap();
    let (code, stdout, stderr) = run(&[
        "replay",
        "--against",
        path(&candidate),
        "--guest",
        path(&serving),
        path(&events),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("same  line 1: task.completed evt-1: done, 1 emit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("same  line 3: task.completed bad-1: reject (missing-field"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n3 events, 3 identical, 0 differ ("),
        "{stdout}"
    );
}

#[test]
fn replaying_a_changed_plugin_names_what_changed_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());

    let shouting = shouting_plugin(dir.path());
    let (code, stdout, stderr) = run(&["replay", "--against", path(&shouting), path(&events)]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("same  line 1: task.completed evt-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("DIFF  line 3: task.completed bad-1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"~ /0/message: "/task_id is required" → "/task_id is REQUIRED""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 events, 2 identical, 1 differ (verdict changed: 0, emits added: 0, emits removed: 0, fields changed: 1)"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 3 events differ"), "{stderr}");

    // A plugin that answers everything differently: the verdict and each emit field named.
    let (code, stdout, _) = run(&["replay", "--against", HOSTILE_WASM, path(&events)]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("candidate: hostile-plugin@"), "{stdout}");
    assert!(
        stdout.contains(r#"~ /emits/0/topic: "task-events" → "hostile-out""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"- /emits/0/data/payload/parent_task_id: 1001 (field removed)"#),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: reject → done"), "{stdout}");
    assert!(stdout.contains("3 differ (verdict changed: 1,"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_reads_the_events_of_a_running_hosts_topic() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    embedded_api::publish(&host, &daily_completion(1)).await;
    embedded_api::publish(&host, &incomplete_event()).await;
    // The two published events and the task the completion creates.
    embedded_api::wait_topic(&host, "task-events", 3, Duration::from_secs(30)).await;

    let shouting = shouting_plugin(dir.path());
    let args: Vec<String> = [
        "replay",
        "--against",
        path(&shouting),
        "--from-topic",
        "task-events",
        "--url",
        &host.base,
    ]
    .map(String::from)
    .into();
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{stdout}\n{stderr}\nhost log:\n{}", host.log());
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {stdout}"))
    };
    // Offsets depend on when the plugin's own emit landed; the names carry them.
    assert!(
        line("task.completed evt-1").starts_with("same  task-events@")
            && line("task.completed evt-1").ends_with(": done, 1 emit"),
        "{stdout}"
    );
    assert!(
        line("task.completed bad-1").starts_with("DIFF  task-events@"),
        "{stdout}"
    );
    assert!(stdout.contains("~ /0/message:"), "{stdout}");
    assert!(stdout.contains(", 1 differ ("), "{stdout}");
}

#[test]
fn replay_that_cannot_compare_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_events(dir.path());
    let (code, _, stderr) = run(&["replay", path(&events)]);
    assert_eq!(code, 2, "no --against is a usage error: {stderr}");
    let missing = dir.path().join("missing.wasm");
    let (code, _, stderr) = run(&["replay", "--against", path(&missing), path(&events)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing.wasm"), "{stderr}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{}\nnot json\n").unwrap();
    let (code, _, stderr) = run(&["replay", "--against", HOSTILE_WASM, path(&bad)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.jsonl line 2: not JSON"), "{stderr}");
    let (code, _, stderr) = run(&[
        "replay",
        "--against",
        HOSTILE_WASM,
        "--from-topic",
        "t",
        "--url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot reach the host"), "{stderr}");
}
