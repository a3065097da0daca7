//! The embedded sidecar's HTTP API as the end-to-end tests use it: publish a task event, read
//! a topic (every page), list the tasks created so far, wait (bounded) for the next tasks a
//! batch of completions creates, and publish a steady stream of completions in the background.
//!
//! Every function takes a [`SidecarApi`]: the host in embedded mode (`serve` serves the sidecar
//! API on its own port) or the standalone sidecar process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::events::daily_completion;
use crate::wait::until;

/// Something that serves the embedded sidecar's API.
pub trait SidecarApi {
    /// `http://127.0.0.1:<port>`.
    fn base(&self) -> &str;
    /// The `dapr-api-token` its API requires, if any.
    fn token(&self) -> Option<&str> {
        None
    }
    /// Its log so far, for failure messages.
    fn log(&self) -> String;

    /// A request to its API, `path` from the root, with the token when there is one.
    fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base()))
            .timeout(Duration::from_secs(30));
        match self.token() {
            Some(t) => req.header("dapr-api-token", t),
            None => req,
        }
    }
}

/// Publishes a task event on task-events, as the todo app does: keyed by its `user_id`, so one
/// user's events stay in order. Panics unless it is accepted.
pub async fn publish(sidecar: &impl SidecarApi, event: &Value) {
    publish_to(sidecar, "task-events", event).await;
}

/// Publishes `event` as `application/json` on `topic` of the embedded pubsub, keyed by its
/// `user_id` when it has one.
pub async fn publish_to(sidecar: &impl SidecarApi, topic: &str, event: &Value) {
    publish_with(sidecar, topic, event, &[]).await;
}

/// `publish_to` with more publish metadata (`metadata.<name>=<value>` query parameters, given
/// URL-encoded), e.g. a trace context as `cloudevent.traceparent`.
pub async fn publish_with(
    sidecar: &impl SidecarApi,
    topic: &str,
    event: &Value,
    metadata: &[(&str, &str)],
) {
    let mut query: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("metadata.{k}={v}"))
        .collect();
    if let Some(user) = event["user_id"].as_str() {
        query.push(format!("metadata.partitionKey={user}"));
    }
    let path = format!("/v1.0/publish/kafka-pubsub/{topic}?{}", query.join("&"));
    let status = sidecar
        .api(reqwest::Method::POST, &path)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .expect("publishing")
        .status();
    assert_eq!(status, 204, "publish refused; log:\n{}", sidecar.log());
}

/// Every record on an embedded topic (all pages): `{offset, partition, key, event, ...}`.
pub async fn topic_records(sidecar: &impl SidecarApi, topic: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0;
    // Bounded: every page moves `from` forward, and no test topic holds a million records.
    for _ in 0..1000 {
        let path = format!("/v1.0-embedded/topics/{topic}?from={from}&limit=1000");
        let page: Value = sidecar
            .api(reqwest::Method::GET, &path)
            .send()
            .await
            .expect("reading a topic")
            .json()
            .await
            .expect("topic JSON");
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        out.extend(records);
        from = page["next"].as_u64().expect("a next offset");
    }
    panic!("topic {topic} did not end after 1000 pages")
}

/// Every CloudEvent on an embedded topic (all pages).
pub async fn topic_events(sidecar: &impl SidecarApi, topic: &str) -> Vec<Value> {
    topic_records(sidecar, topic)
        .await
        .into_iter()
        .map(|r| r["event"].clone())
        .collect()
}

/// Waits (bounded) until `topic` holds at least `n` events, and returns them.
pub async fn wait_topic(
    sidecar: &impl SidecarApi,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Value> {
    let log = || sidecar.log();
    until(timeout, Duration::from_millis(50), log, async || {
        let events = topic_events(sidecar, topic).await;
        match events.len() {
            len if len >= n => Ok(events),
            len => Err(format!("{topic} holds {len} of {n} events")),
        }
    })
    .await
}

/// The `parent_task_id`s of the task.created events on task-events so far (one per event).
pub async fn created_parents(host: &impl SidecarApi) -> Vec<i64> {
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
pub async fn wait_created(host: &impl SidecarApi, n: usize, timeout: Duration) -> Vec<i64> {
    let log = || host.log();
    until(timeout, Duration::from_millis(100), log, async || {
        let created = created_parents(host).await;
        match created.len() {
            len if len >= n => Ok(created),
            len => Err(format!("only {len} of {n} task.created")),
        }
    })
    .await
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
