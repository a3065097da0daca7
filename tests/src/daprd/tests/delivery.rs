//! The app channel: subscription fetch, deliveries, response handling, retries, DLQ, ordering,
//! raw payloads and bulk.

use std::time::Duration;

use serde_json::json;

use super::super::{FakeDaprd, Outcome, Settlement};
use super::{TestApp, WAIT, answer, config, connected, sub_json};

#[tokio::test]
async fn subscribe_is_fetched_once_with_get_and_the_right_headers() {
    let subs = r#"[{"PubsubName":"kafka-pubsub","topic":"tasks","routes":{"rules":[{"match":"event.type == \"a\"","path":"/a"}],"default":"/tasks"},"extra":true},
                   {"pubsubname":"unknown-ps","topic":"x","route":"/x"}]"#;
    let app = TestApp::start(200, subs).await;
    let mut cfg = config(app.port);
    cfg.app_api_token = Some("app-token".into());
    let d = FakeDaprd::start(cfg).await;
    let got = d.connect_app().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].default_route(), Some("/tasks"));
    assert_eq!(d.connect_app().await.unwrap().len(), 2);
    let fetches = app.hits_on("/dapr/subscribe");
    assert_eq!(fetches.len(), 1, "fetched once");
    assert_eq!(fetches[0].method, "GET");
    assert_eq!(fetches[0].header("content-type"), Some("application/json"));
    assert_eq!(fetches[0].header("dapr-app-id"), Some("task-events"));
    assert_eq!(fetches[0].header("dapr-api-token"), Some("app-token"));
    // Routing: the rule, else the default.
    d.publish_json(
        "kafka-pubsub",
        "tasks",
        "application/cloudevents+json",
        br#"{"id":"1","type":"a"}"#,
        None,
    )
    .await;
    d.publish_json(
        "kafka-pubsub",
        "tasks",
        "application/cloudevents+json",
        br#"{"id":"2","type":"b"}"#,
        None,
    )
    .await;
    d.wait_until(WAIT, "two deliveries", |d| d.deliveries().len() == 2)
        .await
        .unwrap();
    let routes: Vec<_> = d
        .deliveries()
        .iter()
        .map(|a| (a.event_id.clone().unwrap(), a.route.clone()))
        .collect();
    assert_eq!(
        routes,
        [
            ("1".to_string(), "/a".to_string()),
            ("2".into(), "/tasks".into())
        ]
    );
    let hit = &app.hits_on("/a")[0];
    assert_eq!(hit.header("dapr-api-token"), Some("app-token"));
    assert!(hit.header("dapr-app-id").is_none());
    d.stop().await;
}

