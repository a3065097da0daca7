//! Whole-sidecar tests: the HTTP routes through `oneshot`, durability across reopen, and the
//! delivery loop against a small in-test app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    EmbeddedConfig {
        redelivery_backoff: Duration::from_millis(40),
        ..EmbeddedConfig::new(dir, "task-events")
    }
}

async fn send(app: &Router, method: &str, uri: &str, ct: Option<&str>, body: impl Into<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = app.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    (parts.status, parts.headers, bytes)
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["errorCode"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn publish_route_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let r = e.routes();
    let ok = send(&r, "POST", "/v1.0/publish/kafka-pubsub/a/b?metadata.partitionKey=u1", Some("application/json"), r#"{"x":1}"#).await;
    assert_eq!(ok.0, StatusCode::NO_CONTENT);
    let put = send(&r, "PUT", "/v1.0/publish/kafka-pubsub/a/b", Some("text/plain"), "hi").await;
    assert_eq!(put.0, StatusCode::NO_CONTENT);
    let cases: &[(&str, Option<&str>, &str, StatusCode, &str)] = &[
        ("/v1.0/publish/nope/t", None, "x", StatusCode::NOT_FOUND, "ERR_PUBSUB_NOT_FOUND"),
        ("/v1.0/publish/kafka-pubsub/", None, "x", StatusCode::NOT_FOUND, "ERR_TOPIC_NAME_EMPTY"),
        ("/v1.0/publish/kafka-pubsub", None, "x", StatusCode::NOT_FOUND, "ERR_TOPIC_NAME_EMPTY"),
        ("/v1.0/publish/kafka-pubsub/t?metadata.rawPayload=yes", None, "x", StatusCode::BAD_REQUEST, "ERR_PUBSUB_REQUEST_METADATA"),
        ("/v1.0/publish/kafka-pubsub/t", Some("application/cloudevents+json"), "[1]", StatusCode::INTERNAL_SERVER_ERROR, "ERR_PUBSUB_CLOUD_EVENTS_SER"),
    ];
    for (uri, ct, body, status, code) in cases {
        let (s, _, b) = send(&r, "POST", uri, *ct, body.to_string()).await;
        assert_eq!((s, error_code(&b).as_str()), (*status, *code), "{uri}");
    }
    let big = vec![b'x'; api::MAX_BODY + 1];
    let (s, _, _) = send(&r, "POST", "/v1.0/publish/kafka-pubsub/t", Some("text/plain"), big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _, _) = send(&r, "GET", "/v1.0/healthz", None, Body::empty()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = send(&r, "GET", "/v1.0/healthz/outbound", None, Body::empty()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // The topic "a/b" holds both records, the keyed one in the key's partition.
    let (s, _, b) = send(&r, "GET", "/v1.0-embedded/topics/a/b", None, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    let page: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(page["topic"], "a/b");
    assert_eq!(page["next"], 2);
    let recs = page["records"].as_array().unwrap();
    assert_eq!(recs[0]["partition"], envelope::partition_for_key("u1", 4));
    assert_eq!(recs[0]["key"], "u1");
    assert_eq!(recs[0]["event"]["data"], json!({"x": 1}));
    assert_eq!(recs[0]["event"]["topic"], "a/b");
    assert_eq!(recs[1]["partition"], 0);
    assert_eq!(recs[1]["key"], Value::Null);
    assert_eq!(recs[1]["event"]["data"], "hi");
}

#[tokio::test]
async fn bulk_publish_route() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let r = e.routes();
    let body = json!([
        {"entryId": "1", "event": {"a": 1}, "contentType": "application/json"},
        {"entryId": "2", "event": "aGk=", "contentType": "application/octet-stream", "metadata": {"partitionKey": "k"}},
        {"entryId": "3", "event": "text", "contentType": "text/plain"}
    ]);
    let (s, _, _) = send(&r, "POST", "/v1.0-alpha1/publish/bulk/kafka-pubsub/t", Some("application/json"), body.to_string()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let recs = e.inner.store.read_topic("t", 0, 10).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1].1.key.as_deref(), Some("k"));
    let dup = json!([{"entryId": "1", "event": 1, "contentType": "application/json"},
                     {"entryId": "1", "event": 2, "contentType": "application/json"}]);
    let (s, _, b) = send(&r, "POST", "/v1.0/publish/bulk/kafka-pubsub/t", None, dup.to_string()).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::BAD_REQUEST, "ERR_PUBSUB_EVENTS_SER"));
}

#[tokio::test]
async fn state_routes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let r = e.routes();
    let save = |body: Value| {
        let r = r.clone();
        async move { send(&r, "POST", "/v1.0/state/statestore", Some("application/json"), body.to_string()).await }
    };
    assert_eq!(save(json!([{"key": "k", "value": {"b": 1, "a": 2}}])).await.0, StatusCode::NO_CONTENT);
    let (s, h, b) = send(&r, "GET", "/v1.0/state/statestore/k", None, Body::empty()).await;
    assert_eq!((s, h["etag"].to_str().unwrap()), (StatusCode::OK, "1"));
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap(), json!({"a": 2, "b": 1}));
    assert_eq!(save(json!([{"key": "k", "value": 2, "etag": "1"}])).await.0, StatusCode::NO_CONTENT);
    let (s, _, b) = save(json!([{"key": "k", "value": 3, "etag": "1"}])).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::CONFLICT, "ERR_STATE_SAVE"));
    let (s, _, _) = save(json!([{"key": "k", "value": 3, "options": {"concurrency": "first-write"}}])).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (s, _, b) = save(json!({"key": "k"})).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST"));
    assert_eq!(save(json!([])).await.0, StatusCode::NO_CONTENT);
    let (s, _, b) = send(&r, "GET", "/v1.0/state/other/k", None, Body::empty()).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND"));
    let (s, _, _) = send(&r, "GET", "/v1.0/state/statestore/missing", None, Body::empty()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Delete with a stale If-Match, then the right one.
    let del = |etag: &'static str| {
        let r = r.clone();
        async move {
            let req = Request::delete("/v1.0/state/statestore/k").header("if-match", etag).body(Body::empty()).unwrap();
            r.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(del("1").await, StatusCode::CONFLICT);
    assert_eq!(del("2").await, StatusCode::NO_CONTENT);
    // Transactions answer 500 for a mismatch.
    let tx = json!({"operations": [{"operation": "upsert", "request": {"key": "t", "value": 1, "etag": "7"}}]});
    let (s, _, b) = send(&r, "POST", "/v1.0/state/statestore/transaction", None, tx.to_string()).await;
    assert_eq!((s, error_code(&b).as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "ERR_STATE_TRANSACTION"));
    // The in-process API: first-write conflicts.
    e.save_state("statestore", "m", "1".into(), Concurrency::FirstWrite).await.unwrap();
    let err = e.save_state("statestore", "m", "2".into(), Concurrency::FirstWrite).await.unwrap_err();
    assert!(matches!(err, SidecarError::Conflict(_)), "{err}");
    let got = e.get_state("statestore", "m").await.unwrap().unwrap();
    assert_eq!((got.value.as_ref(), got.etag.as_deref()), (&b"1"[..], Some("1")));
    let (s, _, b) = send(&r, "POST", "/v1.0/state/statestore/bulk", None, r#"{"keys":["m","zz"]}"#).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap(), json!([{"key": "m", "data": 1, "etag": "1"}, {"key": "zz"}]));
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let req = PublishRequest {
        pubsub: "kafka-pubsub".into(),
        topic: "t".into(),
        content_type: "application/cloudevents+json".into(),
        body: r#"{"id":"e1","data":{}}"#.into(),
        metadata: vec![("partitionKey".into(), "u".into())],
    };
    e.publish(req.clone()).await.unwrap();
    e.save_state("statestore", "k", "\"v\"".into(), Concurrency::LastWrite).await.unwrap();
    let err = e.publish(PublishRequest { pubsub: "x".into(), ..req }).await.unwrap_err();
    assert!(matches!(err, SidecarError::Rejected(_)), "{err}");
    e.inner.store.commit("task-events", "t", 1, 5).unwrap();
    assert!(matches!(Embedded::open(config(dir.path())), Err(EmbeddedError::Locked { .. })));
    drop(e);
    let e = Embedded::open(config(dir.path())).unwrap();
    let recs = e.inner.store.read_topic("t", 0, 10).unwrap();
    assert_eq!(recs.len(), 1);
    let ev: Value = serde_json::from_slice(&recs[0].1.body).unwrap();
    assert_eq!(ev["id"], "e1");
    assert_eq!(e.get_state("statestore", "k").await.unwrap().unwrap().value.as_ref(), b"\"v\"");
    assert_eq!(e.inner.store.position("task-events", "t", 1).unwrap(), 5);
}

// ---- the delivery loop ----

/// What the test app saw: (path, event, selected headers).
type Seen = Arc<Mutex<Vec<(String, Value, HashMap<String, String>)>>>;

#[derive(Clone, Default)]
struct TestApp {
    seen: Seen,
    attempts: Arc<Mutex<HashMap<String, u32>>>,
}

/// Answers per the event's `data.answer`: "SUCCESS", "DROP", "404", "garbage", "retry-once"
/// (RETRY, then SUCCESS), "500-once" (500, then 200).
async fn handler(State(app): State<TestApp>, uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes) -> (StatusCode, String) {
    let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let picked = ["pubsubname", "content-type", "__key", "__partition", "__offset", "__topic", "partitionkey"]
        .iter()
        .filter_map(|k| headers.get(*k).map(|v| (k.to_string(), v.to_str().unwrap_or("").to_string())))
        .collect();
    app.seen.lock().unwrap().push((uri.path().to_string(), ev.clone(), picked));
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

async fn publish_ce(e: &Embedded, topic: &str, id: &str, key: &str, answer: &str) {
    let body = json!({"id": id, "type": "t", "source": "s", "data": {"answer": answer}}).to_string();
    e.publish(PublishRequest {
        pubsub: "kafka-pubsub".into(),
        topic: topic.into(),
        content_type: "application/cloudevents+json".into(),
        body: body.into(),
        metadata: vec![("partitionKey".into(), key.into())],
    })
    .await
    .unwrap();
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn ids_at(seen: &Seen, path: &str) -> Vec<String> {
    seen.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, ev, _)| ev["id"].as_str().unwrap_or("").to_string()).collect()
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
        async move { e.run_delivery(router, shutdown).await }
    });
    // One key: in order, the first blocked by a RETRY, then a 500.
    let answers = ["retry-once", "SUCCESS", "500-once", "DROP", "404", "garbage", "SUCCESS"];
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
        ids_at(&app.seen, "/events").len() == 10 && ids_at(&app.seen, "/dlq").len() == 2 && !ids_at(&app.seen, "/raw").is_empty()
    })
    .await;
    // Partitions run in parallel: order is promised per key only.
    let events: Vec<String> = ids_at(&app.seen, "/events").into_iter().filter(|id| id != "early").collect();
    assert_eq!(events, ["k0", "k0", "k1", "k2", "k2", "k3", "k4", "k5", "k6"], "redelivered in order");
    assert_eq!(ids_at(&app.seen, "/dlq"), ["k3", "k4"], "DROP and 404 dead-lettered");
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
        assert_eq!(h["__partition"], envelope::partition_for_key("u0", 4).to_string());
        let (_, raw, _) = seen.iter().find(|(p, _, _)| p == "/raw").unwrap();
        assert_eq!(raw["data_base64"], "cGxhaW4=");
        assert_eq!(raw["source"], "Dapr");
    }
    let p = envelope::partition_for_key("user-1", 4);
    wait_for("the commit", || e.inner.store.position("task-events", "tasks", p).unwrap() == 8).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();

    // Accepted while nothing consumes, delivered after a restart; nothing delivered twice.
    publish_ce(&e, "tasks", "late", "user-1", "SUCCESS").await;
    drop(e);
    let e = Embedded::open(config(dir.path())).unwrap();
    let (router, app) = test_app(subs);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move { e.run_delivery(router, shutdown).await }
    });
    wait_for("the late event", || ids_at(&app.seen, "/events") == ["late"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ids_at(&app.seen, "/events"), ["late"]);
    assert!(ids_at(&app.seen, "/dlq").is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();
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
        async move { e.run_delivery(router, shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.seen.lock().unwrap().is_empty());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();
}

#[tokio::test]
async fn bulk_subscription_gets_batches() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    for i in 0..3 {
        publish_ce(&e, "bulk", &format!("b{i}"), "same", if i == 1 { "retry" } else { "ok" }).await;
    }
    let batches: Arc<Mutex<Vec<Value>>> = Arc::default();
    let b2 = batches.clone();
    let subs = json!([{"pubsubname": "kafka-pubsub", "topic": "bulk", "route": "/bulk",
                       "bulkSubscribe": {"enabled": true}}]).to_string();
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
        async move { e.run_delivery(router, shutdown).await }
    });
    wait_for("two bulk posts", || batches.lock().unwrap().len() == 2).await;
    let p = envelope::partition_for_key("same", 4);
    wait_for("the commit", || e.inner.store.position("task-events", "bulk", p).unwrap() == 3).await;
    let b = batches.lock().unwrap().clone();
    assert_eq!(b[0]["type"], "com.dapr.event.sent.bulk");
    assert_eq!(b[0]["entries"].as_array().unwrap().len(), 3);
    assert_eq!(b[0]["entries"][1]["entryId"], "1");
    assert_eq!(b[0]["entries"][1]["contentType"], "application/cloudevents+json");
    assert_eq!(b[1]["entries"].as_array().unwrap().len(), 1, "only the failed entry is re-sent");
    assert_eq!(b[1]["entries"][0]["event"]["id"], "b1");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run).await.unwrap().unwrap();
}

#[tokio::test]
async fn tail_pages_and_follows() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    for i in 0..3 {
        publish_ce(&e, "a b", &format!("t{i}"), "k", "ok").await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, e.routes()).into_future());
    let mut out = Vec::new();
    tail(&base, "a b", 1, false, &mut out).await.unwrap();
    let lines: Vec<Value> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["offset"].as_u64(), lines[0]["event"]["id"].as_str()), (Some(1), Some("t1")));
    // Follow: a record published later shows up without polling.
    let follower = tokio::spawn({
        let base = base.clone();
        async move {
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_millis(800), tail(&base, "a b", 3, true, &mut out)).await;
            out
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish_ce(&e, "a b", "t3", "k", "ok").await;
    let out = String::from_utf8(follower.await.unwrap()).unwrap();
    assert!(out.contains("\"t3\""), "{out}");
    let (s, _, b) = send(&e.routes(), "GET", "/v1.0-embedded/topics", None, Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["topics"][0]["records"], 4);
    server.abort();
}
