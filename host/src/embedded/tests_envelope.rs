//! The envelope table (docs/dapr-contract.md), one row per content type, plus metadata and
//! partitioning rules.

use super::*;
use serde_json::{Value, json};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00.750Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn build(content_type: &str, body: &[u8], metadata: &Metadata) -> Result<Vec<u8>, ApiError> {
    Envelope {
        app_id: "task-events",
        pubsub: "kafka-pubsub",
        topic: "tasks",
        content_type,
        metadata,
    }
    .build(body, now())
}

fn build_json(content_type: &str, body: &[u8]) -> Value {
    serde_json::from_slice(&build(content_type, body, &Metadata::default()).unwrap()).unwrap()
}

#[test]
fn new_envelope_data_placement_per_content_type() {
    // (content type, body, expected key, expected value)
    let rows: &[(&str, &[u8], &str, Value)] = &[
        (
            "application/json",
            br#"{"b":1,"a":2}"#,
            "data",
            json!({"a":2,"b":1}),
        ),
        (
            "application/json; charset=utf-8",
            b"[1,2]",
            "data",
            json!([1, 2]),
        ),
        ("application/json", b"not json", "data", json!("not json")),
        (
            "application/octet-stream",
            b"\x00\x01",
            "data_base64",
            json!("AAE="),
        ),
        (
            "application/cloudevents+protobuf",
            b"pb",
            "data_base64",
            json!("cGI="),
        ),
        ("text/plain", b"hello", "data", json!("hello")),
        ("application/xml", b"<a/>", "data", json!("<a/>")),
        (
            "application/problem+json",
            br#"{"x":1}"#,
            "data",
            json!(r#"{"x":1}"#),
        ),
        (
            "application/x-www-form-urlencoded",
            b"a=1",
            "data",
            json!("a=1"),
        ),
        ("", b"plain", "data", json!("plain")),
    ];
    for (ct, body, key, want) in rows {
        let v = build_json(ct, body);
        assert_eq!(&v[*key], want, "content type {ct:?}");
        let other = if *key == "data" {
            "data_base64"
        } else {
            "data"
        };
        assert!(v.get(other).is_none(), "{ct:?} must not carry {other}");
        let expected_ct = if ct.is_empty() { "text/plain" } else { ct };
        assert_eq!(v["datacontenttype"], *expected_ct);
        assert_eq!(v["source"], "task-events");
        assert_eq!(v["type"], "com.dapr.event.sent");
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["topic"], "tasks");
        assert_eq!(v["pubsubname"], "kafka-pubsub");
        assert_eq!(v["traceid"], "");
        assert_eq!(v["traceparent"], "");
        assert_eq!(v["tracestate"], "");
        let id = v["id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        let time = v["time"].as_str().unwrap();
        let parsed = DateTime::parse_from_rfc3339(time).unwrap();
        assert_eq!(parsed.with_timezone(&Utc).timestamp(), now().timestamp());
        assert!(!time.contains('.'), "whole seconds: {time}");
    }
}

#[test]
fn envelope_is_compact_sorted_and_keeps_the_data_bytes() {
    let out = build(
        "application/json",
        br#"{"z":1.50,"a":"<&>","big":12345678901234567890}"#,
        &Metadata::default(),
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""data":{"z":1.50,"a":"<&>","big":12345678901234567890}"#),
        "{text}"
    );
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        keys, sorted,
        "top-level keys sorted (preserve_order keeps document order)"
    );
    assert!(!text.contains(' ') && !text.contains('\n'));
}

#[test]
fn cloudevent_overrides_in_new_envelopes() {
    let m = md(&[
        ("cloudevent.id", "fixed"),
        ("cloudevent.source", "src"),
        ("cloudevent.type", "t"),
        ("cloudevent.subject", "s"),
        ("cloudevent.traceparent", "00-abc-01"),
    ]);
    let v: Value = serde_json::from_slice(&build("text/plain", b"x", &m).unwrap()).unwrap();
    assert_eq!(v["id"], "fixed");
    assert_eq!(v["source"], "src");
    assert_eq!(v["type"], "t");
    assert_eq!(v["subject"], "s");
    assert_eq!(v["traceid"], "00-abc-01");
    assert_eq!(v["traceparent"], "00-abc-01");
}

