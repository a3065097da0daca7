//! One delivery of one record to the app, as daprd makes it (docs/dapr-contract.md §2, §3).
//!
//! [`prepare`] does what daprd does before any HTTP call (rawPayload wrapper, "is it a JSON
//! object", expiry, routing) and [`deliver`] POSTs to the app (`app_channel.rs`) and reads the
//! answer into a [`Verdict`]. Nothing here touches the store; `dispatch.rs` acts on the verdict.

use super::app_channel::AppChannel;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::envelope::{CLOUDEVENTS_JSON, raw_payload_wrapper};
use super::store::Record;
use super::subscribe::Subscription;

/// What to do with a message after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Delivered: commit.
    Ack,
    /// Not to be delivered again: dead-letter topic if set, then commit.
    Drop(String),
    /// Deliver the same message again after a backoff.
    Retry(String),
}

/// A record ready to POST to one subscription.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub body: Bytes,
    /// The body as JSON (what routing rules see).
    pub event: Value,
    pub path: String,
}

/// daprd's checks before delivery. `Err` is the verdict without any HTTP call.
pub(crate) fn prepare(
    sub: &Subscription,
    rec: &Record,
    now: DateTime<Utc>,
) -> Result<Prepared, Verdict> {
    let (body, event) = if sub.raw_payload {
        let b = raw_payload_wrapper(&rec.body, &sub.topic, &sub.pubsub, &rec.metadata);
        let event = serde_json::from_slice(&b).unwrap_or(Value::Null);
        (Bytes::from(b), event)
    } else {
        match serde_json::from_slice::<Value>(&rec.body) {
            Ok(v @ Value::Object(_)) => (Bytes::from(rec.body.clone()), v),
            _ => {
                let why = "the record is not a JSON object (published with rawPayload=true?), so \
                           daprd never delivers it to a subscription without rawPayload";
                return Err(match sub.dead_letter_topic {
                    Some(_) => Verdict::Drop(why.into()),
                    // pubsub.kafka gets the error back and retries the message forever.
                    None => Verdict::Retry(format!("{why}; with no deadLetterTopic it is retried")),
                });
            }
        }
    };
    if let Some(exp) = event.get("expiration").and_then(Value::as_str)
        && let Ok(at) = DateTime::parse_from_rfc3339(exp)
        && at < now
    {
        return Err(Verdict::Drop(format!("expired at {exp}")));
    }
    match sub.routes.route(&event) {
        Some(path) => Ok(Prepared {
            body,
            event,
            path: path.to_string(),
        }),
        None => Err(Verdict::Drop("no routing rule matched".into())),
    }
}

/// Kafka's per-record metadata as daprd turns it into headers: every publish metadata entry
/// (Kafka record header; key lowercased, `content-type`/`content-length` skipped, `grpc-*`
/// renamed `dapr-grpc-*`), then `__key`, `__offset`, `__partition`, `__timestamp`, `__topic`.
/// `__offset` is the topic-wide offset (increasing within the partition).
pub(crate) fn broker_metadata(topic: &str, offset: u64, rec: &Record) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: String, v: String| {
        out.retain(|(old, _)| *old != k);
        out.push((k, v));
    };
    for (k, v) in &rec.metadata {
        let k = k.to_ascii_lowercase();
        if k == "content-type" || k == "content-length" {
            continue;
        }
        let k = match k.strip_prefix("grpc-") {
            Some(rest) => format!("dapr-grpc-{rest}"),
            None => k,
        };
        put(k, v.clone());
    }
    if let Some(key) = &rec.key {
        put("__key".into(), key.clone());
    }
    put("__offset".into(), offset.to_string());
    put("__partition".into(), rec.partition.to_string());
    put("__timestamp".into(), rec.published_at_ms.to_string());
    put("__topic".into(), topic.to_string());
    out
}

