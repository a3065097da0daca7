//! Dapr mode end to end: the real host binary in Dapr mode beside the standalone sidecar (the
//! daprd imitation `serve` embeds), in separate processes, with a fault-injecting proxy on each
//! hop (tests/src/dapr_mode.rs). The sidecar reads `/dapr/subscribe`, delivers with Kafka-like
//! partitions, reads every answer as daprd does, redelivers RETRY and dead-letters DROP.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use task_events_tests::dapr_mode::{DaprMode, TASK_ROUTE, Tokens};
use task_events_tests::embedded_api::{publish, topic_events, topic_records, wait_topic};
use task_events_tests::events::{completed_v1, daily_completion};
use task_events_tests::http::{json, send, status};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(30);

/// A delivery as daprd would make it, straight to the host (no token).
fn deliver(p: &DaprMode) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(format!("{}{TASK_ROUTE}", p.host.base))
}

async fn start(dir: &tempfile::TempDir) -> DaprMode {
    DaprMode::start(HOST, dir.path(), None, &[], &[]).await
}

/// The sidecar requires `dapr-secret` and sends `app-secret`; the host gets `host_env`.
async fn start_with_tokens(dir: &tempfile::TempDir, host_env: &[(&str, &str)]) -> DaprMode {
    let tokens = Tokens {
        dapr: "dapr-secret",
        app: "app-secret",
    };
    DaprMode::start(HOST, dir.path(), Some(tokens), &[], host_env).await
}

#[tokio::test]
async fn subscriptions_deliveries_publish_and_idempotency_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    let metadata = json(p.sidecar.api(Method::GET, "/v1.0/metadata")).await;
    assert_eq!(metadata["subscriptions"].as_array().unwrap().len(), 3);

    let completion = completed_v1(
        "evt-1",
        123,
        "user-456",
        "DAILY",
        "2025-12-29T09:00:00Z",
        "2025-12-29T10:00:00Z",
    );
    publish(&p.sidecar, &completion).await;
    // The completion and the task.created it produced (which comes back to the plugin too).
    p.wait_answers(TASK_ROUTE, "both deliveries answered", |a| a.len() >= 2)
        .await;
    assert_eq!(p.answers(TASK_ROUTE)[..2], ["SUCCESS", "SUCCESS"]);

    let record = topic_records(&p.sidecar, "task-events")
        .await
        .into_iter()
        .find(|r| r["event"]["type"] == "task.created")
        .unwrap();
    assert_eq!(record["key"], "user-456", "partitioned by user_id");
    let event = &record["event"];
    assert_eq!(event["source"], "recurring-task-service");
    assert_eq!(event["data"]["payload"]["due_date"], "2025-12-30T09:00:00Z");
    assert_eq!(
        event["id"], event["data"]["event_id"],
        "the plugin's deterministic id is the CloudEvent id"
    );
    let saved = p
        .sidecar
        .api(Method::GET, "/v1.0/state/statestore/processed-evt-1");
    assert_eq!(status(saved).await, 200, "idempotency record saved");
    // Every record expires (daprd's ttlInSeconds), 7 days by default.
    let saves = p.sidecar_proxy.journal_for("/v1.0/state/statestore");
    let save = saves
        .iter()
        .find(|x| x.method == "POST" && x.path == "/v1.0/state/statestore")
        .expect("a state save");
    assert_eq!(save.request_json()[0]["metadata"]["ttlInSeconds"], "604800");
}

#[tokio::test]
async fn a_duplicate_delivery_publishes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    let event = daily_completion(2);
    publish(&p.sidecar, &event).await;
    publish(&p.sidecar, &event).await;
    p.wait_answers(
        TASK_ROUTE,
        "both deliveries and the created task's own delivery answered",
        |a| a.iter().filter(|s| *s == "SUCCESS").count() >= 3,
    )
    .await;
    assert_eq!(p.created().await.len(), 1);
}

