//! A plugin that traps, loops forever or allocates without bound fails only the delivery it is
//! handling, with a readable reason in the dead-letter record; the host keeps serving.

use std::time::Duration;

use serde_json::json;
use task_events_tests::embedded_api;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::HOSTILE_WASM;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

#[tokio::test]
async fn traps_deadlines_and_memory_limits_fail_one_delivery_each() {
    fails_one_delivery_each(&[], 3).await;
}

/// The same in bulk batches whose entries share one instance: a failed call ends the instance,
/// the next entry gets a fresh one. The batch's pass is the looping event's first attempt, not
/// one more (pipeline/bulk.rs): three deadline calls, as for single deliveries.
#[tokio::test]
async fn in_a_bulk_batch_on_one_instance_too() {
    let bulk = [
        "--bulk-max-messages",
        "10",
        "--bulk-max-await-ms",
        "300",
        "--bulk-instance",
        "batch",
    ];
    fails_one_delivery_each(&bulk, 3).await;
}

async fn fails_one_delivery_each(args: &[&str], deadline_calls: u32) {
    let dir = tempfile::tempdir().unwrap();
    let mut limits = vec![
        "--guest",
        HOSTILE_WASM,
        "--call-deadline-ms",
        "300",
        "--memory-limit-mib",
        "16",
    ];
    limits.extend_from_slice(args);
    let host = HostProcess::embedded(HOST, dir.path(), &limits, &[]).await;
    for action in ["trap", "loop", "alloc", "retry", "reject"] {
        embedded_api::publish_to(
            &host,
            "hostile",
            &json!({"user_id": "k", "event_id": action, "do": action}),
        )
        .await;
    }
    embedded_api::publish_to(
        &host,
        "hostile",
        &json!({"user_id": "k", "event_id": "fine", "do": "echo"}),
    )
    .await;

    let dead = wait_records(&host, "hostile-dlq", 5).await;
    let out = wait_records(&host, "hostile-out", 1).await;
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
    let deadlines =
        format!("task_events_plugin_failures_total{{kind=\"deadline\"}} {deadline_calls}");
    assert!(metrics.contains(&deadlines), "{metrics}");
}

/// Waits (bounded) until `topic` has at least `n` records.
async fn wait_records(host: &HostProcess, topic: &str, n: usize) -> Vec<serde_json::Value> {
    embedded_api::wait_topic(host, topic, n, Duration::from_secs(60)).await
}

