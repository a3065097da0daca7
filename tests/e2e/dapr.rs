//! Dapr mode end to end: the real host binary beside a daprd stand-in written from Dapr's source
//! (tests/src/daprd), which fetches `/dapr/subscribe`, delivers with Kafka-like partitions,
//! classifies every answer per the contract, retries per its resiliency policy and dead-letters.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::daprd::{DaprdConfig, FakeDaprd, Outcome, Resiliency, Settlement};
use task_events_tests::events::{completed_v1, daily_completion};
use task_events_tests::host::{HostProcess, free_port};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(30);

struct Pair {
    daprd: FakeDaprd,
    host: HostProcess,
    _dir: tempfile::TempDir,
}

async fn pair(tokens: Option<(&str, &str)>, host_env: &[(&str, &str)]) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let daprd = FakeDaprd::start(DaprdConfig {
        app_port,
        app_id: "recurring-task-service".into(),
        dapr_api_token: tokens.map(|(dapr, _)| dapr.to_string()),
        app_api_token: tokens.map(|(_, app)| app.to_string()),
        resiliency: Resiliency {
            max_retries: 5,
            retry_interval: Duration::from_millis(50),
            timeout: None,
        },
        ..DaprdConfig::default()
    })
    .await;
    let port = daprd.http_port().to_string();
    let mut env = vec![("DAPR_HTTP_PORT", port.as_str())];
    env.extend_from_slice(host_env);
    let data = dir.path().join("data");
    let host = HostProcess::start_on(
        app_port,
        HOST,
        dir.path(),
        &["--data-dir", data.to_str().unwrap()],
        &env,
    )
    .await;
    daprd
        .connect_app()
        .await
        .expect("daprd reads the subscriptions");
    Pair {
        daprd,
        host,
        _dir: dir,
    }
}

/// Publishes as the todo app does: keyed by `user_id`, so one user's events stay in order.
async fn publish(daprd: &FakeDaprd, event: &Value) {
    let key = event["user_id"].as_str();
    let status = daprd
        .publish_json(
            "kafka-pubsub",
            "task-events",
            "application/json",
            event.to_string().as_bytes(),
            key,
        )
        .await;
    assert_eq!(status, 204);
}

/// Messages on task-events that daprd acknowledged after a SUCCESS.
fn delivered(daprd: &FakeDaprd) -> usize {
    daprd
        .settled()
        .iter()
        .filter(|s| s.topic == "task-events" && s.how == Settlement::Delivered)
        .count()
}

/// `task.created` CloudEvents the host published.
fn created(daprd: &FakeDaprd) -> Vec<Value> {
    daprd
        .topic("task-events")
        .iter()
        .filter_map(|r| r.json())
        .filter(|e| e["type"] == "task.created")
        .collect()
}

async fn wait(p: &Pair, what: &str, f: impl Fn(&FakeDaprd) -> bool) {
    if let Err(summary) = p.daprd.wait_until(WAIT, what, f).await {
        panic!("{summary}\nhost log:\n{}", p.host.log());
    }
}

#[tokio::test]
async fn subscriptions_deliveries_publish_and_idempotency_record() {
    let p = pair(None, &[]).await;
    let subs = p.daprd.subscriptions().await.unwrap().unwrap();
    assert_eq!(subs.len(), 3);

    publish(
        &p.daprd,
        &completed_v1(
            "evt-1",
            123,
            "user-456",
            "DAILY",
            "2025-12-29T09:00:00Z",
            "2025-12-29T10:00:00Z",
        ),
    )
    .await;
    // The completion and the task.created it produced (which comes back to the plugin too).
    wait(&p, "both deliveries acknowledged", |d| delivered(d) >= 2).await;

    let record = p
        .daprd
        .topic("task-events")
        .into_iter()
        .find(|r| r.json().is_some_and(|e| e["type"] == "task.created"))
        .unwrap();
    assert_eq!(
        record.partition_key(),
        Some("user-456"),
        "partitioned by user_id"
    );
    let event = record.json().unwrap();
    assert_eq!(event["source"], "recurring-task-service");
    assert_eq!(event["data"]["payload"]["due_date"], "2025-12-30T09:00:00Z");
    assert_eq!(
        event["id"], event["data"]["event_id"],
        "the plugin's deterministic id is the CloudEvent id"
    );
    assert!(
        p.daprd.state("statestore", "processed-evt-1").is_some(),
        "idempotency record saved"
    );
    let first = p
        .daprd
        .deliveries()
        .into_iter()
        .find(|a| a.route == "/events/task-events")
        .unwrap();
    assert_eq!(first.outcome, Outcome::Success);
}