/// Builds a POST to `path` with `headers`; entries that are not valid HTTP headers are skipped
/// with a warning (daprd would fail the request on every retry, blocking the partition).
pub(crate) fn request(
    path: &str,
    content_type: &str,
    pubsub: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<Request<Body>, String> {
    let mut req = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .map_err(|e| format!("route {path:?} is not a valid request path: {e}"))?;
    let h = req.headers_mut();
    h.insert(
        "pubsubname",
        HeaderValue::from_str(pubsub).map_err(|e| e.to_string())?,
    );
    for (k, v) in headers {
        match (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            (Ok(name), Ok(value)) => {
                h.insert(name, value);
            }
            _ => tracing::warn!(header = %k, "metadata entry is not a valid HTTP header; not sent"),
        }
    }
    Ok(req)
}

/// One delivery of a prepared message.
pub(crate) async fn deliver(
    app: &AppChannel,
    sub: &Subscription,
    p: &Prepared,
    headers: &[(String, String)],
    partition: u32,
) -> Verdict {
    let req = match request(
        &p.path,
        CLOUDEVENTS_JSON,
        &sub.pubsub,
        headers,
        p.body.clone(),
    ) {
        Ok(r) => r,
        Err(e) => return Verdict::Retry(e),
    };
    match app.call(req, partition).await {
        Ok((status, body)) => interpret(status, &body),
        Err(e) => Verdict::Retry(e),
    }
}

/// The §3 table.
pub(crate) fn interpret(status: StatusCode, body: &[u8]) -> Verdict {
    if status == StatusCode::NOT_FOUND {
        return Verdict::Drop("the app answered 404".into());
    }
    if !status.is_success() {
        return Verdict::Retry(format!("the app answered {status}"));
    }
    // Go decodes into struct{Status string}: keys case-insensitive, last one wins; anything
    // that does not decode (not JSON, not an object, status not a string) counts as SUCCESS.
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Verdict::Ack;
    };
    let mut status_field = "";
    for (k, v) in &map {
        if k.eq_ignore_ascii_case("status") {
            match v {
                Value::String(s) => status_field = s,
                Value::Null => {}
                _ => return Verdict::Ack,
            }
        }
    }
    match status_field {
        "" | "SUCCESS" => Verdict::Ack,
        "RETRY" => Verdict::Retry("the app answered RETRY".into()),
        "DROP" => Verdict::Drop("the app answered DROP".into()),
        other => Verdict::Retry(format!("the app answered the unknown status {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_table() {
        let ok = StatusCode::OK;
        assert_eq!(interpret(ok, b""), Verdict::Ack);
        assert_eq!(interpret(StatusCode::NO_CONTENT, b""), Verdict::Ack);
        assert_eq!(interpret(ok, b"garbage"), Verdict::Ack);
        assert_eq!(interpret(ok, b"[1]"), Verdict::Ack);
        assert_eq!(interpret(ok, b"{}"), Verdict::Ack);
        assert_eq!(interpret(ok, br#"{"status":""}"#), Verdict::Ack);
        assert_eq!(interpret(ok, br#"{"status":1}"#), Verdict::Ack);
        assert_eq!(interpret(ok, br#"{"status":"SUCCESS"}"#), Verdict::Ack);
        assert_eq!(
            interpret(ok, br#"{"Status":"DROP"}"#),
            Verdict::Drop("the app answered DROP".into())
        );
        assert!(matches!(
            interpret(ok, br#"{"status":"RETRY"}"#),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            interpret(ok, br#"{"status":"success"}"#),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            interpret(StatusCode::NOT_FOUND, b"{}"),
            Verdict::Drop(_)
        ));
        for s in [400, 301, 409, 500, 503] {
            let code = StatusCode::from_u16(s).unwrap();
            assert!(
                matches!(
                    interpret(code, br#"{"status":"SUCCESS"}"#),
                    Verdict::Retry(_)
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn broker_metadata_like_kafka() {
        let rec = Record {
            partition: 2,
            key: Some("u1".into()),
            published_at_ms: 7,
            metadata: vec![
                ("partitionKey".into(), "u1".into()),
                ("Content-Type".into(), "x".into()),
                ("grpc-x".into(), "y".into()),
            ],
            body: vec![],
        };
        let md = broker_metadata("t", 9, &rec);
        let get = |k: &str| md.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("partitionkey"), Some("u1"));
        assert_eq!(get("content-type"), None);
        assert_eq!(get("dapr-grpc-x"), Some("y"));
        assert_eq!(get("__key"), Some("u1"));
        assert_eq!(get("__offset"), Some("9"));
        assert_eq!(get("__partition"), Some("2"));
        assert_eq!(get("__timestamp"), Some("7"));
        assert_eq!(get("__topic"), Some("t"));
    }
}
