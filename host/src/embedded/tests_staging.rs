//! One transaction per in-process delivery (staging.rs): what the app writes while it handles a
//! message is invisible until it answers SUCCESS, then durable together with the position; a
//! RETRY, or a key changed meanwhile by someone else, leaves nothing behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::json;

use super::tests::{config, publish_ce, wait_for};
use super::*;

#[derive(Clone)]
struct App {
    e: Embedded,
    calls: Arc<AtomicU32>,
    /// `out` records seen by the store while a delivery was under way.
    visible_during: Arc<Mutex<Vec<usize>>>,
}

/// Publishes to `out`, saves `rec` (and reads it back), schedules a job; on the
/// first call also writes `rec` behind the delivery's back (a job callback racing it), on the
/// second answers RETRY, on the third SUCCESS.
async fn handle(State(app): State<App>) -> String {
    let n = app.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let e = &app.e;
    let body = json!({"id": format!("out-{n}"), "type": "t", "source": "s", "data": {}});
    e.publish(PublishRequest {
        pubsub: "kafka-pubsub".into(),
        topic: "out".into(),
        content_type: "application/cloudevents+json".into(),
        body: body.to_string().into(),
        metadata: vec![("partitionKey".into(), "u1".into())],
    })
    .await
    .unwrap();
    let value = Bytes::from(format!("attempt {n}"));
    e.save_state(
        "statestore",
        "rec",
        value.clone(),
        Concurrency::LastWrite,
        None,
    )
    .await
    .unwrap();
    let read = e.get_state("statestore", "rec").await.unwrap().unwrap();
    assert_eq!(read.value, value, "the delivery reads its own writes");
    e.schedule_job(
        "job-1",
        Duration::from_secs(3600),
        Bytes::from_static(b"{}"),
    )
    .await
    .unwrap();
    let out = e.blocking(|s| s.read_topic("out", 0, 10)).await.unwrap();
    app.visible_during.lock().unwrap().push(out.len());
    if n == 1 {
        let outside = StateOp::Upsert(SaveOp {
            key: "rec".into(),
            value: b"outside".to_vec(),
            etag: None,
            first_write: false,
            ttl_secs: None,
        });
        e.blocking(move |s| {
            s.state_apply("statestore", &[outside])
                .map_err(|e| StoreError::Task(e.to_string()))
        })
        .await
        .unwrap();
    }
    let status = if n == 2 { "RETRY" } else { "SUCCESS" };
    json!({"status": status}).to_string()
}

#[tokio::test]
async fn a_deliverys_writes_commit_with_its_position_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(config(dir.path())).unwrap();
    publish_ce(&e, "tasks", "in-1", "u1", "SUCCESS").await;
    let app = App {
        e: e.clone(),
        calls: Arc::default(),
        visible_during: Arc::default(),
    };
    let subs = json!([{"pubsubname": "kafka-pubsub", "topic": "tasks", "route": "/events"}]);
    let router = Router::new()
        .route(
            "/dapr/subscribe",
            get(move || async move { subs.to_string() }),
        )
        .route("/events", post(handle))
        .with_state(app.clone());
    let shutdown = CancellationToken::new();
    let run = tokio::spawn({
        let (e, shutdown) = (e.clone(), shutdown.clone());
        async move {
            e.run_delivery(AppChannel::InProcess(router), shutdown)
                .await
        }
    });
    wait_for("three deliveries", || app.calls.load(Ordering::SeqCst) >= 3).await;
    wait_for("the commit", || {
        e.inner.store.read_topic("out", 0, 10).unwrap().len() == 1
    })
    .await;
    shutdown.cancel();
    run.await.unwrap();

    // 1: a key it staged was changed meanwhile, so nothing committed; 2: RETRY, nothing
    // committed; 3: committed, all of it at once.
    assert_eq!(
        *app.visible_during.lock().unwrap(),
        [0, 0, 0],
        "nothing visible mid-delivery"
    );
    let out = e.inner.store.read_topic("out", 0, 10).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out[0].1.body).unwrap();
    assert_eq!(body["id"], "out-3", "only the committed attempt's publish");
    let rec = e
        .inner
        .store
        .state_get("statestore", "rec")
        .unwrap()
        .unwrap();
    assert_eq!(
        rec,
        (2, b"attempt 3".to_vec()),
        "over the outside write (version 1)"
    );
    assert!(e.inner.store.get_job("job-1").unwrap().is_some());
    let group = &e.config().app_id;
    assert_eq!(
        e.inner
            .store
            .position(group, "tasks", out[0].1.partition)
            .unwrap(),
        1
    );
}
