//! A plugin that traps, loops forever or allocates without bound fails only the delivery it is
//! handling, with a readable reason in the dead-letter record; the host keeps serving.

use std::time::{Duration, Instant};

use serde_json::json;
use task_events_tests::embedded_api;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::HOSTILE_WASM;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

#[tokio::test]
async fn traps_deadlines_and_memory_limits_fail_one_delivery_each() {
    let dir = tempfile::tempdir().unwrap();
    let limits = [
        "--guest",
        HOSTILE_WASM,
        "--call-deadline-ms",
        "300",
        "--memory-limit-mib",
        "16",
    ];
    let host = HostProcess::embedded(HOST, dir.path(), &limits, &[]).await;
    for action in ["trap", "loop", "alloc", "retry", "reject"] {
        embedded_api::publish_to(&host, "hostile", &json!({"event_id": action, "do": action}))
            .await;
    }
    embedded_api::publish_to(&host, "hostile", &json!({"event_id": "fine", "do": "echo"})).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let (dead, out) = loop {
        let (dead, out) = (
            embedded_api::topic_events(&host, "hostile-dlq").await,
            embedded_api::topic_events(&host, "hostile-out").await,
        );
        if dead.len() >= 5 && !out.is_empty() {
            break (dead, out);
        }
        assert!(
            Instant::now() < deadline,
            "{} dead letters, {} outputs; log:\n{}",
            dead.len(),
            out.len(),
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(out[0]["data"]["event_id"], "fine");
    let reason_of = |id: &str| {
        let record = dead
            .iter()
            .find(|e| e["data"]["original"]["data"]["event_id"] == id)
            .unwrap_or_else(|| panic!("no dead letter for {id}"));
        (
            record["data"]["reason"].as_str().unwrap().to_string(),
            record["data"]["problems"][0]["message"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (reason, message) = reason_of("trap");
    assert_eq!(reason, "retries-exhausted");
    assert!(
        message.contains("hostile-plugin@0.1.0 trapped") && message.contains("after 3 attempts"),
        "{message}"
    );
    let (_, message) = reason_of("loop");
    assert!(
        message.contains("ran past its deadline of 300 ms"),
        "{message}"
    );
    let (_, message) = reason_of("alloc");
    assert!(
        message.contains("hit its memory limit") && message.contains("16777216"),
        "{message}"
    );
    let (_, message) = reason_of("retry");
    assert!(message.contains("asked-to-retry"), "{message}");
    let (reason, _) = reason_of("reject");
    assert_eq!(reason, "rejected");

    let health = reqwest::get(format!("{}/healthz", host.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the host still serves");
    let metrics = reqwest::get(format!("{}/metrics", host.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("task_events_plugin_failures_total{kind=\"deadline\"} 3"),
        "{metrics}"
    );
}
