//! The app-facing API: publish and envelopes, state and ETags, token, health, faults.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::{DaprdConfig, FakeDaprd};
use super::{TestApp, client, config};

fn url(d: &FakeDaprd, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", d.http_port())
}

async fn started() -> FakeDaprd {
    FakeDaprd::start(config(1)).await
}

async fn post(d: &FakeDaprd, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(url(d, path))
        .header("content-type", ct)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn publish_wraps_json_in_a_sorted_cloudevent_and_keeps_headers() {
    let d = started().await;
    let body = r#"{"z":1.10,"a":"<b>","big":12345678901234567890}"#;
    let (status, _) = post(
        &d,
        "/v1.0/publish/kafka-pubsub/tasks?metadata.partitionKey=u1&metadata.partitionKey=u2",
        "application/json; charset=utf-8",
        body,
    )
    .await;
    assert_eq!(status, 204);
    let rec = d.topic("tasks").pop().unwrap();
    assert_eq!(rec.key.as_deref(), Some("u1"), "first metadata value wins");
    assert_eq!(
        rec.metadata.get("partitionKey").map(String::as_str),
        Some("u1")
    );
    let text = rec.text();
    assert!(
        text.contains(r#""data":{"a":"\u003cb\u003e","big":12345678901234567890,"z":1.10}"#),
        "{text}"
    );
    let ce = rec.json().unwrap();
    let keys: Vec<&String> = ce.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "Go sorts envelope keys");
    assert_eq!(ce["datacontenttype"], "application/json; charset=utf-8");
    assert_eq!(ce["source"], "task-events");
    assert_eq!(ce["type"], "com.dapr.event.sent");
    assert_eq!(
        (
            ce["traceid"].as_str(),
            ce["traceparent"].as_str(),
            ce["tracestate"].as_str()
        ),
        (Some(""), Some(""), Some(""))
    );
    assert!(ce["id"].as_str().is_some_and(|id| id.len() == 36) && ce["time"].is_string());
}

#[tokio::test]
async fn publish_data_placement_by_content_type() {
    let d = started().await;
    let cases = [
        ("text/plain", "hello", json!("hello"), "data"),
        ("", "{\"a\":1}", json!("{\"a\":1}"), "data"),
        ("application/json", "not json", json!("not json"), "data"),
        ("application/JSON", "[1]", json!([1]), "data"),
        (
            "application/octet-stream",
            "hi",
            json!("aGk="),
            "data_base64",
        ),
        ("application/xml", "<x/>", json!("<x/>"), "data"),
    ];
    for (i, (ct, body, want, field)) in cases.into_iter().enumerate() {
        let t = format!("t{i}");
        assert_eq!(
            d.publish_json("kafka-pubsub", &t, ct, body.as_bytes(), None)
                .await,
            204
        );
        let ce = d.topic(&t)[0].json().unwrap();
        assert_eq!(ce[field], want, "{ct}");
        let other = if field == "data" {
            "data_base64"
        } else {
            "data"
        };
        assert!(ce.get(other).is_none());
        assert_eq!(
            ce["datacontenttype"],
            if ct.is_empty() { "text/plain" } else { ct }
        );
    }
    let md = BTreeMap::from([
        ("cloudevent.id".to_string(), "fixed".to_string()),
        ("cloudevent.type".into(), "x.y".into()),
    ]);
    d.publish_with_metadata("kafka-pubsub", "over", "application/json", b"{}", md)
        .await;
    let ce = d.topic("over")[0].json().unwrap();
    assert_eq!(
        (ce["id"].as_str(), ce["type"].as_str()),
        (Some("fixed"), Some("x.y"))
    );
    let md = BTreeMap::from([("ttlInSeconds".to_string(), "60".to_string())]);
    d.publish_with_metadata("kafka-pubsub", "ttl", "application/json", b"{}", md)
        .await;
    let ce = d.topic("ttl")[0].json().unwrap();
    let exp = chrono::DateTime::parse_from_rfc3339(ce["expiration"].as_str().unwrap()).unwrap();
    assert!(
        exp > chrono::Utc::now() + chrono::Duration::seconds(50),
        "expiration = now + ttl"
    );
}

#[tokio::test]
async fn publish_cloudevents_json_keeps_the_apps_event() {
    let d = started().await;
    let ev = r#"{"id":"e-1","type":"task.completed","source":"me","topic":"wrong","data":{"n":1.0},"specversion":null}"#;
    assert_eq!(
        d.publish_json(
            "kafka-pubsub",
            "a/b",
            "application/cloudevents+json",
            ev.as_bytes(),
            None
        )
        .await,
        204
    );
    let ce = d.topic("a/b")[0].json().unwrap();
    assert_eq!(
        (
            ce["id"].as_str(),
            ce["type"].as_str(),
            ce["source"].as_str()
        ),
        (Some("e-1"), Some("task.completed"), Some("me"))
    );
    assert_eq!(
        (ce["topic"].as_str(), ce["pubsubname"].as_str()),
        (Some("a/b"), Some("kafka-pubsub"))
    );
    assert_eq!(ce["specversion"], "1.0", "null is defaulted");
    assert!(
        ce.get("datacontenttype").is_none(),
        "not defaulted in this mode"
    );
    assert!(d.topic("a/b")[0].text().contains(r#""data":{"n":1.0}"#));
    let no_id = r#"{"type":"x"}"#;
    d.publish_json(
        "kafka-pubsub",
        "c",
        "application/cloudevents+json",
        no_id.as_bytes(),
        None,
    )
    .await;
    assert!(
        d.topic("c")[0].json().unwrap().get("id").is_none(),
        "no id is generated"
    );
    assert_eq!(
        d.publish_json(
            "kafka-pubsub",
            "c",
            "application/cloudevents+json",
            b"[1]",
            None
        )
        .await,
        500
    );
}

#[tokio::test]
async fn publish_errors_and_raw_payload() {
    let d = started().await;
    let (s, b) = post(&d, "/v1.0/publish/nope/t", "application/json", "{}").await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (404, Some("ERR_PUBSUB_NOT_FOUND"))
    );
    let (s, b) = post(&d, "/v1.0/publish/kafka-pubsub/", "application/json", "{}").await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (404, Some("ERR_TOPIC_NAME_EMPTY"))
    );
    let (s, b) = post(
        &d,
        "/v1.0/publish/kafka-pubsub/t?metadata.rawPayload=yes",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (400, Some("ERR_PUBSUB_REQUEST_METADATA"))
    );
    let (s, b) = post(
        &d,
        "/v1.0/publish/kafka-pubsub/t",
        "application/cloudevents+json",
        "nope",
    )
    .await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (500, Some("ERR_PUBSUB_CLOUD_EVENTS_SER"))
    );
    let (s, _) = post(
        &d,
        "/v1.0/publish/kafka-pubsub/raw?metadata.rawPayload=True",
        "text/plain",
        "raw bytes",
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(d.topic("raw")[0].body, b"raw bytes");
    assert_eq!(
        d.topic("raw")[0]
            .metadata
            .get("rawPayload")
            .map(String::as_str),
        Some("True")
    );
    let r = client()
        .get(url(&d, "/v1.0/publish/kafka-pubsub/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let (s, _) = post(
        &d,
        "/v1.0/publish/bulk/kafka-pubsub/t",
        "application/json",
        "[]",
    )
    .await;
    assert_eq!(s, 501, "unsupported endpoints fail loudly");
}

#[tokio::test]
async fn api_token_is_required_except_for_healthz() {
    let mut cfg = config(1);
    cfg.dapr_api_token = Some("s3cret".into());
    let d = FakeDaprd::start(cfg).await;
    let r = client()
        .post(url(&d, "/v1.0/publish/kafka-pubsub/t"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "invalid api token\n");
    let r = client()
        .get(url(&d, "/v1.0/state/statestore/k"))
        .header("dapr-api-token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(url(&d, "/v1.0/publish/kafka-pubsub/t"))
        .header("dapr-api-token", "s3cret")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        client()
            .get(url(&d, "/v1.0/healthz/outbound"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        client()
            .get(url(&d, "/v1.0/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
}

#[tokio::test]
async fn healthz_turns_ready_when_the_app_port_opens() {
    let app = TestApp::start(404, "").await;
    let d = FakeDaprd::start(DaprdConfig {
        app_port: app.port,
        ..config(app.port)
    })
    .await;
    let health = || async { client().get(url(&d, "/v1.0/healthz")).send().await.unwrap() };
    let r = health().await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errorCode"],
        "ERR_HEALTH_NOT_READY"
    );
    assert_eq!(
        d.connect_app().await,
        Ok(vec![]),
        "404 means no subscriptions"
    );
    assert_eq!(health().await.status(), 204);
    let r = client()
        .get(url(&d, "/v1.0/healthz?appid=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    d.stop().await;
}

#[tokio::test]
async fn faults_fail_refuse_and_recover() {
    let d = started().await;
    d.faults().publish_fail_next(1);
    let (s, b) = post(&d, "/v1.0/publish/kafka-pubsub/t", "application/json", "{}").await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (500, Some("ERR_PUBSUB_PUBLISH_MESSAGE"))
    );
    assert_eq!(
        post(&d, "/v1.0/publish/kafka-pubsub/t", "application/json", "{}")
            .await
            .0,
        204
    );
    assert_eq!(d.topic("t").len(), 1, "a failed publish stores nothing");
    d.faults().state_fail_next(2);
    assert_eq!(
        client()
            .get(url(&d, "/v1.0/state/statestore/k"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
    assert_eq!(
        post(
            &d,
            "/v1.0/state/statestore",
            "application/json",
            r#"[{"key":"k","value":1}]"#
        )
        .await
        .0,
        500
    );
    assert_eq!(
        client()
            .get(url(&d, "/v1.0/state/statestore/k"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    // A kept-alive connection and new connections both fail while refusing.
    let c = client();
    assert!(
        c.get(url(&d, "/v1.0/healthz/outbound"))
            .send()
            .await
            .is_ok()
    );
    d.faults().refuse(true);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        c.get(url(&d, "/v1.0/healthz/outbound"))
            .send()
            .await
            .is_err()
    );
    assert!(
        client()
            .get(url(&d, "/v1.0/healthz/outbound"))
            .send()
            .await
            .is_err()
    );
    d.faults().refuse(false);
    let mut ok = false;
    for _ in 0..50 {
        if client()
            .get(url(&d, "/v1.0/healthz/outbound"))
            .send()
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "the port re-opens");
    d.faults().slow_ms(150);
    let t = std::time::Instant::now();
    client()
        .get(url(&d, "/v1.0/healthz/outbound"))
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
    d.stop().await;
}