#[test]
fn app_cloudevent_is_completed_not_replaced() {
    let body = br#"{"id":"evt-1","type":"task.completed","source":"app","topic":"wrong","data":{"n":12345678901234567890},"time":"2020-01-01T00:00:00Z","specversion":null}"#;
    let out = build(CLOUDEVENTS_JSON, body, &Metadata::default()).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.contains(r#""n":12345678901234567890"#),
        "digits kept: {text}"
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["id"], "evt-1");
    assert_eq!(v["type"], "task.completed");
    assert_eq!(v["source"], "app");
    assert_eq!(v["topic"], "tasks");
    assert_eq!(v["pubsubname"], "kafka-pubsub");
    assert_eq!(v["time"], "2020-01-01T00:00:00Z");
    assert_eq!(v["specversion"], "1.0", "null is defaulted");
    assert_eq!(v["traceid"], "");
    assert_eq!(v["traceparent"], "");
    assert_eq!(v["tracestate"], "");
    assert!(
        v.get("datacontenttype").is_none(),
        "not defaulted in mode (b)"
    );

    let v = build_json("application/cloudevents+json; charset=utf-8", b"{}");
    assert!(v.get("id").is_none(), "no id generated in mode (b)");
    assert_eq!(v["source"], "Dapr");
    assert_eq!(v["type"], "com.dapr.event.sent");
    assert!(v["time"].is_string());
}

#[test]
fn app_cloudevent_must_be_an_object() {
    for body in [&b"[1]"[..], b"\"x\"", b"nope", b""] {
        let e = build(CLOUDEVENTS_JSON, body, &Metadata::default()).unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "ERR_PUBSUB_CLOUD_EVENTS_SER");
    }
}

#[test]
fn raw_payload_is_verbatim_and_must_be_a_bool() {
    let body = b"\xff not json";
    for v in ["true", "1", "T"] {
        let m = md(&[("rawPayload", v)]);
        assert_eq!(build(CLOUDEVENTS_JSON, body, &m).unwrap(), body);
    }
    let m = md(&[("rawPayload", "false")]);
    assert_ne!(build("text/plain", body, &m).unwrap(), body);
    let e = build("text/plain", body, &md(&[("rawPayload", "yes")])).unwrap_err();
    assert_eq!(
        (e.status, e.code),
        (StatusCode::BAD_REQUEST, "ERR_PUBSUB_REQUEST_METADATA")
    );
}

#[test]
fn ttl_adds_expiration_in_utc() {
    for (k, v, want) in [
        ("ttlInSeconds", "60", "2026-03-01T10:01:00Z"),
        ("ttl", "1h30m", "2026-03-01T11:30:00Z"),
    ] {
        let m = md(&[(k, v)]);
        let v: Value = serde_json::from_slice(&build("text/plain", b"x", &m).unwrap()).unwrap();
        assert_eq!(v["expiration"], want);
    }
    let m = md(&[("ttlInSeconds", "soon")]);
    let v: Value = serde_json::from_slice(&build("text/plain", b"x", &m).unwrap()).unwrap();
    assert!(v.get("expiration").is_none(), "bad TTL ignored");
}

#[test]
fn metadata_first_value_wins() {
    let m = md(&[("partitionKey", "a"), ("partitionKey", "b")]);
    assert_eq!(m.partition_key(), Some("a"));
    assert_eq!(m.pairs().len(), 1);
}

#[test]
fn partitions_are_stable_and_match_sarama() {
    // FNV-1a 32 of "" is 0x811c9dc5 = int32 -2128831035; % 4 = -3 -> 3.
    assert_eq!(partition_for_key("", 4), 3);
    // Stable across calls and processes (no random seed), spread over partitions.
    let ps: Vec<u32> = (0..64)
        .map(|i| partition_for_key(&format!("user-{i}"), 4))
        .collect();
    assert_eq!(
        ps,
        (0..64)
            .map(|i| partition_for_key(&format!("user-{i}"), 4))
            .collect::<Vec<_>>()
    );
    for p in 0..4 {
        assert!(ps.contains(&p), "partition {p} never used");
    }
    assert_eq!(
        choose_partition(&md(&[]), 4).unwrap(),
        0,
        "no key -> partition 0"
    );
    assert_eq!(
        choose_partition(&md(&[("partitionNumber", "2")]), 4).unwrap(),
        2
    );
    assert!(choose_partition(&md(&[("partitionNumber", "4")]), 4).is_err());
    assert_eq!(
        choose_partition(&md(&[("__key", "k")]), 4).unwrap(),
        partition_for_key("k", 4)
    );
}

#[test]
fn raw_payload_wrapper_shape() {
    let md = vec![("traceparent".to_string(), "tp".to_string())];
    let out = raw_payload_wrapper(b"hi", "orders", "ps", &md);
    let text = String::from_utf8(out).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data_base64"], "aGk=");
    assert_eq!(v["datacontenttype"], "application/octet-stream");
    assert_eq!(v["source"], "Dapr");
    assert_eq!(v["topic"], "orders");
    assert_eq!(v["traceparent"], "tp");
    assert!(v.get("traceid").is_none() && v.get("time").is_none());
    assert!(text.starts_with(r#"{"data_base64":"aGk=","datacontenttype""#));
}
