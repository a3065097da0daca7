//! Bulk subscribe end to end: envelope shape, per-entry statuses, partial re-sends, DLQ.

use serde_json::json;

use super::super::{Outcome, Settlement};
use super::{WAIT, answer, connected, sub_json};

#[tokio::test]
async fn bulk_sends_entries_and_retries_only_failed_ones() {
    let bulk = json!({"bulkSubscribe": {"enabled": true, "maxMessagesCount": 3, "maxAwaitDurationMs": 50}, "deadLetterTopic": "dlq"});
    let (d, app) = connected(&sub_json("t", "/bulk", bulk), |c| {
        c.resiliency.max_retries = 1
    })
    .await;
    app.queue(
        "/bulk",
        [
            answer(200, r#"{"statuses":[{"entryId":"0","status":"SUCCESS"},{"entryId":"1","status":"RETRY"}]}"#),
            answer(200, r#"{"statuses":[{"entryId":"1","status":"SUCCESS"},{"entryId":"2","status":"DROP"}]}"#),
        ],
    );
    for i in 0..3 {
        d.publish_json(
            "kafka-pubsub",
            "t",
            "application/json",
            json!({"n": 1.0, "i": i}).to_string().as_bytes(),
            None,
        )
        .await;
    }
    d.wait_until(WAIT, "batch settled", |d| d.settled().len() == 3)
        .await
        .unwrap();
    let hits = app.hits_on("/bulk");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].header("content-type"), Some("application/json"));
    assert_eq!(hits[0].header("pubsubname"), Some("kafka-pubsub"));
    let (first, second) = (hits[0].json(), hits[1].json());
    assert_eq!(first["type"], "com.dapr.event.sent.bulk");
    assert_eq!(
        (first["topic"].as_str(), first["pubsubname"].as_str()),
        (Some("t"), Some("kafka-pubsub"))
    );
    assert_eq!(first["metadata"], json!({"pubsubName": "kafka-pubsub"}));
    let ids = |v: &serde_json::Value| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entryId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ["0", "1", "2"]);
    assert_eq!(ids(&second), ["1", "2"], "only failed entries are re-sent");
    assert_eq!(first["id"], second["id"]);
    let e0 = &first["entries"][0];
    assert_eq!(e0["contentType"], "application/cloudevents+json");
    assert_eq!(e0["event"]["data"]["i"], 0);
    let text = String::from_utf8_lossy(&hits[0].body);
    assert!(
        text.contains(r#""data":{"i":0,"n":1}"#),
        "event numbers went through float64: {text}"
    );
    assert_eq!(e0["metadata"]["__offset"], "0");
    let hows: Vec<Settlement> = d.settled().into_iter().map(|s| s.how).collect();
    assert_eq!(
        hows,
        [
            Settlement::Delivered,
            Settlement::Delivered,
            Settlement::Dropped
        ]
    );
    assert_eq!(d.topic("dlq").len(), 1, "DROP goes to the DLQ");
    assert_eq!(
        d.deliveries()[0].entries[1].outcome,
        Outcome::Retry("RETRY required".into())
    );
}

#[tokio::test]
async fn bulk_empty_2xx_retries_all_and_404_acks_all() {
    let bulk = json!({"bulkSubscribe": {"enabled": true, "maxMessagesCount": 2, "maxAwaitDurationMs": 20}, "deadLetterTopic": "dlq"});
    let (d, app) = connected(&sub_json("t", "/bulk", bulk), |_| {}).await;
    app.queue("/bulk", [answer(200, ""), answer(404, "")]);
    for _ in 0..4 {
        d.publish_json("kafka-pubsub", "t", "application/json", b"{}", None)
            .await;
    }
    d.wait_until(WAIT, "4 settled", |d| d.settled().len() == 4)
        .await
        .unwrap();
    let hows: Vec<Settlement> = d.settled().into_iter().map(|s| s.how).collect();
    assert_eq!(
        hows,
        [
            Settlement::RetriesExhausted,
            Settlement::RetriesExhausted,
            Settlement::Dropped,
            Settlement::Dropped
        ]
    );
    assert_eq!(
        d.topic("dlq").len(),
        2,
        "exhausted entries go to the DLQ, 404 ones do not"
    );
    assert!(
        d.deliveries()[0]
            .entries
            .iter()
            .all(|e| e.outcome.is_retriable())
    );
}
