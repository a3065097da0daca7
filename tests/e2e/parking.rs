//! Durable waits: a plugin retry longer than a delivery may be held is parked in the state
//! store and re-driven by a job (host/src/pipeline/parking.rs), here in embedded mode, whose
//! sidecar serves the Jobs API itself. The hostile fixture plugin's `slow-retry` policy waits
//! 3 s, past the host's 2 s in-place limit.

use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::embedded_api::{publish_to, topic_events, topic_records, wait_topic};
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::HOSTILE_WASM;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(60);
/// Two users whose events share a partition of the embedded sidecar (FNV-1a, 4 partitions).
const USER: &str = "k";
const NEIGHBOUR: &str = "u2";

fn event(user: &str, id: &str, extra: Value) -> Value {
    let mut e = json!({"user_id": user, "event_id": id});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

/// `<event_id>-out` for each echo (the echo carries its input as data).
fn out_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}-out", e["data"]["event_id"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_long_retry_is_parked_durably_and_the_users_later_events_wait_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--guest", HOSTILE_WASM];
    let mut host = HostProcess::embedded(HOST, dir.path(), &args, &[]).await;
    let slow_once = json!({"event_type": "slow-retry", "do": "retry-once"});
    publish_to(&host, "hostile", &event(USER, "a", slow_once)).await;
    publish_to(&host, "hostile", &event(USER, "b", json!({"do": "echo"}))).await;
    publish_to(
        &host,
        "hostile",
        &event(NEIGHBOUR, "c", json!({"do": "echo"})),
    )
    .await;
    let slow_always = json!({"event_type": "slow-retry", "do": "retry"});
    publish_to(&host, "hostile", &event("d-user", "d", slow_always)).await;

    // The neighbour on the same partition is not held up by the parked retry.
    let records = topic_records(&host, "hostile").await;
    let partition_of = |id: &str| {
        records
            .iter()
            .find(|r| r["event"]["data"]["event_id"] == id)
            .map(|r| r["partition"].clone())
            .unwrap()
    };
    assert_eq!(
        partition_of("a"),
        partition_of("c"),
        "the test needs one partition"
    );
    let first = wait_topic(&host, "hostile-out", 1, WAIT).await;
    assert_eq!(
        out_ids(&first),
        ["c-out"],
        "c went ahead; a waits 3 s and b behind it"
    );

    // kill -9 while the retry is parked: the wait survives in the sidecar's store.
    host.kill9();
    let mut host = HostProcess::embedded(HOST, dir.path(), &args, &[]).await;
    let out = wait_topic(&host, "hostile-out", 3, WAIT).await;
    assert_eq!(
        out_ids(&out),
        ["c-out", "a-out", "b-out"],
        "the user's order held"
    );

    // A schedule spent while parked: dead-lettered with every attempt's reason.
    let dead = wait_topic(&host, "hostile-dlq", 1, WAIT).await;
    let record = &dead[0]["data"];
    assert_eq!(record["original"]["data"]["event_id"], "d");
    assert_eq!(record["reason"], "retries-exhausted");
    let problems: Vec<&str> = record["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(problems[0].contains("after 2 attempts"), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.starts_with("attempt 1:")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("attempt 2:")),
        "{problems:?}"
    );
    // Nothing left waiting: the queues and jobs are gone.
    for user in [USER, "d-user"] {
        let status = reqwest::get(format!(
            "{}/v1.0/state/statestore/waiting-{user}",
            host.base
        ))
        .await
        .unwrap()
        .status();
        assert_eq!(status, 204, "{user}'s queue is deleted");
    }
    assert_eq!(topic_events(&host, "hostile-out").await.len(), 3);
    host.kill9();
}
