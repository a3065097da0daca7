//! The state API against the Redis semantics: ETags, first-write (500 vs 409), deletes,
//! re-encoded values, validation.

use serde_json::{Value, json};

use super::super::FakeDaprd;
use super::{client, config};

fn url(d: &FakeDaprd, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", d.http_port())
}

async fn post(d: &FakeDaprd, body: &str) -> (u16, Value) {
    let path = "/v1.0/state/statestore";
    let r = client()
        .post(url(d, path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn state_etags_first_write_and_redis_encoding() {
    let d = FakeDaprd::start(config(1)).await;
    let save = |body: Value| {
        let d = &d;
        async move { post(d, &body.to_string()).await }
    };
    let fw = json!({"concurrency": "first-write"});
    assert_eq!(
        save(json!([{"key": "k", "value": {"x": 1.23456789, "id": "a"}, "options": fw}]))
            .await
            .0,
        204
    );
    let r = client()
        .get(url(&d, "/v1.0/state/statestore/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"x": 1.234568, "id": "a"}),
        "jsoniter: 6 digits"
    );
    // first-write, no ETag, existing key: Redis "failed to set key" is a 500, not a 409.
    let (s, b) = save(json!([{"key": "k", "value": 2, "options": fw}])).await;
    assert_eq!((s, b["errorCode"].as_str()), (500, Some("ERR_STATE_SAVE")));
    // ... and so is a plain save once the key carries the first-write mark.
    assert_eq!(save(json!([{"key": "k", "value": 2}])).await.0, 500);
    let (s, b) = save(json!([{"key": "k", "value": 2, "etag": "7", "options": fw}])).await;
    assert_eq!((s, b["errorCode"].as_str()), (409, Some("ERR_STATE_SAVE")));
    assert_eq!(
        save(json!([{"key": "k", "value": 2, "etag": "abc"}]))
            .await
            .0,
        400
    );
    assert_eq!(
        save(json!([{"key": "k", "value": 2, "etag": "1", "options": fw}]))
            .await
            .0,
        204
    );
    assert_eq!(
        d.state("statestore", "k"),
        Some((json!(2), "2".to_string()))
    );
    // Without first-write, saves without an ETag always overwrite.
    assert_eq!(save(json!([{"key": "p", "value": 1}])).await.0, 204);
    assert_eq!(save(json!([{"key": "p", "value": 2}])).await.0, 204);
    assert_eq!(
        save(json!([{"key": "p", "value": 3, "options": fw}]))
            .await
            .0,
        204,
        "mark absent: script allows it"
    );
    assert_eq!(d.state("statestore", "p").map(|s| s.1), Some("3".into()));
    // Delete: If-Match compared as text; versions restart after a delete.
    let del = |etag: Option<&str>| {
        let mut rb = client().delete(url(&d, "/v1.0/state/statestore/k"));
        if let Some(e) = etag {
            rb = rb.header("if-match", e);
        }
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(del(Some("1")).await, 409);
    assert_eq!(del(Some("2")).await, 204);
    let r = client()
        .get(url(&d, "/v1.0/state/statestore/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("etag").is_none());
    assert_eq!(
        save(json!([{"key": "k", "value": 1, "options": fw}]))
            .await
            .0,
        204
    );
    assert_eq!(d.state("statestore", "k").map(|s| s.1), Some("1".into()));
    // Validation.
    let r = client()
        .post(url(&d, "/v1.0/state/other"))
        .body("[]")
        .send()
        .await
        .unwrap();
    let (s, b) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (400, Some("ERR_STATE_STORE_NOT_FOUND"))
    );
    let (s, b) = save(json!({"key": "k"})).await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (400, Some("ERR_MALFORMED_REQUEST"))
    );
    assert_eq!(save(json!([])).await.0, 204);
    assert_eq!(save(json!([{"key": "a||b", "value": 1}])).await.0, 400);
    assert_eq!(
        save(json!([{"key": "k", "value": 1, "options": {"concurrency": "nope"}}]))
            .await
            .0,
        500
    );
}
