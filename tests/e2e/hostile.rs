//! A plugin that traps, loops forever or allocates without bound fails only the delivery it is
//! handling, with a readable reason in the dead-letter record; the host keeps serving.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::HOSTILE_WASM;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

async fn publish(host: &HostProcess, event: &Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/v1.0/publish/kafka-pubsub/hostile", host.base))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
}

async fn events(host: &HostProcess, topic: &str) -> Vec<Value> {
    let body: Value = reqwest::get(format!(
        "{}/v1.0-embedded/topics/{topic}?from=0&limit=1000",
        host.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r["event"].clone())
        .collect()
}

#[tokio::test]
async fn traps_deadlines_and_memory_limits_fail_one_delivery_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = HostProcess::start(
        HOST,
        dir.path(),
        &[
            "--sidecar",
            "embedded",
            "--data-dir",
            data.to_str().unwrap(),
            "--guest",
            HOSTILE_WASM,
            "--call-deadline-ms",
            "300",
            "--memory-limit-mib",
            "16",
        ],
        &[],
    )
    .await;
    for action in ["trap", "loop", "alloc", "retry", "reject"] {
        publish(&host, &json!({"event_id": action, "do": action})).await;
    }
    publish(&host, &json!({"event_id": "fine", "do": "echo"})).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let (dead, out) = loop {
        let (dead, out) = (
            events(&host, "hostile-dlq").await,
            events(&host, "hostile-out").await,
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
