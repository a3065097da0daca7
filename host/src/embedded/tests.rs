//! Whole-sidecar tests: the HTTP routes through `oneshot`, durability across reopen, `tail`
//! against a real listener. The delivery loop is tested in `tests_delivery.rs`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

pub(super) fn config(dir: &std::path::Path) -> EmbeddedConfig {
    EmbeddedConfig {
        redelivery_backoff: Duration::from_millis(40),
        ..EmbeddedConfig::new(dir, "task-events")
    }
}

pub(super) async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    ct: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (parts.status, parts.headers, bytes)
}

fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).unwrap()["errorCode"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn publish_route_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let r = e.routes();
    let ok = send(
        &r,
        "POST",
        "/v1.0/publish/kafka-pubsub/a/b?metadata.partitionKey=u1",
        Some("application/json"),
        r#"{"x":1}"#,
    )
    .await;
    assert_eq!(ok.0, StatusCode::NO_CONTENT);
    let put = send(
        &r,
        "PUT",
        "/v1.0/publish/kafka-pubsub/a/b",
        Some("text/plain"),
        "hi",
    )
    .await;
    assert_eq!(put.0, StatusCode::NO_CONTENT);
    let cases: &[(&str, Option<&str>, &str, StatusCode, &str)] = &[
        (
            "/v1.0/publish/nope/t",
            None,
            "x",
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        (
            "/v1.0/publish/kafka-pubsub/",
            None,
            "x",
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        (
            "/v1.0/publish/kafka-pubsub",
            None,
            "x",
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        (
            "/v1.0/publish/kafka-pubsub/t?metadata.rawPayload=yes",
            None,
            "x",
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_REQUEST_METADATA",
        ),
        (
            "/v1.0/publish/kafka-pubsub/t",
            Some("application/cloudevents+json"),
            "[1]",
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
    ];
    for (uri, ct, body, status, code) in cases {
        let (s, _, b) = send(&r, "POST", uri, *ct, body.to_string()).await;
        assert_eq!((s, error_code(&b).as_str()), (*status, *code), "{uri}");
    }
    let big = vec![b'x'; api::MAX_BODY + 1];
    let (s, _, _) = send(
        &r,
        "POST",
        "/v1.0/publish/kafka-pubsub/t",
        Some("text/plain"),
        big,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Not ready until the app's subscriptions are read; the outbound probe answers at once.
    let (s, _, _) = send(&r, "GET", "/v1.0/healthz", None, Body::empty()).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (s, _, _) = send(&r, "GET", "/v1.0/healthz/outbound", None, Body::empty()).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    e.set_subscriptions(&[]);
    let (s, _, _) = send(&r, "GET", "/v1.0/healthz", None, Body::empty()).await;
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
    // Field names in any case, as Go decodes them (the JavaScript SDK sends `entryID`).
    let body = json!([
        {"entryId": "1", "event": {"a": 1}, "contentType": "application/json"},
        {"entryID": "2", "Event": "aGk=", "contenttype": "application/octet-stream", "METADATA": {"partitionKey": "k"}},
        {"EntryId": "3", "event": "text", "contentType": "text/plain"}
    ]);
    let (s, _, _) = send(
        &r,
        "POST",
        "/v1.0-alpha1/publish/bulk/kafka-pubsub/t",
        Some("application/json"),
        body.to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let recs = e.inner.store.read_topic("t", 0, 10).unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1].1.key.as_deref(), Some("k"));
    let dup = json!([{"entryId": "1", "event": 1, "contentType": "application/json"},
                     {"entryId": "1", "event": 2, "contentType": "application/json"}]);
    let (s, _, b) = send(
        &r,
        "POST",
        "/v1.0/publish/bulk/kafka-pubsub/t",
        None,
        dup.to_string(),
    )
    .await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "ERR_PUBSUB_EVENTS_SER")
    );
}

#[tokio::test]
async fn state_routes() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    let r = e.routes();
    let save = |body: Value| {
        let r = r.clone();
        async move {
            send(
                &r,
                "POST",
                "/v1.0/state/statestore",
                Some("application/json"),
                body.to_string(),
            )
            .await
        }
    };
    assert_eq!(
        save(json!([{"key": "k", "value": {"b": 1, "a": 2}}]))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, h, b) = send(&r, "GET", "/v1.0/state/statestore/k", None, Body::empty()).await;
    assert_eq!((s, h["etag"].to_str().unwrap()), (StatusCode::OK, "1"));
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap(),
        json!({"a": 2, "b": 1})
    );
    assert_eq!(
        save(json!([{"key": "k", "value": 2, "etag": "1"}])).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, _, b) = save(json!([{"key": "k", "value": 3, "etag": "1"}])).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::CONFLICT, "ERR_STATE_SAVE")
    );
    let (s, _, _) =
        save(json!([{"key": "k", "value": 3, "options": {"concurrency": "first-write"}}])).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (s, _, b) = save(json!({"key": "k"})).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST")
    );
    assert_eq!(save(json!([])).await.0, StatusCode::NO_CONTENT);
    let (s, _, b) = send(&r, "GET", "/v1.0/state/other/k", None, Body::empty()).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND")
    );
    let (s, _, _) = send(
        &r,
        "GET",
        "/v1.0/state/statestore/missing",
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Delete with a stale If-Match, then the right one.
    let del = |etag: &'static str| {
        let r = r.clone();
        async move {
            let req = Request::delete("/v1.0/state/statestore/k")
                .header("if-match", etag)
                .body(Body::empty())
                .unwrap();
            r.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(del("1").await, StatusCode::CONFLICT);
    assert_eq!(del("2").await, StatusCode::NO_CONTENT);
    // Transactions answer 500 for a mismatch.
    let tx = json!({"operations": [{"operation": "upsert", "request": {"key": "t", "value": 1, "etag": "7"}}]});
    let (s, _, b) = send(
        &r,
        "POST",
        "/v1.0/state/statestore/transaction",
        None,
        tx.to_string(),
    )
    .await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "ERR_STATE_TRANSACTION")
    );
    // The in-process API: first-write conflicts.
    e.save_state("statestore", "m", "1".into(), Concurrency::FirstWrite, None)
        .await
        .unwrap();
    let err = e
        .save_state("statestore", "m", "2".into(), Concurrency::FirstWrite, None)
        .await
        .unwrap_err();
    assert!(matches!(err, SidecarError::Conflict(_)), "{err}");
    let got = e.get_state("statestore", "m").await.unwrap().unwrap();
    assert_eq!(
        (got.value.as_ref(), got.etag.as_deref()),
        (&b"1"[..], Some("1"))
    );
    let (s, _, b) = send(
        &r,
        "POST",
        "/v1.0/state/statestore/bulk",
        None,
        r#"{"keys":["m","zz"]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap(),
        json!([{"key": "m", "data": 1, "etag": "1"}, {"key": "zz"}])
    );
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
    e.save_state(
        "statestore",
        "k",
        "\"v\"".into(),
        Concurrency::FirstWrite,
        None,
    )
    .await
    .unwrap();
    let err = e
        .publish(PublishRequest {
            pubsub: "x".into(),
            ..req
        })
        .await
        .unwrap_err();
    assert!(matches!(err, SidecarError::Misconfigured(_)), "{err}");
    e.inner.store.commit("task-events", "t", 1, 5).unwrap();
    assert!(matches!(
        Embedded::open(config(dir.path())),
        Err(EmbeddedError::Locked { .. })
    ));
    drop(e);
    let e = Embedded::open(config(dir.path())).unwrap();
    let recs = e.inner.store.read_topic("t", 0, 10).unwrap();
    assert_eq!(recs.len(), 1);
    let ev: Value = serde_json::from_slice(&recs[0].1.body).unwrap();
    assert_eq!(ev["id"], "e1");
    assert_eq!(
        e.get_state("statestore", "k")
            .await
            .unwrap()
            .unwrap()
            .value
            .as_ref(),
        b"\"v\""
    );
    assert_eq!(e.inner.store.position("task-events", "t", 1).unwrap(), 5);
}

pub(super) async fn publish_ce(e: &Embedded, topic: &str, id: &str, key: &str, answer: &str) {
    let body =
        json!({"id": id, "type": "t", "source": "s", "data": {"answer": answer}}).to_string();
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

pub(super) async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
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
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (
            lines[0]["offset"].as_u64(),
            lines[0]["event"]["id"].as_str()
        ),
        (Some(1), Some("t1"))
    );
    // Follow: a record published later shows up without polling.
    let follower = tokio::spawn({
        let base = base.clone();
        async move {
            let mut out = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_millis(800),
                tail(&base, "a b", 3, true, &mut out),
            )
            .await;
            out
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    publish_ce(&e, "a b", "t3", "k", "ok").await;
    let out = String::from_utf8(follower.await.unwrap()).unwrap();
    assert!(out.contains("\"t3\""), "{out}");
    let (s, _, b) = send(
        &e.routes(),
        "GET",
        "/v1.0-embedded/topics",
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["topics"][0]["records"],
        4
    );
    server.abort();
}
