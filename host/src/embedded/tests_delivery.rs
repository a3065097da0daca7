//! The delivery loop against a small in-test app: verdicts, redelivery order, dead letters,
//! restart, rawPayload, bulk, and a bad `/dapr/subscribe` answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::tests::{config, publish_ce, wait_for};
use super::*;

/// What the test app saw: (path, event, selected headers).
type Seen = Arc<Mutex<Vec<(String, Value, HashMap<String, String>)>>>;

#[derive(Clone, Default)]
struct TestApp {
    seen: Seen,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
}

/// Answers per the event's `data.answer`: "SUCCESS", "DROP", "404", "garbage", "retry-once"
/// (RETRY, then SUCCESS), "500-once" (500, then 200).
async fn handler(
    State(app): State<TestApp>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let picked = [
        "pubsubname",
        "content-type",
        "__key",
        "__partition",
        "__offset",
        "__topic",
        "partitionkey",
    ]
    .iter()
    .filter_map(|k| {
        headers
            .get(*k)
            .map(|v| (k.to_string(), v.to_str().unwrap_or("").to_string()))
    })
    .collect();
    app.seen
        .lock()
        .unwrap()
        .push((uri.path().to_string(), ev.clone(), picked));
    let id = ev["id"].as_str().unwrap_or("").to_string();
    let n = {
        let mut a = app.attempts.lock().unwrap();
        let n = a.entry(id).or_default();
        *n += 1;
        *n
    };
    let answer = ev["data"]["answer"].as_str().unwrap_or("SUCCESS");
    let status = |s: &str| format!(r#"{{"status":"{s}"}}"#);
    match (answer, n) {
        ("DROP", _) => (StatusCode::OK, status("DROP")),
        ("404", _) => (StatusCode::NOT_FOUND, String::new()),
        ("garbage", _) => (StatusCode::OK, "<html>".into()),
        ("retry-once", 1) => (StatusCode::OK, status("RETRY")),
        ("500-once", 1) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        _ => (StatusCode::OK, status("SUCCESS")),
    }
}

fn test_app(subs: Value) -> (Router, TestApp) {
    let state = TestApp::default();
    let subs = subs.to_string();
    let router = Router::new()
        .route("/dapr/subscribe", get(move || async move { subs.clone() }))
        .route("/events", post(handler))
        .route("/raw", post(handler))
        .route("/dlq", post(handler))
        .with_state(state.clone());
    (router, state)
}

fn ids_at(seen: &Seen, path: &str) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _, _)| p == path)
        .map(|(_, ev, _)| ev["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn delivery_verdicts_dead_letters_order_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let subs = json!([
        {"pubsubname": "kafka-pubsub", "topic": "tasks", "route": "/events", "deadLetterTopic": "tasks-dlq"},
        {"pubsubname": "kafka-pubsub", "topic": "tasks-dlq", "route": "/dlq"},
        {"pubsubname": "kafka-pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
        {"pubsubname": "other", "topic": "ignored", "route": "/events"}
    ]);
    let e = Embedded::open(config(dir.path())).unwrap();
    // Published before delivery starts: a new consumer group starts at the oldest record.
    publish_ce(&e, "tasks", "early", "u0", "SUCCESS").await;
    let (router, app) = test_app(subs.clone());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move {
            e.run_delivery(super::AppChannel::InProcess(router), shutdown)
                .await
        }
    });
    // One key: in order, the first blocked by a RETRY, then a 500.
    let answers = [
        "retry-once",
        "SUCCESS",
        "500-once",
        "DROP",
        "404",
        "garbage",
        "SUCCESS",
    ];
    for (i, a) in answers.iter().enumerate() {
        publish_ce(&e, "tasks", &format!("k{i}"), "user-1", a).await;
    }
    e.publish(PublishRequest {
        pubsub: "kafka-pubsub".into(),
        topic: "raw".into(),
        content_type: "text/plain".into(),
        body: "plain".into(),
        metadata: vec![("rawPayload".into(), "true".into())],
    })
    .await
    .unwrap();

    wait_for("every event and dead letter", || {
        ids_at(&app.seen, "/events").len() == 10
            && ids_at(&app.seen, "/dlq").len() == 2
            && !ids_at(&app.seen, "/raw").is_empty()
    })
    .await;
    // Partitions run in parallel: order is promised per key only.
    let events: Vec<String> = ids_at(&app.seen, "/events")
        .into_iter()
        .filter(|id| id != "early")
        .collect();
    assert_eq!(
        events,
        ["k0", "k0", "k1", "k2", "k2", "k3", "k4", "k5", "k6"],
        "redelivered in order"
    );
    assert_eq!(
        ids_at(&app.seen, "/dlq"),
        ["k3", "k4"],
        "DROP and 404 dead-lettered"
    );
    {
        let seen = app.seen.lock().unwrap();
        let (_, dl, _) = seen.iter().find(|(p, _, _)| p == "/dlq").unwrap();
        assert_eq!(dl["topic"], "tasks", "original bytes: topic unchanged");
        let (_, _, h) = seen.iter().find(|(_, ev, _)| ev["id"] == "early").unwrap();
        assert_eq!(h["pubsubname"], "kafka-pubsub");
        assert_eq!(h["content-type"], "application/cloudevents+json");
        assert_eq!(h["__topic"], "tasks");
        assert_eq!(h["__key"], "u0");
        assert_eq!(h["partitionkey"], "u0");
        assert_eq!(
            h["__partition"],
            envelope::partition_for_key("u0", 4).to_string()
        );
        let (_, raw, _) = seen.iter().find(|(p, _, _)| p == "/raw").unwrap();
        assert_eq!(raw["data_base64"], "cGxhaW4=");
        assert_eq!(raw["source"], "Dapr");
    }
    let p = envelope::partition_for_key("user-1", 4);
    wait_for("the commit", || {
        e.inner.store.position("task-events", "tasks", p).unwrap() == 8
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();

    // Accepted while nothing consumes, delivered after a restart; nothing delivered twice.
    publish_ce(&e, "tasks", "late", "user-1", "SUCCESS").await;
    drop(e);
    let e = Embedded::open(config(dir.path())).unwrap();
    let (router, app) = test_app(subs);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move {
            e.run_delivery(super::AppChannel::InProcess(router), shutdown)
                .await
        }
    });
    wait_for("the late event", || {
        ids_at(&app.seen, "/events") == ["late"]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ids_at(&app.seen, "/events"), ["late"]);
    assert!(ids_at(&app.seen, "/dlq").is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_subscribe_answer_subscribes_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let (router, app) = test_app(json!({"not": "an array"}));
    publish_ce(&e, "tasks", "x", "k", "SUCCESS").await;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move {
            e.run_delivery(super::AppChannel::InProcess(router), shutdown)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.seen.lock().unwrap().is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bulk_subscription_gets_batches() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    for i in 0..3 {
        publish_ce(
            &e,
            "bulk",
            &format!("b{i}"),
            "same",
            if i == 1 { "retry" } else { "ok" },
        )
        .await;
    }
    let batches: Arc<Mutex<Vec<Value>>> = Arc::default();
    let b2 = batches.clone();
    let subs = json!([{"pubsubname": "kafka-pubsub", "topic": "bulk", "route": "/bulk",
                       "bulkSubscribe": {"enabled": true}}])
    .to_string();
    let router = Router::new()
        .route("/dapr/subscribe", get(move || async move { subs.clone() }))
        .route("/bulk", post(move |body: axum::body::Bytes| {
            let b2 = b2.clone();
            async move {
                let req: Value = serde_json::from_slice(&body).unwrap();
                let first = b2.lock().unwrap().is_empty();
                b2.lock().unwrap().push(req.clone());
                let statuses: Vec<Value> = req["entries"].as_array().unwrap().iter().map(|en| {
                    let retry = first && en["event"]["data"]["answer"] == "retry";
                    json!({"entryId": en["entryId"], "status": if retry { "RETRY" } else { "SUCCESS" }})
                }).collect();
                axum::Json(json!({ "statuses": statuses }))
            }
        }));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move {
            e.run_delivery(super::AppChannel::InProcess(router), shutdown)
                .await
        }
    });
    wait_for("two bulk posts", || batches.lock().unwrap().len() == 2).await;
    let p = envelope::partition_for_key("same", 4);
    wait_for("the commit", || {
        e.inner.store.position("task-events", "bulk", p).unwrap() == 3
    })
    .await;
    let b = batches.lock().unwrap().clone();
    assert_eq!(b[0]["type"], "com.dapr.event.sent.bulk");
    assert_eq!(b[0]["entries"].as_array().unwrap().len(), 3);
    assert_eq!(b[0]["entries"][1]["entryId"], "1");
    assert_eq!(
        b[0]["entries"][1]["contentType"],
        "application/cloudevents+json"
    );
    assert_eq!(
        b[1]["entries"].as_array().unwrap().len(),
        1,
        "only the failed entry is re-sent"
    );
    assert_eq!(b[1]["entries"][0]["event"]["id"], "b1");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
}
