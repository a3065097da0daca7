//! Bulk deliveries (docs/dapr-contract.md §4) in Dapr mode: a batch is handled with one bulk
//! state read, one bulk save of its outcome records, one bulk publish per topic and one bulk
//! save of its done marks, and keeps every guarantee of single deliveries: idempotency, a
//! user's order, nothing published in two versions when the sidecar fails half-way.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use task_events_tests::dapr_mode::{DaprMode, TASK_ROUTE};
use task_events_tests::embedded_api::{SidecarApi, publish, topic_records};
use task_events_tests::events::daily_completion;
use task_events_tests::http::{json, status};
use task_events_tests::wait::until;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(30);

/// A bulk batch as daprd posts it, one entry per event, entry ids "0", "1", ...
fn batch(events: &[Value]) -> Value {
    let entries: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(n, data)| {
            let event = json!({"specversion": "1.0", "id": data["event_id"], "type": "com.dapr.event.sent",
                "source": "todo", "datacontenttype": "application/json", "data": data});
            json!({"entryId": n.to_string(), "contentType": "application/cloudevents+json",
                "event": event, "metadata": {}})
        })
        .collect();
    json!({"id": "batch", "pubsubname": "kafka-pubsub", "topic": "task-events",
        "type": "com.dapr.event.sent.bulk", "metadata": {"pubsubName": "kafka-pubsub"},
        "entries": entries})
}

/// Posts `events` to the host as one bulk delivery; the statuses, in entry order.
async fn deliver(p: &DaprMode, events: &[Value]) -> Vec<String> {
    let request = reqwest::Client::new()
        .post(format!("{}{TASK_ROUTE}", p.host.base))
        .json(&batch(events));
    let answer = json(request).await;
    let statuses = answer["statuses"].as_array().expect("a statuses array");
    assert_eq!(statuses.len(), events.len(), "{answer}");
    statuses
        .iter()
        .enumerate()
        .map(|(n, s)| {
            assert_eq!(s["entryId"], n.to_string(), "in entry order: {answer}");
            s["status"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The `task.created` records the host published for the completions `evt-<n>`, by source
/// event id, with their partition keys: what the plugin made of each.
async fn created_for(p: &DaprMode, n: usize) -> Vec<Value> {
    let log = || p.host.log();
    until(WAIT, Duration::from_millis(50), log, async || {
        let created: Vec<Value> = topic_records(&p.sidecar, "task-events")
            .await
            .into_iter()
            .filter(|r| r["event"]["type"] == "task.created")
            .collect();
        match created.len() >= n {
            true => Ok(created),
            false => Err(format!("{} of {n} task.created published", created.len())),
        }
    })
    .await
}

fn completions(range: std::ops::Range<u32>) -> Vec<Value> {
    range.map(daily_completion).collect()
}

#[tokio::test]
async fn a_batch_is_one_read_two_saves_and_one_publish_per_topic() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    let events = completions(1..21);
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 20]);

    let created = created_for(&p, 20).await;
    assert_eq!(created.len(), 20, "each completion's next task, once");
    for record in &created {
        assert_eq!(
            record["key"], record["event"]["data"]["user_id"],
            "partitioned by the event's user_id"
        );
    }
    let journal = p.sidecar_proxy.journal();
    let calls = |path: &str| journal.iter().filter(|x| x.path == path).count();
    // The batch's read covers all 20 entries (the created tasks delivered back one by one
    // make reads of their own, for one entry each).
    let batch_reads = journal
        .iter()
        .filter(|x| x.path == "/v1.0/state/statestore/bulk")
        .filter(|x| x.request_json()["keys"].as_array().map_or(0, Vec::len) >= 20)
        .count();
    assert_eq!(batch_reads, 1, "one bulk read");
    assert_eq!(
        calls("/v1.0-alpha1/publish/bulk/kafka-pubsub/task-events"),
        1,
        "one bulk publish"
    );
    let batch_saves: Vec<Value> = journal
        .iter()
        .filter(|x| x.path == "/v1.0/state/statestore" && x.method == "POST")
        .map(|x| x.request_json())
        .filter(|body| body.as_array().is_some_and(|items| items.len() == 20))
        .collect();
    assert_eq!(
        batch_saves.len(),
        2,
        "the pending records, then the done marks"
    );
    assert_eq!(batch_saves[0][0]["options"]["concurrency"], "first-write");
    assert_eq!(batch_saves[1][0]["value"]["state"], "done");
    let single_reads = journal
        .iter()
        .filter(|x| {
            x.method == "GET" && x.path.starts_with("/v1.0/state/statestore/processed-evt-")
        })
        .filter(|x| {
            let n: u32 = x.path.rsplit('-').next().unwrap().parse().unwrap_or(0);
            (1..21).contains(&n)
        })
        .count();
    assert_eq!(single_reads, 0, "no entry went the single path");

    // A redelivery of the whole batch (daprd re-sends it after a partial failure) publishes
    // nothing again.
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 20]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(created_for(&p, 20).await.len(), 20);
}