#[tokio::test]
async fn a_sidecar_hiccup_is_absorbed_inside_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    // A failed state read, then two failed publishes of the new task: each is retried in place
    // with backoff, so daprd never sees a RETRY (which, without a resiliency policy, it would
    // dead-letter at once).
    p.sidecar_proxy.fail_next("/v1.0/state", 1, 500);
    p.sidecar_proxy.fail_next("/v1.0/publish", 2, 503);
    publish(&p.sidecar, &daily_completion(3)).await;
    p.wait_answers(TASK_ROUTE, "the completion acknowledged", |a| !a.is_empty())
        .await;
    assert_eq!(p.answers(TASK_ROUTE)[0], "SUCCESS");
    let failed = p
        .sidecar_proxy
        .journal()
        .iter()
        .filter(|x| x.fault.is_some())
        .count();
    assert_eq!(failed, 3, "the three faults happened");
    assert_eq!(p.created().await.len(), 1, "retries did not publish twice");
}

#[tokio::test]
async fn poison_events_are_dead_lettered_and_the_partition_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    // An event id the state store would refuse as a key is processed like any other.
    let mut poison = daily_completion(11);
    poison["event_id"] = json!("poison||1");
    publish(&p.sidecar, &poison).await;
    // A publish the broker refuses for good (a record too large): dead-lettered, not retried.
    p.sidecar_proxy.fail_next("/v1.0/publish", 1, 413);
    publish(&p.sidecar, &daily_completion(12)).await;
    publish(&p.sidecar, &daily_completion(13)).await;
    p.wait_answers(TASK_ROUTE, "every delivery answered", |a| {
        a.iter().filter(|s| *s == "SUCCESS").count() >= 5
    })
    .await;
    let answers = p.answers(TASK_ROUTE);
    assert!(answers.iter().all(|a| a == "SUCCESS"), "{answers:?}");
    let created = p.created().await;
    assert_eq!(
        created.len(),
        2,
        "the poison id and the normal event each made their task"
    );
    let dlq = topic_events(&p.sidecar, "task-events-dlq").await;
    assert_eq!(dlq.len(), 1, "{dlq:#?}");
    assert_eq!(dlq[0]["data"]["reason"], "sidecar-refused");
    let why = dlq[0]["data"]["problems"][0]["message"].as_str().unwrap();
    assert!(why.contains("413"), "the reason names the cause: {why}");
}

#[tokio::test]
async fn a_refusing_sidecar_gets_retries_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    p.sidecar_proxy.refuse(true).await;
    publish(&p.sidecar, &daily_completion(4)).await;
    p.wait_answers(TASK_ROUTE, "RETRY while the sidecar refuses", |a| {
        a.len() >= 2 && a.iter().all(|s| s == "RETRY")
    })
    .await;
    assert!(p.created().await.is_empty());
    p.sidecar_proxy.refuse(false).await;
    p.wait_answers(TASK_ROUTE, "SUCCESS once the sidecar is back", |a| {
        a.contains(&"SUCCESS".to_string())
    })
    .await;
    assert_eq!(p.created().await.len(), 1);
}

#[tokio::test]
async fn a_slow_or_dropped_sidecar_call_is_retried_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    p.sidecar_proxy.drop_next("/v1.0/publish", 1);
    p.sidecar_proxy
        .delay_next("/v1.0/state", 1, Duration::from_millis(300));
    publish(&p.sidecar, &daily_completion(8)).await;
    p.wait_answers(TASK_ROUTE, "the completion acknowledged", |a| {
        a.contains(&"SUCCESS".to_string())
    })
    .await;
    assert_eq!(p.created().await.len(), 1);
}

#[tokio::test]
async fn invalid_events_go_to_the_dead_letter_topic_and_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    publish(&p.sidecar, &json!({"event_id": "bad", "event_type": "task.completed", "event_version": "1.0", "task_id": 1, "timestamp": "x", "payload": {}})).await;
    p.wait_answers(TASK_ROUTE, "the invalid event answered", |a| !a.is_empty())
        .await;
    assert_eq!(
        p.answers(TASK_ROUTE)[0],
        "SUCCESS",
        "rejected events are answered SUCCESS once dead-lettered"
    );
    let records = topic_events(&p.sidecar, "task-events-dlq").await;
    let record = &records[0];
    assert_eq!(record["type"], "task-events.dead-letter");
    assert_eq!(record["data"]["reason"], "rejected");
    assert_eq!(record["data"]["original"]["data"]["event_id"], "bad");
}