#[tokio::test]
async fn a_duplicate_delivery_publishes_nothing_new() {
    let p = pair(None, &[]).await;
    let event = daily_completion(2);
    publish(&p.daprd, &event).await;
    publish(&p.daprd, &event).await;
    wait(
        &p,
        "both deliveries and the created task's own delivery acknowledged",
        |d| delivered(d) >= 3,
    )
    .await;
    assert_eq!(created(&p.daprd).len(), 1);
}

#[tokio::test]
async fn sidecar_failures_answer_retry_and_nothing_is_lost() {
    let p = pair(None, &[]).await;
    // The first attempt fails reading the dedupe record; by the retry, the next two publishes
    // fail too (armed after the test's own publish, which goes through the same API).
    p.daprd.faults().state_fail_next(1);
    publish(&p.daprd, &daily_completion(3)).await;
    p.daprd.faults().publish_fail_next(2);
    wait(&p, "the task.created after the faults", |d| {
        !created(d).is_empty()
    })
    .await;
    let attempts: Vec<Outcome> = p
        .daprd
        .deliveries()
        .into_iter()
        .filter(|a| a.route == "/events/task-events")
        .map(|a| a.outcome)
        .take(4)
        .collect();
    assert_eq!(
        attempts.iter().filter(|o| o.is_retriable()).count(),
        3,
        "{attempts:?}"
    );
    wait(&p, "the completion acknowledged", |d| delivered(d) >= 1).await;
    assert_eq!(created(&p.daprd).len(), 1, "retries did not publish twice");
}

#[tokio::test]
async fn a_refusing_sidecar_gets_retries_until_it_is_back() {
    let p = pair(None, &[]).await;
    p.daprd.faults().refuse(true);
    publish(&p.daprd, &daily_completion(4)).await;
    wait(&p, "RETRY while the sidecar API refuses connections", |d| {
        d.deliveries()
            .iter()
            .any(|a| a.route == "/events/task-events" && a.outcome.is_retriable())
    })
    .await;
    assert!(created(&p.daprd).is_empty());
    p.daprd.faults().refuse(false);
    wait(&p, "a task.created once the sidecar is back", |d| {
        !created(d).is_empty()
    })
    .await;
}