#[tokio::test]
async fn effects_the_plugin_did_not_declare_are_dead_lettered_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &["--guest", HOSTILE_WASM], &[]).await;
    let forbidden = |id: &str, topic: &str| json!({"user_id": "k", "event_id": id, "do": "forbidden", "topic": topic});
    let cases = [
        (
            forbidden("undeclared", "elsewhere"),
            "effect-refused:undeclared-topic",
        ),
        (
            forbidden("loop", "hostile"),
            "effect-refused:undeclared-loop",
        ),
        (
            forbidden("dead-letter", "hostile-dlq"),
            "effect-refused:dead-letter-topic",
        ),
        (forbidden("space", "a b"), "effect-refused:bad-topic"),
        (
            json!({"user_id": "k", "event_id": "flood", "do": "flood"}),
            "effect-refused:too-many-emits",
        ),
        (
            json!({"user_id": "k", "event_id": "huge", "do": "huge"}),
            "effect-refused:emit-too-large",
        ),
        // An emit keyed by another user than the event's: refused.
        (
            json!({"user_id": "k", "event_id": "foreign", "do": "echo", "key": "someone-else"}),
            "effect-refused:foreign-partition-key",
        ),
    ];
    for (event, _) in &cases {
        embedded_api::publish_to(&host, "hostile", event).await;
    }
    embedded_api::publish_to(
        &host,
        "hostile",
        &json!({"user_id": "k", "event_id": "fine", "do": "echo"}),
    )
    .await;

    let dead = wait_records(&host, "hostile-dlq", cases.len()).await;
    let out = wait_records(&host, "hostile-out", 1).await;
    for (event, code) in &cases {
        let id = &event["event_id"];
        let record = dead
            .iter()
            .find(|r| r["data"]["original"]["data"]["event_id"] == *id)
            .unwrap_or_else(|| panic!("no dead letter for {id}: {dead:#?}"));
        // The problem names the refused effect (plugin/effects.rs); the record's `reason` is
        // the pipeline's (host/src/dead_letter.rs).
        assert_eq!(record["data"]["reason"], "effect-refused", "{record:#}");
        assert_eq!(record["data"]["problems"][0]["code"], *code, "{record:#}");
    }
    let message = |id: &str| {
        let record = dead
            .iter()
            .find(|r| r["data"]["original"]["data"]["event_id"] == id)
            .unwrap();
        record["data"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(message("undeclared").contains("\"elsewhere\", which the plugin did not declare (it declares \"[\\\"hostile-out\\\"]\")"), "{}", message("undeclared"));
    assert!(message("flood").contains("10000 events for one delivery; the limit is 64"));
    assert!(message("huge").contains("the limit is 262144"));

    // Nothing the plugin was refused reached any topic: only the host's own dead-letter records
    // are on hostile-dlq, only the inputs on hostile, only the one good echo on hostile-out.
    assert!(
        dead.iter().all(|r| r["type"] == "task-events.dead-letter"),
        "{dead:#?}"
    );
    assert_eq!(dead.len(), cases.len());
    assert!(
        embedded_api::topic_events(&host, "elsewhere")
            .await
            .is_empty()
    );
    assert_eq!(
        embedded_api::topic_events(&host, "hostile").await.len(),
        cases.len() + 1
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0]["data"]["event_id"], "fine");
    let health = reqwest::get(format!("{}/healthz", host.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the host still serves");
}

#[tokio::test]
async fn guest_seeds_differ_per_instance_and_logs_neither_flood_nor_forge() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--guest", HOSTILE_WASM, "--plugin-log-lines-per-sec", "1"];
    let host = HostProcess::embedded(HOST, dir.path(), &args, &[("NO_COLOR", "1")]).await;

    // Two deliveries, two fresh instances: two different HashMap seeds inside the guest.
    for id in ["random-1", "random-2"] {
        let event = json!({"user_id": "k", "event_id": id, "do": "random"});
        embedded_api::publish_to(&host, "hostile", &event).await;
    }
    wait_records(&host, "hostile-out", 2).await;
    let log = host.log();
    let probes: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("hash seed probe ").nth(1))
        .collect();
    assert_eq!(probes.len(), 2, "{log}");
    assert_ne!(probes[0], probes[1], "every instance gets its own seed");

    // 3 calls of 100 lines each: the per-call cap (64) alone would let 192 through; the budget
    // across calls (1 line a second, bursts of 4) lets through only a handful.
    for id in ["spam-1", "spam-2", "spam-3"] {
        let event = json!({"user_id": "k", "event_id": id, "do": "spam"});
        embedded_api::publish_to(&host, "hostile", &event).await;
    }
    // An event id with a line break, and a reject, so the pipeline logs the id.
    let forged_id = "x\nFORGED ERROR forged by an event id";
    let body = json!({"specversion": "1.0", "id": forged_id, "type": "t", "source": "s",
                      "datacontenttype": "application/json", "data": {"do": "reject"}});
    let status = reqwest::Client::new()
        .post(format!("{}/events/hostile", host.base))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    wait_records(&host, "hostile-out", 5).await;
    let metrics = reqwest::get(format!("{}/metrics", host.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("task_events_plugin_log_lines_dropped_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));

    let log = host.log();
    let spam = log.matches("spam line ").count();
    assert!(spam > 0 && spam < 192, "{spam} spam lines written");
    assert!(dropped > 0, "dropped lines are counted: {metrics}");
    assert!(
        log.contains("spam line 0\\nFORGED ERROR forged line\\r\\u{1b}[2K"),
        "guest text is escaped: {log}"
    );
    assert!(
        log.contains("x\\nFORGED ERROR forged by an event id"),
        "the event id is logged, escaped: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "no line was forged: {log}"
    );
}