#[tokio::test]
async fn every_instance_scope_publishes_the_same_bytes() {
    let events = completions(40..52);
    let mut published = Vec::new();
    for scope in ["entry", "user", "batch"] {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--bulk-instance", scope];
        let p = DaprMode::start(HOST, dir.path(), None, &args, &[]).await;
        assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 12], "{scope}");
        let mut bodies: Vec<String> = created_for(&p, 12)
            .await
            .iter()
            .map(|r| {
                let mut event = r["event"].clone();
                // Stamped by the sidecar per publish, not by the plugin.
                for field in ["time", "traceid", "traceparent", "tracestate"] {
                    event.as_object_mut().unwrap().remove(field);
                }
                event.to_string()
            })
            .collect();
        bodies.sort();
        published.push((scope, bodies));
    }
    assert_eq!(published[0].1.len(), 12);
    for (scope, bodies) in &published[1..] {
        assert_eq!(bodies, &published[0].1, "{scope} vs entry");
    }
}

#[tokio::test]
async fn duplicates_in_and_across_batches_publish_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    // Handled before, as a single delivery.
    publish(&p.sidecar, &daily_completion(60)).await;
    created_for(&p, 1).await;
    let events = [
        daily_completion(61),
        daily_completion(61),
        daily_completion(60),
        daily_completion(62),
    ];
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 4]);
    let created = created_for(&p, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(created_for(&p, 3).await.len(), 3, "{created:#?}");
}

#[tokio::test]
async fn a_failed_bulk_save_hands_the_entries_to_single_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    // The bulk save of the pending records fails (the first matching rule wins: the bulk
    // read before it passes untouched).
    p.sidecar_proxy
        .delay_next("/v1.0/state/statestore/bulk", 1, Duration::ZERO);
    p.sidecar_proxy.fail_next("/v1.0/state/statestore", 1, 500);
    let events = completions(70..78);
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 8]);
    let created = created_for(&p, 8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(created_for(&p, 8).await.len(), 8, "{created:#?}");
    assert!(p.host.log().contains("one by one"), "{}", p.host.log());
}

#[tokio::test]
async fn a_users_later_entries_wait_behind_its_retry_while_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    let user = |n: u32, user: &str| {
        let mut e = daily_completion(n);
        e["user_id"] = json!(user);
        e
    };
    // user-a's first event was recorded before (pending, by an earlier host): it takes the
    // single path, where replaying the record's publish is refused.
    let first = json!({"specversion": "1.0", "id": "replayed", "source": "recurring-task-service",
        "type": "task.created", "datacontenttype": "application/json", "data": {"marker": "first"}});
    let record = json!({"state": "pending", "plugin": "task-plugin@0.9.0", "at": "2026-01-01T00:00:00Z",
        "emits": [{"topic": "task-updates", "key": "user-a", "id": "replayed", "body": first.to_string()}]});
    let save = p.sidecar.api(Method::POST, "/v1.0/state/statestore");
    let save = save.json(&json!([{"key": "processed-evt-81", "value": record}]));
    assert_eq!(status(save).await, 204);
    p.sidecar_proxy
        .fail_next("/v1.0/publish/kafka-pubsub/task-updates", 1, 401);
    let events = [user(81, "user-a"), user(82, "user-a"), user(83, "user-b")];
    assert_eq!(deliver(&p, &events).await, ["RETRY", "RETRY", "SUCCESS"]);
    let created = created_for(&p, 1).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["event"]["data"]["user_id"], "user-b");
    // daprd re-sends the two: the recorded outcome is replayed, the second handled after it.
    assert_eq!(deliver(&p, &events[..2]).await, ["SUCCESS", "SUCCESS"]);
    let created = created_for(&p, 2).await;
    assert_eq!(
        created.len(),
        2,
        "user-a's second; its first replays the record"
    );
    let updates = topic_records(&p.sidecar, "task-updates").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["event"]["id"], "replayed");
}

