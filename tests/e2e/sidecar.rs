//! The standalone sidecar (`host-under-test sidecar`) against a recording app, checked against
//! daprd's delivery contract (dapr-contract.md §1-§5): routing rules, rawPayload, bulk
//! subscribe, dead-letter topics, RETRY redelivery (seen through a proxy between the sidecar
//! and the app), the app token, and the API token.
//!
//! Each test starts its own app and sidecar (own data dir), publishes through the sidecar's
//! API, and waits (bounded) for what the app saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use task_events_tests::embedded_api::wait_topic;
use task_events_tests::http::{json, send, status};
use task_events_tests::proxy::{Outcome, Proxy};
use task_events_tests::sidecar_process::SidecarProcess;
use task_events_tests::test_app::{Answer, TestApp};

const EXE: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(30);
const PUBSUB: &str = "kafka-pubsub";

async fn sidecar(dir: &tempfile::TempDir, app_port: u16, envs: &[(&str, &str)]) -> SidecarProcess {
    let mut s = SidecarProcess::start(EXE, dir.path(), app_port, "orders-app", &[], envs).await;
    s.wait_ready(WAIT).await;
    s
}

/// Publishes `event` as the app's own CloudEvent (so its `id` and `type` are the test's).
async fn publish_event(s: &SidecarProcess, topic: &str, id: &str, kind: &str, data: Value) {
    let event =
        json!({"specversion": "1.0", "id": id, "source": "test", "type": kind, "data": data});
    let publish = s.api(Method::POST, &format!("/v1.0/publish/{PUBSUB}/{topic}"));
    let publish = publish.header("content-type", "application/cloudevents+json");
    let status = status(publish.body(event.to_string())).await;
    assert_eq!(status, 204, "publish refused; log:\n{}", s.log());
}

#[tokio::test]
async fn routing_rules_pick_the_route_by_cel_match() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([{
        "pubsubname": PUBSUB, "topic": "orders",
        "routes": {
            "rules": [{"match": "event.type == \"order.created\"", "path": "/created"}],
            "default": "/other"
        }
    }]))
    .await;
    let s = sidecar(&dir, app.port, &[]).await;
    publish_event(&s, "orders", "e1", "order.created", json!({"n": 1})).await;
    publish_event(&s, "orders", "e2", "order.updated", json!({"n": 2})).await;
    let created = app.wait_on("/created", 1, WAIT).await;
    let other = app.wait_on("/other", 1, WAIT).await;
    assert_eq!(created[0].body["id"], "e1");
    assert_eq!(other[0].body["id"], "e2");
    assert_eq!(created[0].body["data"], json!({"n": 1}));
    assert_eq!(created[0].body["topic"], "orders");
    assert_eq!(created[0].body["pubsubname"], PUBSUB);
    assert_eq!(
        created[0].header("content-type"),
        Some("application/cloudevents+json")
    );
    assert_eq!(created[0].header("pubsubname"), Some(PUBSUB));
    assert_eq!(
        app.subscribe_fetches().len(),
        1,
        "/dapr/subscribe is read once"
    );
}

#[tokio::test]
async fn raw_payload_delivers_the_data_base64_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([{
        "pubsubname": PUBSUB, "topic": "raw", "route": "/raw",
        "metadata": {"rawPayload": "true"}
    }]))
    .await;
    let s = sidecar(&dir, app.port, &[]).await;
    let payload = br#"{"hello":"world"}"#;
    let raw = format!("/v1.0/publish/{PUBSUB}/raw?metadata.rawPayload=true");
    let publish = s
        .api(Method::POST, &raw)
        .header("content-type", "application/json");
    assert_eq!(status(publish.body(payload.to_vec())).await, 204);
    let got = app.wait_on("/raw", 1, WAIT).await;
    let body = &got[0].body;
    let data = base64::engine::general_purpose::STANDARD
        .decode(body["data_base64"].as_str().expect("data_base64"))
        .unwrap();
    assert_eq!(data, payload, "the broker bytes, verbatim");
    assert_eq!(body["datacontenttype"], "application/octet-stream");
    assert_eq!(body["source"], "Dapr");
    assert_eq!(body["type"], "com.dapr.event.sent");
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["topic"], "raw");
    assert_eq!(body["pubsubname"], PUBSUB);
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        body.get("time").is_none() && body.get("data").is_none(),
        "{body}"
    );
    assert_eq!(
        got[0].header("content-type"),
        Some("application/cloudevents+json")
    );
}

