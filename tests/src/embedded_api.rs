//! The embedded sidecar's HTTP API as the end-to-end tests use it: publish a task event, read
//! a topic (every page), list the tasks created so far, wait (bounded) for the next tasks a
//! batch of completions creates, and publish a steady stream of completions in the background.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::events::daily_completion;
use crate::host::HostProcess;

/// Publishes a task event on task-events, as the todo app does; panics unless it is accepted.
pub async fn publish(host: &HostProcess, event: &Value) {
    publish_to(host, "task-events", event).await;
}

/// Publishes `event` as `application/json` on `topic` of the embedded pubsub.
pub async fn publish_to(host: &HostProcess, topic: &str, event: &Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/v1.0/publish/kafka-pubsub/{topic}", host.base))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .expect("publishing")
        .status();
    assert_eq!(status, 204, "publish refused; host log:\n{}", host.log());
}

/// Every CloudEvent on an embedded topic (all pages).
pub async fn topic_events(host: &HostProcess, topic: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from = 0;
    loop {
        let url = format!(
            "{}/v1.0-embedded/topics/{topic}?from={from}&limit=1000",
            host.base
        );
        let page: Value = reqwest::get(url)
            .await
            .expect("reading a topic")
            .json()
            .await
            .expect("topic JSON");
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            return events;
        }
        events.extend(records.into_iter().map(|r| r["event"].clone()));
        from = page["next"].as_u64().expect("a next offset");
    }
}

/// The `parent_task_id`s of the task.created events on task-events so far (one per event).
pub async fn created_parents(host: &HostProcess) -> Vec<i64> {
    topic_events(host, "task-events")
        .await
        .iter()
        .filter(|e| e["type"] == "task.created")
        .map(|e| {
            e["data"]["payload"]["parent_task_id"]
                .as_i64()
                .expect("parent_task_id")
        })
        .collect()
}

/// The `parent_task_id`s of the task.created events on task-events, once there are `n`.
pub async fn wait_created(host: &HostProcess, n: usize, timeout: Duration) -> Vec<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let created = created_parents(host).await;
        if created.len() >= n {
            return created;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} task.created; host log:\n{}",
            created.len(),
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes daily completions `first..` every `every` until `stop` is set (at most `max`);
/// returns how many were accepted.
pub fn publish_until(
    host_base: String,
    first: u32,
    max: u32,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut n = 0;
        while n < max && !stop.load(Ordering::Relaxed) {
            let status = client
                .post(format!("{host_base}/v1.0/publish/kafka-pubsub/task-events"))
                .header("content-type", "application/json")
                .body(daily_completion(first + n).to_string())
                .send()
                .await
                .expect("publishing")
                .status();
            assert_eq!(status, 204);
            n += 1;
            tokio::time::sleep(every).await;
        }
        n
    })
}