#[tokio::test]
async fn the_host_asks_for_bulk_and_the_sidecar_delivers_batches() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--bulk-max-messages", "16", "--bulk-max-await-ms", "50"];
    let p = DaprMode::start(HOST, dir.path(), None, &args, &[]).await;
    let subscribe = json(SidecarApi::api(&p.host, Method::GET, "/dapr/subscribe")).await;
    assert_eq!(
        subscribe[0]["bulkSubscribe"],
        json!({"enabled": true, "maxMessagesCount": 16, "maxAwaitDurationMs": 50})
    );
    for event in completions(100..140) {
        publish(&p.sidecar, &event).await;
    }
    // 40 completions, then the 40 task.created they produce come back as deliveries too.
    let created = created_for(&p, 40).await;
    assert_eq!(created.len(), 40);
    let log = || p.host.log();
    until(WAIT, Duration::from_millis(50), log, async || {
        let batches: Vec<Value> = p
            .deliveries(TASK_ROUTE)
            .iter()
            .map(|x| x.request_json())
            .filter(|body| body["entries"].is_array())
            .collect();
        let entries: usize = batches
            .iter()
            .map(|b| b["entries"].as_array().unwrap().len())
            .sum();
        let bigger = batches
            .iter()
            .any(|b| b["entries"].as_array().unwrap().len() > 1);
        match entries >= 80 && bigger {
            true => Ok(()),
            false => Err(format!("{} batches, {entries} entries", batches.len())),
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_bulk_publish_is_replayed_entry_by_entry_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    // The broker refuses the batch for good (a 400 is never retried): each entry's own
    // delivery then publishes exactly the bytes its pending record holds.
    p.sidecar_proxy
        .fail_next("/v1.0-alpha1/publish/bulk", 1, 400);
    let events = completions(90..96);
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 6]);
    let created = created_for(&p, 6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(created_for(&p, 6).await.len(), 6, "{created:#?}");
    let singles = p
        .sidecar_proxy
        .journal_for("/v1.0/publish/kafka-pubsub/task-events");
    assert_eq!(singles.len(), 6, "one single publish per entry");
}

#[tokio::test]
async fn an_unavailable_broker_retries_the_batch_and_the_redelivery_publishes_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--sidecar-retry-budget-ms", "300"];
    let p = DaprMode::start(HOST, dir.path(), None, &args, &[]).await;
    p.sidecar_proxy
        .fail_next("/v1.0-alpha1/publish/bulk", 1000, 503);
    let events = completions(110..115);
    assert_eq!(deliver(&p, &events).await, vec!["RETRY"; 5]);
    assert!(created_for_now(&p).await.is_empty(), "nothing published");
    p.sidecar_proxy.clear_faults();
    // daprd re-sends the batch: the recorded outcomes are published, once each.
    assert_eq!(deliver(&p, &events).await, vec!["SUCCESS"; 5]);
    let created = created_for(&p, 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(created_for(&p, 5).await.len(), 5, "{created:#?}");
}

/// The `task.created` published so far, without waiting.
async fn created_for_now(p: &DaprMode) -> Vec<Value> {
    topic_records(&p.sidecar, "task-events")
        .await
        .into_iter()
        .filter(|r| r["event"]["type"] == "task.created")
        .collect()
}