#[tokio::test]
async fn bulk_subscribe_delivers_entries_and_honours_per_entry_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([
        {"pubsubname": PUBSUB, "topic": "bulk", "route": "/bulk", "deadLetterTopic": "bulk-dlq",
         "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 100}},
    ]))
    .await;
    // n=0 SUCCESS; n=1 RETRY the first time, then SUCCESS; n=2 DROP.
    let retried = Arc::new(AtomicUsize::new(0));
    let seen = retried.clone();
    app.set_default(Answer::bulk(move |entry| {
        Some(match entry["event"]["data"]["n"].as_i64() {
            Some(1) if seen.fetch_add(1, Ordering::SeqCst) == 0 => "RETRY".into(),
            Some(2) => "DROP".into(),
            _ => "SUCCESS".into(),
        })
    }));
    let s = sidecar(&dir, app.port, &[]).await;
    let entries: Vec<Value> = (0..3)
        .map(|n| json!({"entryID": format!("m{n}"), "event": {"n": n}, "contentType": "application/json"}))
        .collect();
    let bulk = format!("/v1.0-alpha1/publish/bulk/{PUBSUB}/bulk");
    let resp = send(s.api(Method::POST, &bulk).json(&entries)).await;
    assert_eq!(
        resp.status(),
        204,
        "bulk publish with entryID: {:?}",
        resp.text().await
    );
    let got = app.wait_on("/bulk", 2, WAIT).await;
    let first = got[0].entries();
    assert_eq!(first.len(), 3, "one batch of three: {:#?}", got[0].body);
    let ids: Vec<&str> = first
        .iter()
        .map(|e| e["entryId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0", "1", "2"]);
    assert_eq!(first[0]["contentType"], "application/cloudevents+json");
    assert_eq!(got[0].body["topic"], "bulk");
    assert_eq!(got[0].body["type"], "com.dapr.event.sent.bulk");
    let again = got[1].entries();
    assert_eq!(
        again.len(),
        1,
        "only the retried entry again: {:#?}",
        got[1].body
    );
    assert_eq!(again[0]["event"]["data"]["n"], 1);
    let dlq = wait_topic(&s, "bulk-dlq", 1, WAIT).await;
    assert_eq!(dlq.len(), 1, "only the dropped entry: {dlq:#?}");
    assert_eq!(dlq[0]["data"]["n"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.deliveries().len(), 2, "nothing else redelivered");
}