#[tokio::test]
async fn a_body_that_is_not_a_cloudevent_is_dropped_to_the_sidecars_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    let raw = "/v1.0/publish/kafka-pubsub/task-events?metadata.rawPayload=true";
    let publish = p.sidecar.api(Method::POST, raw);
    let publish = publish.header("content-type", "application/json");
    assert_eq!(status(publish.body(r#"{"hello":"world"}"#)).await, 204);
    p.wait_answers(TASK_ROUTE, "the raw body answered", |a| !a.is_empty())
        .await;
    assert_eq!(p.answers(TASK_ROUTE)[0], "DROP");
    let dlq = wait_topic(&p.sidecar, "task-events-dlq", 1, WAIT).await;
    assert_eq!(
        dlq,
        [json!({"hello": "world"})],
        "the sidecar forwards the original bytes"
    );
}

#[tokio::test]
async fn tokens_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let p = start_with_tokens(
        &dir,
        &[
            ("DAPR_API_TOKEN", "dapr-secret"),
            ("APP_API_TOKEN", "app-secret"),
        ],
    )
    .await;
    publish(&p.sidecar, &daily_completion(5)).await;
    p.wait_answers(TASK_ROUTE, "a SUCCESS", |a| {
        a.contains(&"SUCCESS".to_string())
    })
    .await;
    assert_eq!(p.created().await.len(), 1);
    let unauthenticated = deliver(&p).body("{}");
    assert_eq!(status(unauthenticated).await, 401);
    let no_token =
        reqwest::Client::new().get(format!("{}/v1.0/state/statestore/k", p.sidecar.base));
    assert_eq!(
        status(no_token).await,
        401,
        "the sidecar API requires DAPR_API_TOKEN"
    );
}

#[tokio::test]
async fn a_wrong_dapr_api_token_publishes_nothing_and_keeps_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let host_env = [("DAPR_API_TOKEN", "wrong"), ("APP_API_TOKEN", "app-secret")];
    let p = start_with_tokens(&dir, &host_env).await;
    publish(&p.sidecar, &daily_completion(6)).await;
    p.wait_answers(TASK_ROUTE, "several RETRY answers", |a| {
        a.iter().filter(|s| *s == "RETRY").count() >= 3
    })
    .await;
    assert!(p.created().await.is_empty());
    assert!(p.host.log().contains("401"), "the log names the refusal");
}

#[tokio::test]
async fn bulk_deliveries_get_a_status_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
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
    let resp = send(deliver(&p).json(&batch)).await;
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
    assert_eq!(p.created().await.len(), 1);
    assert_eq!(
        topic_events(&p.sidecar, "task-events-dlq").await.len(),
        1,
        "the invalid entry was dead-lettered by the host"
    );
}

#[tokio::test]
async fn every_single_delivery_answer_is_a_contract_status() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    for body in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"specversion":"1.0"}"#,
        r#"{"specversion":"1.0","data":"plain text"}"#,
    ] {
        let resp = deliver(&p).header("content-type", "application/cloudevents+json");
        let resp = send(resp.body(body)).await;
        assert_eq!(resp.status(), 200, "body {body:?}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer, json!({"status": "DROP"}), "body {body:?}");
    }
}