#[tokio::test]
async fn subscribe_failures_start_nothing() {
    for (status, body, ok) in [
        (404, "", Some(0)),
        (500, "[]", None),
        (204, "", None),
        (200, "", Some(0)),
        (200, r#"{"pubsubname":"kafka-pubsub"}"#, None),
        (
            200,
            r#"[{"pubsubname":"kafka-pubsub","topic":"t","route":"/t","metadata":{"rawPayload":true}}]"#,
            None,
        ),
        (
            200,
            r#"[{"pubsubname":"kafka-pubsub","topic":"t","routes":{"rules":[{"match":"event.type ==","path":"/t"}]}}]"#,
            None,
        ),
    ] {
        let app = TestApp::start(status, body).await;
        let d = FakeDaprd::start(config(app.port)).await;
        let got = d.connect_app().await;
        match ok {
            Some(n) => assert_eq!(got.map(|s| s.len()), Ok(n), "{status} {body}"),
            None => assert!(got.is_err(), "{status} {body}: {got:?}"),
        }
        d.publish_json("kafka-pubsub", "t", "application/json", b"{}", None)
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(d.deliveries().is_empty());
        d.stop().await;
    }
}

#[tokio::test]
async fn delivery_request_carries_exact_bytes_and_kafka_headers() {
    let (d, app) = connected(&sub_json("tasks", "tasks", json!({})), |_| {}).await;
    d.publish_json(
        "kafka-pubsub",
        "tasks",
        "application/json",
        br#"{"b":1,"a":2}"#,
        Some("user-7"),
    )
    .await;
    d.wait_until(WAIT, "delivered", |d| d.settled().len() == 1)
        .await
        .unwrap();
    let rec = &d.topic("tasks")[0];
    let hit = &app.hits_on("/tasks")[0];
    assert_eq!(hit.body, rec.body, "the exact broker bytes");
    assert_eq!(hit.method, "POST");
    for (k, v) in [
        ("content-type", "application/cloudevents+json"),
        ("pubsubname", "kafka-pubsub"),
        ("partitionkey", "user-7"),
        ("__key", "user-7"),
        ("__offset", "0"),
        ("__partition", "0"),
        ("__topic", "tasks"),
    ] {
        assert_eq!(hit.header(k), Some(v), "{k}");
    }
    assert!(hit.header("__timestamp").is_some());
    // Go sends UTF-8 header values as they are; so does the stand-in.
    d.publish_json(
        "kafka-pubsub",
        "tasks",
        "application/json",
        b"{}",
        Some("clé"),
    )
    .await;
    d.wait_until(WAIT, "second delivered", |d| d.settled().len() == 2)
        .await
        .unwrap();
    assert_eq!(app.hits_on("/tasks")[1].header("partitionkey"), Some("clé"));
    assert_eq!(d.deliveries()[0].outcome, Outcome::Success);
    assert_eq!(d.settled()[0].how, Settlement::Delivered);
}

/// One scripted answer per row, end to end: the classification and what happened next.
#[tokio::test]
async fn response_rows_classify_end_to_end() {
    type Row = (u16, &'static str, fn(&Outcome) -> bool, Settlement);
    let rows: Vec<Row> = vec![
        (200, "", |o| *o == Outcome::Success, Settlement::Delivered),
        (
            200,
            "<html>",
            |o| *o == Outcome::Success,
            Settlement::Delivered,
        ),
        (
            200,
            r#"{"status":"SUCCESS"}"#,
            |o| *o == Outcome::Success,
            Settlement::Delivered,
        ),
        (
            200,
            r#"{"status":"DROP"}"#,
            |o| *o == Outcome::Drop,
            Settlement::Dropped,
        ),
        (404, "gone", |o| *o == Outcome::Drop, Settlement::Dropped),
        (
            200,
            r#"{"status":"RETRY"}"#,
            |o| matches!(o, Outcome::Retry(_)),
            Settlement::RetriesExhausted,
        ),
        (
            200,
            r#"{"status":"success"}"#,
            |o| matches!(o, Outcome::Retry(_)),
            Settlement::RetriesExhausted,
        ),
        (
            500,
            "boom",
            |o| matches!(o, Outcome::Retry(_)),
            Settlement::RetriesExhausted,
        ),
        (
            307,
            "",
            |o| matches!(o, Outcome::Retry(_)),
            Settlement::RetriesExhausted,
        ),
    ];
    for (status, body, check, settles) in rows {
        let subs = sub_json("t", "/t", json!({"deadLetterTopic": "t-dlq"}));
        let (d, app) = connected(&subs, |_| {}).await;
        app.always("/t", answer(status, body));
        d.publish_json("kafka-pubsub", "t", "application/json", b"{}", None)
            .await;
        d.wait_until(WAIT, "settled", |d| !d.settled().is_empty())
            .await
            .unwrap();
        let a = &d.deliveries()[0];
        assert!(check(&a.outcome), "{status} {body}: {:?}", a.outcome);
        assert_eq!(a.status, Some(status));
        assert_eq!(d.settled()[0].how, settles, "{status} {body}");
        assert_eq!(
            d.deliveries().len(),
            1,
            "one attempt without a retry policy"
        );
        // A DLQ without a retry policy takes the message after one failure; DROP goes there too.
        assert_eq!(
            d.topic("t-dlq").len(),
            usize::from(settles != Settlement::Delivered)
        );
        d.stop().await;
    }
}

#[tokio::test]
async fn retries_then_dead_letter_with_original_bytes_and_metadata() {
    let subs = sub_json("t", "/t", json!({"deadLetterTopic": "t-dlq"}));
    let (d, app) = connected(&subs, |c| c.resiliency.max_retries = 2).await;
    app.always("/t", answer(503, ""));
    d.publish_json("kafka-pubsub", "t", "text/plain", b"payload", Some("k1"))
        .await;
    d.wait_until(WAIT, "dead-lettered", |d| !d.topic("t-dlq").is_empty())
        .await
        .unwrap();
    let attempts: Vec<u32> = d.deliveries().iter().map(|a| a.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let (orig, dlq) = (&d.topic("t")[0], &d.topic("t-dlq")[0]);
    assert_eq!(
        dlq.body, orig.body,
        "no re-wrapping: the DLQ copy still says topic t"
    );
    assert_eq!(dlq.json().unwrap()["topic"], "t");
    assert_eq!(dlq.key.as_deref(), Some("k1"));
    assert_eq!(
        dlq.metadata.get("partitionKey").map(String::as_str),
        Some("k1")
    );
    assert_eq!(dlq.metadata.get("__topic").map(String::as_str), Some("t"));
    let s = &d.settled()[0];
    assert_eq!(
        (s.how.clone(), s.dead_letter.as_deref()),
        (Settlement::RetriesExhausted, Some("t-dlq"))
    );
}

#[tokio::test]
async fn without_dlq_kafka_redelivers_until_the_app_recovers() {
    let (d, app) = connected(&sub_json("t", "/t", json!({})), |c| {
        c.resiliency.max_retries = 1
    })
    .await;
    app.queue("/t", (0..5).map(|_| answer(500, "")));
    d.publish_json("kafka-pubsub", "t", "application/json", b"{}", None)
        .await;
    d.wait_until(WAIT, "delivered", |d| !d.settled().is_empty())
        .await
        .unwrap();
    let runs: Vec<(u32, u32)> = d
        .deliveries()
        .iter()
        .map(|a| (a.round, a.attempt))
        .collect();
    assert_eq!(runs, [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]);
    assert_eq!(d.component_retries().len(), 2);
    assert!(d.topic("t-dlq").is_empty());
}

#[tokio::test]
async fn timeouts_are_retriable_errors() {
    let subs = sub_json("t", "/t", json!({"deadLetterTopic": "dlq"}));
    let (d, app) = connected(&subs, |c| {
        c.resiliency.max_retries = 1;
        c.resiliency.timeout = Some(Duration::from_millis(100));
    })
    .await;
    app.queue(
        "/t",
        [super::Answer {
            delay: Duration::from_secs(2),
            ..answer(200, "")
        }],
    );
    d.publish_json("kafka-pubsub", "t", "application/json", b"{}", None)
        .await;
    d.wait_until(WAIT, "settled", |d| !d.settled().is_empty())
        .await
        .unwrap();
    let outcomes: Vec<Outcome> = d.deliveries().into_iter().map(|a| a.outcome).collect();
    assert!(
        matches!(&outcomes[0], Outcome::Error(e) if e.contains("deadline")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], Outcome::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_sequential_inside_and_parallel_across() {
    let (d, app) = connected(&sub_json("t", "/t", json!({})), |c| c.partitions = 3).await;
    app.always(
        "/t",
        super::Answer {
            delay: Duration::from_millis(5),
            ..answer(200, "")
        },
    );
    // The first message of user-0 is retried twice: later ones of its partition must wait.
    app.queue("/t", [answer(500, ""), answer(500, "")]);
    for i in 0..30 {
        let key = format!("user-{}", i % 5);
        let body = json!({"i": i, "key": key}).to_string();
        d.publish_json(
            "kafka-pubsub",
            "t",
            "application/json",
            body.as_bytes(),
            Some(&key),
        )
        .await;
    }
    d.wait_until(WAIT, "30 delivered", |d| d.settled().len() == 30)
        .await
        .unwrap();
    assert!(
        app.peak_inflight().values().all(|&n| n == 1),
        "{:?}",
        app.peak_inflight()
    );
    let parts: Vec<u32> = d.deliveries().iter().map(|a| a.partition).collect();
    let switches = parts.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 2, "partitions interleave: {parts:?}");
    let mut last: std::collections::HashMap<u32, u64> = Default::default();
    for a in d
        .deliveries()
        .iter()
        .filter(|a| a.outcome == Outcome::Success)
    {
        let prev = last.insert(a.partition, a.offsets[0]);
        assert!(
            prev.is_none_or(|p| p + 1 == a.offsets[0]),
            "partition {} out of order",
            a.partition
        );
    }
    // Per key, the publish order is the delivery order.
    let seen: Vec<i64> = d
        .deliveries()
        .iter()
        .filter(|a| a.outcome == Outcome::Success)
        .filter_map(|a| a.request_json())
        .filter(|ce| ce["data"]["key"] == "user-0")
        .map(|ce| ce["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, [0, 5, 10, 15, 20, 25]);
    d.stop().await;
}

#[tokio::test]
async fn undeliverable_expired_and_raw_payload_messages() {
    let subs = json!([
        {"pubsubname": "kafka-pubsub", "topic": "t", "route": "/t", "deadLetterTopic": "dlq"},
        {"pubsubname": "kafka-pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
    ]);
    let (d, app) = connected(&subs.to_string(), |_| {}).await;
    let md = |k: &str, v: &str| [(k.to_string(), v.to_string())].into_iter().collect();
    d.publish_with_metadata(
        "kafka-pubsub",
        "t",
        "text/plain",
        b"not an object",
        md("rawPayload", "true"),
    )
    .await;
    let old = br#"{"id":"old","expiration":"2000-01-01T00:00:00Z"}"#;
    d.publish_json(
        "kafka-pubsub",
        "t",
        "application/cloudevents+json",
        old,
        None,
    )
    .await;
    d.publish_json(
        "kafka-pubsub",
        "raw",
        "application/json",
        b"{\"x\":1}",
        None,
    )
    .await;
    app.queue("/raw", [answer(500, "")]);
    d.wait_until(WAIT, "all settled", |d| d.settled().len() == 3)
        .await
        .unwrap();
    let hows: Vec<Settlement> = d
        .settled()
        .into_iter()
        .filter(|s| s.topic == "t")
        .map(|s| s.how)
        .collect();
    assert!(matches!(hows[0], Settlement::Undeliverable(_)));
    assert_eq!(hows[1], Settlement::Expired);
    assert_eq!(d.topic("dlq").len(), 2);
    assert!(app.hits_on("/t").is_empty());
    let raw: Vec<_> = app.hits_on("/raw").iter().map(|h| h.json()).collect();
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0]["data_base64"], base64_of(&d.topic("raw")[0].body));
    assert_eq!(
        (
            raw[0]["source"].as_str(),
            raw[0]["datacontenttype"].as_str()
        ),
        (Some("Dapr"), Some("application/octet-stream"))
    );
    assert_ne!(raw[0]["id"], raw[1]["id"], "a new id on every redelivery");
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