#[tokio::test]
async fn drops_and_404s_go_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([
        {"pubsubname": PUBSUB, "topic": "orders", "route": "/orders", "deadLetterTopic": "orders-dlq"},
        {"pubsubname": PUBSUB, "topic": "orders-dlq", "route": "/dlq"},
    ]))
    .await;
    app.answer_with(|d| match d.body["id"].as_str() {
        Some("drop-me") if d.path == "/orders" => Answer::drop_it(),
        Some("not-found") if d.path == "/orders" => Answer::Http(404),
        _ => Answer::success(),
    });
    let s = sidecar(&dir, app.port, &[]).await;
    for id in ["drop-me", "not-found", "keep-me"] {
        publish_event(&s, "orders", id, "order.created", json!({})).await;
    }
    let dlq = app.wait_on("/dlq", 2, WAIT).await;
    let mut ids: Vec<&str> = dlq.iter().map(|d| d.body["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["drop-me", "not-found"]);
    // The original bytes are forwarded, not re-wrapped: the topic is still the original one.
    assert!(dlq.iter().all(|d| d.body["topic"] == "orders"), "{dlq:#?}");
    app.wait_on("/orders", 3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.deliveries()
            .iter()
            .filter(|d| d.path == "/orders")
            .count(),
        3
    );
}

#[tokio::test]
async fn retry_and_failures_are_redelivered_until_success() {
    let dir = tempfile::tempdir().unwrap();
    let app =
        TestApp::start(json!([{"pubsubname": PUBSUB, "topic": "orders", "route": "/orders"}]))
            .await;
    // The sidecar talks to the app through the proxy, so its journal shows every attempt.
    let proxy = Proxy::start(&app.base).await;
    let s = sidecar(&dir, proxy.port, &[]).await;
    app.queue([Answer::retry(), Answer::retry(), Answer::Http(500)]);
    publish_event(&s, "orders", "r1", "order.created", json!({})).await;
    // The proxy also sees the sidecar's start-up calls (port probe, /dapr/subscribe).
    let deliveries = |j: &[task_events_tests::proxy::Exchange]| {
        j.iter()
            .filter(|x| x.path == "/orders")
            .cloned()
            .collect::<Vec<_>>()
    };
    proxy
        .wait_journal(WAIT, "RETRY, RETRY, 500, SUCCESS", |j| {
            deliveries(j).len() >= 4
        })
        .await;
    let journal = proxy.journal_for("/orders");
    let answers: Vec<(Option<u16>, Value)> = journal
        .iter()
        .map(|x| (x.status(), x.response_json()["status"].clone()))
        .collect();
    assert_eq!(
        answers,
        [
            (Some(200), json!("RETRY")),
            (Some(200), json!("RETRY")),
            (Some(500), Value::Null),
            (Some(200), json!("SUCCESS")),
        ]
    );
    assert!(journal.iter().all(|x| x.request_json()["id"] == "r1"));
    // A connection the app never answered is retried too.
    proxy.drop_next("/orders", 1);
    publish_event(&s, "orders", "r2", "order.created", json!({})).await;
    proxy
        .wait_journal(WAIT, "a dropped then delivered r2", |j| {
            deliveries(j).len() >= 6
        })
        .await;
    let journal = proxy.journal_for("/orders");
    assert_eq!(journal[4].outcome, Outcome::Dropped);
    assert_eq!(journal[5].status(), Some(200));
    assert!(journal[4..].iter().all(|x| x.request_json()["id"] == "r2"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.journal_for("/orders").len(),
        6,
        "nothing after SUCCESS"
    );
}

#[tokio::test]
async fn the_app_token_arrives_on_every_call_to_an_app_url() {
    let dir = tempfile::tempdir().unwrap();
    let app =
        TestApp::start(json!([{"pubsubname": PUBSUB, "topic": "orders", "route": "/orders"}]))
            .await;
    // The app named by URL, not port (`--app-port` is then left out: the two conflict).
    let envs = [("APP_API_TOKEN", "app-secret")];
    let extra = ["--app-url", app.base.as_str()];
    let mut s = SidecarProcess::start(EXE, dir.path(), 0, "orders-app", &extra, &envs).await;
    s.wait_ready(WAIT).await;
    publish_event(&s, "orders", "t1", "order.created", json!({})).await;
    let got = app.wait_on("/orders", 1, WAIT).await;
    assert_eq!(got[0].header("dapr-api-token"), Some("app-secret"));
    let fetches = app.subscribe_fetches();
    assert_eq!(fetches.len(), 1);
    assert_eq!(
        fetches[0].get("dapr-app-id").map(String::as_str),
        Some("orders-app"),
        "daprd names itself when it reads /dapr/subscribe"
    );
    assert_eq!(
        fetches[0].get("dapr-api-token").map(String::as_str),
        Some("app-secret")
    );
}

#[tokio::test]
async fn the_api_refuses_calls_without_the_dapr_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([])).await;
    let s = sidecar(&dir, app.port, &[("DAPR_API_TOKEN", "api-secret")]).await;
    let bare = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);
    let refused = [
        bare.post(url(&format!("/v1.0/publish/{PUBSUB}/orders")))
            .body("{}"),
        bare.get(url("/v1.0/metadata")),
        bare.get(url("/v1.0/state/statestore/k")),
        bare.post(url("/v1.0/state/statestore"))
            .body(r#"[{"key":"k","value":1}]"#),
        bare.get(url("/v1.0/metadata"))
            .header("dapr-api-token", "wrong"),
    ];
    for req in refused {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.text().await.unwrap(), "invalid api token\n");
    }
    for open in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        assert_eq!(
            bare.get(url(open)).send().await.unwrap().status(),
            204,
            "{open} needs no token"
        );
    }
    let ok = s.api(Method::POST, &format!("/v1.0/publish/{PUBSUB}/orders"));
    let ok = ok.header("content-type", "application/json").body("{}");
    assert_eq!(status(ok).await, 204);
    let saved = s.api(Method::POST, "/v1.0/state/statestore");
    let saved = saved.json(&json!([{"key": "k", "value": {"a": 1}}]));
    assert_eq!(status(saved).await, 204);
}

