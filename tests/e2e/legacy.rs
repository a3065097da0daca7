//! A plugin built against task-events:plugin@1.0.0 still loads in a host built against 1.2.0,
//! but nothing about it is let through by accident: its endless retry schedule, its empty
//! canary and its undeclared topics each need the operator's explicit flag. And the canary
//! report says which cases ran.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_events_tests::admin::Admin;
use task_events_tests::embedded_api::{publish_to, topic_events};
use task_events_tests::host::{HostProcess, run_command};
use task_events_tests::plugins::{LEGACY_WASM, hostile_bytes};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
/// Caps high enough for the legacy plugin's 10 000 one-hour retries.
const ENDLESS: [&str; 4] = [
    "--max-retry-delays",
    "10000",
    "--max-retry-total-secs",
    "36000000",
];

fn check(extra: &[&str]) -> (bool, String, String) {
    let args = [&["check", LEGACY_WASM][..], extra].concat();
    let (code, stdout, stderr) = run_command(HOST, &args);
    (code == 0, stdout, stderr)
}

#[test]
fn each_risky_trait_of_a_legacy_plugin_needs_its_own_flag() {
    let (ok, _, err) = check(&[]);
    assert!(!ok, "an endless retry schedule is refused at load");
    assert!(
        err.contains(
            "the retry policy for \"endless\" lists 10000 delays; the limit is 16 (--max-retry-delays)"
        ),
        "{err}"
    );

    let (ok, _, err) = check(&ENDLESS);
    assert!(!ok, "no golden cases and no canary file is refused");
    assert!(
        err.contains("the canary has no case to run") && err.contains("--allow-empty-canary"),
        "{err}"
    );

    let mut allowed = ENDLESS.to_vec();
    allowed.push("--allow-empty-canary");
    let (ok, out, err) = check(&allowed);
    assert!(ok, "the 1.0.0 plugin fits the 1.2.0 world: {err}");
    let manifest: Value = serde_json::from_str(&out).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "legacy-plugin");
}

/// Waits (bounded) until `topic` has at least `n` records.
async fn wait_records(host: &HostProcess, topic: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = topic_events(host, topic).await;
        if records.len() >= n {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} records on {topic}; log:\n{}",
            records.len(),
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_plugin_that_declares_no_topics_publishes_nothing_unless_allowed() {
    let mut args = vec!["--guest", LEGACY_WASM, "--allow-empty-canary"];
    args.extend_from_slice(&ENDLESS);

    let strict_dir = tempfile::tempdir().unwrap();
    let strict = HostProcess::embedded(HOST, strict_dir.path(), &args, &[]).await;
    publish_to(&strict, "legacy", &json!({"user_id": "k", "event_id": "a"})).await;
    let dead = wait_records(&strict, "legacy-dlq", 1).await;
    let problem = &dead[0]["data"]["problems"][0];
    assert_eq!(
        problem["code"], "effect-refused:undeclared-topic",
        "{dead:#?}"
    );
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("declares no topics (it was built against task-events:plugin@1.0"),
        "{problem:#}"
    );
    assert!(topic_events(&strict, "legacy-out").await.is_empty());
    // Its import of log@1.0.0 is served by the host's log@1.2.0.
    assert!(
        strict.log().contains("legacy plugin handled a delivery"),
        "{}",
        strict.log()
    );

    args.push("--allow-undeclared-topics");
    let lenient_dir = tempfile::tempdir().unwrap();
    let lenient = HostProcess::embedded(HOST, lenient_dir.path(), &args, &[]).await;
    publish_to(
        &lenient,
        "legacy",
        &json!({"user_id": "k", "event_id": "b"}),
    )
    .await;
    let out = wait_records(&lenient, "legacy-out", 1).await;
    assert_eq!(out[0]["data"]["event_id"], "b");
    assert!(topic_events(&lenient, "legacy-dlq").await.is_empty());
}

#[tokio::test]
async fn the_swap_report_names_the_canary_cases_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--admin-token", "t"];
    args.extend_from_slice(&ENDLESS);
    let host = HostProcess::embedded(HOST, dir.path(), &args, &[]).await;
    let admin = Admin::new(&host.base, Some("t"));

    let legacy = std::fs::read(LEGACY_WASM).unwrap();
    let (status, body) = admin.swap(legacy).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("canary-empty")),
        "{body:#}"
    );

    let (status, body) = admin.swap(hostile_bytes()).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["canary"]["ran"], json!(["plugin: echo"]), "{body:#}");
    assert_eq!(body["canary"]["skipped"], false);
    assert_eq!(
        body["current"]["publishes"],
        json!(["hostile-out"]),
        "{body:#}"
    );
}