#[tokio::test]
async fn invalid_events_go_to_the_dead_letter_topic_and_are_acknowledged() {
    let p = pair(None, &[]).await;
    publish(&p.daprd, &json!({"event_id": "bad", "event_type": "task.completed", "event_version": "1.0", "task_id": 1, "timestamp": "x", "payload": {}})).await;
    wait(&p, "the invalid event acknowledged", |d| delivered(d) >= 1).await;
    let record = p.daprd.topic("task-events-dlq")[0].json().unwrap();
    assert_eq!(record["type"], "task-events.dead-letter");
    assert_eq!(record["data"]["reason"], "rejected");
    assert_eq!(record["data"]["original"]["data"]["event_id"], "bad");
    let attempt = p
        .daprd
        .deliveries()
        .into_iter()
        .find(|a| a.route == "/events/task-events")
        .unwrap();
    assert_eq!(
        attempt.outcome,
        Outcome::Success,
        "rejected events are answered SUCCESS once dead-lettered"
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_cloudevent_is_dropped_to_daprds_dead_letter_topic() {
    let p = pair(None, &[]).await;
    let raw = BTreeMap::from([("rawPayload".to_string(), "true".to_string())]);
    let status = p
        .daprd
        .publish_with_metadata(
            "kafka-pubsub",
            "task-events",
            "application/json",
            br#"{"hello":"world"}"#,
            raw,
        )
        .await;
    assert_eq!(status, 204);
    wait(&p, "the raw body dropped", |d| {
        d.settled().iter().any(|s| s.how == Settlement::Dropped)
    })
    .await;
    let attempt = p
        .daprd
        .deliveries()
        .into_iter()
        .find(|a| a.route == "/events/task-events")
        .unwrap();
    assert_eq!(attempt.outcome, Outcome::Drop);
    assert_eq!(
        p.daprd.topic("task-events-dlq").len(),
        1,
        "daprd forwards the original bytes"
    );
}

#[tokio::test]
async fn tokens_in_both_directions() {
    let p = pair(
        Some(("dapr-secret", "app-secret")),
        &[
            ("DAPR_API_TOKEN", "dapr-secret"),
            ("APP_API_TOKEN", "app-secret"),
        ],
    )
    .await;
    publish(&p.daprd, &daily_completion(5)).await;
    wait(&p, "a task.created", |d| !created(d).is_empty()).await;
    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/events/task-events", p.host.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn a_wrong_dapr_api_token_publishes_nothing_and_keeps_retrying() {
    let p = pair(
        Some(("dapr-secret", "app-secret")),
        &[("DAPR_API_TOKEN", "wrong"), ("APP_API_TOKEN", "app-secret")],
    )
    .await;
    publish(&p.daprd, &daily_completion(6)).await;
    wait(&p, "several RETRY answers", |d| {
        d.deliveries()
            .iter()
            .filter(|a| a.route == "/events/task-events" && a.outcome.is_retriable())
            .count()
            >= 3
    })
    .await;
    assert!(created(&p.daprd).is_empty());
    assert!(p.host.log().contains("401"), "the log names the refusal");
}

#[tokio::test]
async fn bulk_deliveries_get_a_status_per_entry() {
    let p = pair(None, &[]).await;
    let ce = |data: Value| json!({"specversion": "1.0", "id": "x", "type": "com.dapr.event.sent", "source": "todo", "data": data});
    let batch = json!({
        "id": "batch-1", "pubsubname": "kafka-pubsub", "topic": "task-events", "type": "com.dapr.event.sent.bulk",
        "metadata": {"pubsubName": "kafka-pubsub"},
        "entries": [
            {"entryId": "0", "contentType": "application/cloudevents+json", "event": ce(daily_completion(7)), "metadata": {}},
            {"entryId": "1", "contentType": "application/cloudevents+json", "event": {"not": "a cloudevent"}, "metadata": {}},
            {"entryId": "2", "contentType": "application/cloudevents+json", "event": ce(json!({"event_id": "bad"})), "metadata": {}},
        ],
    });
    let resp = reqwest::Client::new()
        .post(format!("{}/events/task-events", p.host.base))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"statuses": [
            {"entryId": "0", "status": "SUCCESS"},
            {"entryId": "1", "status": "DROP"},
            {"entryId": "2", "status": "SUCCESS"},
        ]})
    );
    assert_eq!(created(&p.daprd).len(), 1);
    assert_eq!(
        p.daprd.topic("task-events-dlq").len(),
        1,
        "the invalid entry was dead-lettered by the host"
    );
}

#[tokio::test]
async fn every_single_delivery_answer_is_a_contract_status() {
    let p = pair(None, &[]).await;
    let client = reqwest::Client::new();
    let route = format!("{}/events/task-events", p.host.base);
    for body in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"specversion":"1.0"}"#,
        r#"{"specversion":"1.0","data":"plain text"}"#,
    ] {
        let resp = client
            .post(&route)
            .header("content-type", "application/cloudevents+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "body {body:?}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer, json!({"status": "DROP"}), "body {body:?}");
    }
}