#[tokio::test]
async fn a_redelivery_republishes_the_first_recorded_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(&dir).await;
    // What an earlier host (or an earlier plugin version) recorded before it crashed between
    // recording and publishing: that outcome wins over whatever the plugin answers now.
    let first = json!({"specversion": "1.0", "id": "first-outcome", "source": "recurring-task-service",
        "type": "task.created", "datacontenttype": "application/json", "data": {"marker": "first"}});
    let record = json!({"state": "pending", "plugin": "task-plugin@0.9.0", "at": "2026-01-01T00:00:00Z",
        "emits": [{"topic": "task-updates", "key": "user-1", "id": "first-outcome", "body": first.to_string()}]});
    let save = p.sidecar.api(Method::POST, "/v1.0/state/statestore");
    let save = save.json(&json!([{"key": "processed-evt-replay", "value": record}]));
    assert_eq!(status(save).await, 204);
    let mut event = daily_completion(21);
    event["event_id"] = json!("evt-replay");
    publish(&p.sidecar, &event).await;
    p.wait_answers(TASK_ROUTE, "the redelivery answered", |a| !a.is_empty())
        .await;
    assert_eq!(p.answers(TASK_ROUTE)[0], "SUCCESS");
    let updates = wait_topic(&p.sidecar, "task-updates", 1, WAIT).await;
    assert_eq!(updates[0]["id"], "first-outcome");
    assert_eq!(updates[0]["data"], json!({"marker": "first"}));
    assert!(
        p.created().await.is_empty(),
        "the plugin's new answer was not published"
    );
    // Done now: another delivery publishes nothing.
    publish(&p.sidecar, &event).await;
    p.wait_answers(TASK_ROUTE, "the duplicate answered", |a| a.len() >= 2)
        .await;
    assert_eq!(topic_events(&p.sidecar, "task-updates").await.len(), 1);
}

#[tokio::test]
async fn events_the_seed_service_handled_are_not_handled_again() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(
        HOST,
        dir.path(),
        None,
        &["--legacy-dedupe-prefix", "event-processed-"],
        &[],
    )
    .await;
    // The previous service (built after the seed design) recorded this one.
    let save = p.sidecar.api(Method::POST, "/v1.0/state/statestore");
    let save =
        save.json(&json!([{"key": "event-processed-evt-seed", "value": {"processed": true}}]));
    assert_eq!(status(save).await, 204);
    let mut handled = daily_completion(41);
    handled["event_id"] = json!("evt-seed");
    publish(&p.sidecar, &handled).await;
    publish(&p.sidecar, &daily_completion(42)).await;
    p.wait_answers(
        TASK_ROUTE,
        "both answered, and the new task's own delivery",
        |a| a.len() >= 3,
    )
    .await;
    let created = p.created().await;
    assert_eq!(
        created.len(),
        1,
        "only the event the seed service never saw: {created:#?}"
    );
}

#[tokio::test]
async fn a_long_plugin_retry_is_parked_with_the_jobs_api_and_fired_back() {
    let dir = tempfile::tempdir().unwrap();
    let guest = task_events_tests::plugins::HOSTILE_WASM;
    let p = DaprMode::start(HOST, dir.path(), None, &["--guest", guest], &[]).await;
    let event =
        json!({"user_id": "k", "event_id": "slow", "event_type": "slow-retry", "do": "retry-once"});
    let publish = "/v1.0/publish/kafka-pubsub/hostile?metadata.partitionKey=k";
    assert_eq!(
        status(p.sidecar.api(Method::POST, publish).json(&event)).await,
        204
    );
    let out = wait_topic(&p.sidecar, "hostile-out", 1, WAIT).await;
    assert_eq!(out[0]["data"]["event_id"], "slow");
    // The delivery was acknowledged at once; the retry came back through the job callback.
    assert_eq!(p.answers("/events/hostile"), ["SUCCESS"]);
    // The callback's answer is journalled once it is sent, after the publish it caused.
    p.app_proxy
        .wait_journal(WAIT, "the job callback answered 200", |j| {
            j.iter()
                .any(|x| x.path.starts_with("/job/retry-k") && x.status() == Some(200))
        })
        .await;
    let scheduled = p.sidecar_proxy.journal_for("/v1.0-alpha1/jobs/retry-k");
    assert!(!scheduled.is_empty(), "scheduled through daprd's Jobs API");
}