#[tokio::test]
async fn healthz_waits_for_the_app_port_and_outbound_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let app =
        TestApp::start(json!([{"pubsubname": PUBSUB, "topic": "orders", "route": "/orders"}]))
            .await;
    // The app's port stays closed (the proxy refuses) until the test opens it.
    let proxy = Proxy::start(&app.base).await;
    proxy.refuse(true).await;
    let mut s = SidecarProcess::start(EXE, dir.path(), proxy.port, "orders-app", &[], &[]).await;
    let health = send(s.api(Method::GET, "/v1.0/healthz")).await;
    assert_eq!(
        health.status(),
        500,
        "not ready while the app port is closed"
    );
    let body: Value = health.json().await.unwrap_or(Value::Null);
    assert_eq!(body["errorCode"], "ERR_HEALTH_NOT_READY", "{body}");
    let outbound = s.api(Method::GET, "/v1.0/healthz/outbound");
    assert_eq!(status(outbound).await, 204);
    // Publishing works before the app is there; delivery waits for it.
    publish_event(&s, "orders", "early", "order.created", json!({})).await;
    proxy.refuse(false).await;
    s.wait_ready(WAIT).await;
    let got = app.wait_on("/orders", 1, WAIT).await;
    assert_eq!(got[0].body["id"], "early");
    assert_eq!(app.subscribe_fetches().len(), 1);
}

#[tokio::test]
async fn jobs_fire_at_the_app_once_due_and_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([])).await;
    let s = sidecar(&dir, app.port, &[("APP_API_TOKEN", "app-secret")]).await;
    let schedule = |name: &str, body: Value| {
        status(
            s.api(Method::POST, &format!("/v1.0/jobs/{name}"))
                .json(&body),
        )
    };
    let soon = json!({"dueTime": "500ms", "data": {"task": 7}});
    assert_eq!(schedule("soon", soon).await, 204);
    let later = json!({"dueTime": "3s", "data": "after the restart"});
    assert_eq!(schedule("later", later).await, 204);
    let got = json(s.api(Method::GET, "/v1.0-alpha1/jobs/later")).await;
    assert_eq!(
        got,
        json!({"name": "later", "data": "after the restart", "dueTime": "3s"})
    );
    let taken = schedule("later", json!({"dueTime": "1s"})).await;
    assert_eq!(taken, 409, "a taken name needs overwrite");
    let bad = schedule("cron", json!({"schedule": "0 * * * * *"})).await;
    assert_eq!(bad, 400);

    let fired = app.wait_on("/job/soon", 1, WAIT).await;
    assert_eq!(fired[0].body, json!({"task": 7}));
    assert_eq!(fired[0].header("content-type"), Some("application/json"));
    assert_eq!(fired[0].header("dapr-api-token"), Some("app-secret"));

    // kill -9 before "later" is due: it fires after the restart, from the data dir.
    drop(s);
    let s = sidecar(&dir, app.port, &[("APP_API_TOKEN", "app-secret")]).await;
    let fired = app.wait_on("/job/later", 1, WAIT).await;
    assert_eq!(fired[0].body, json!("after the restart"));
    let gone = status(s.api(Method::GET, "/v1.0/jobs/later")).await;
    assert_eq!(gone, 404, "a one-shot job is gone once it fired");
    assert_eq!(
        app.deliveries()
            .iter()
            .filter(|d| d.path == "/job/soon")
            .count(),
        1,
        "fired once"
    );
}

#[tokio::test]
async fn a_message_retried_past_max_redeliveries_goes_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([
        {"pubsubname": PUBSUB, "topic": "orders", "route": "/orders", "deadLetterTopic": "orders-dlq"},
    ]))
    .await;
    app.answer_with(|d| match d.body["id"].as_str() {
        Some("stuck") => Answer::retry(),
        _ => Answer::success(),
    });
    let args = ["--max-redeliveries", "3", "--redelivery-backoff-ms", "50"];
    let mut s = SidecarProcess::start(EXE, dir.path(), app.port, "orders-app", &args, &[]).await;
    s.wait_ready(WAIT).await;
    publish_event(&s, "orders", "stuck", "order.created", json!({})).await;
    publish_event(&s, "orders", "next", "order.created", json!({})).await;
    let dlq = wait_topic(&s, "orders-dlq", 1, WAIT).await;
    assert_eq!(dlq[0]["id"], "stuck");
    // The partition moved on: the next message was delivered after the stuck one gave up.
    let delivered = app.wait_on("/orders", 5, WAIT).await;
    let ids: Vec<&str> = delivered
        .iter()
        .map(|d| d.body["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["stuck", "stuck", "stuck", "stuck", "next"],
        "1 delivery + 3 redeliveries"
    );
}
