//! The CloudEvent envelope, both as the publishing daprd builds it and as the subscribing daprd
//! re-builds it for `rawPayload` subscriptions.
//!
//! Contract (dapr-contract.md §2.1 a/b/c, §2 "Body, subscription with rawPayload"):
//! - (a) any Content-Type other than `application/cloudevents+json`: a new envelope with
//!   `id` (uuid4 or `cloudevent.id`), `specversion`, `datacontenttype` (raw header, `text/plain`
//!   when empty), `source` (app id or `cloudevent.source`), `type`, `topic`, `pubsubname`,
//!   `traceid`/`traceparent`/`tracestate` (empty: tracing is off), `time`, optional `subject`
//!   and `expiration`; data as parsed JSON (digits kept), `data_base64`, or a string.
//! - (b) `application/cloudevents+json`: the app's object, with `topic`/`pubsubname` overwritten
//!   and the rest only filled when absent; no `id` is generated.
//! - (c) `rawPayload=true`: the body verbatim (handled by the caller).
//!
//! Go's `json.Marshal` writes the result: keys sorted at every level, `<>&` escaped.
//! Content-type tests follow components-contrib `contenttype`: lower-cased, parameters after
//! `;` ignored, nothing trimmed.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;

use super::gojson::{self, GoValue, map_set, s};

pub(crate) const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// components-contrib `isContentType`.
pub(crate) fn is_content_type(ct: &str, expected: &str) -> bool {
    let lower = ct.to_lowercase();
    lower == expected
        || lower
            .split_once(';')
            .is_some_and(|(base, _)| base == expected)
}

/// Why the envelope could not be built (daprd answers 500 `ERR_PUBSUB_CLOUD_EVENTS_SER`).
#[derive(Debug)]
pub(crate) struct EnvelopeError(pub String);

pub(crate) struct Publish<'a> {
    pub app_id: &'a str,
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub metadata: &'a BTreeMap<String, String>,
}

/// Build the bytes a publish puts on the broker (modes a and b).
pub(crate) fn wrap(p: &Publish<'_>) -> Result<Vec<u8>, EnvelopeError> {
    let md = |k: &str| p.metadata.get(k).filter(|v| !v.is_empty()).cloned();
    let mut ce = if is_content_type(p.content_type, CLOUDEVENTS_JSON) {
        from_cloud_event(p)?
    } else {
        new_envelope(p, &md)
    };
    if let Some(ttl) = ttl(p.metadata) {
        let at = chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        map_set(
            &mut ce,
            "expiration",
            s(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
    }
    Ok(gojson::marshal(&GoValue::Map(ce)))
}

fn now_rfc3339() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Mode (a): components-contrib `NewCloudEventsEnvelope`, as daprd's `onPublish` calls it.
fn new_envelope(p: &Publish<'_>, md: &dyn Fn(&str) -> Option<String>) -> Vec<(String, GoValue)> {
    let ct = if p.content_type.is_empty() {
        "text/plain"
    } else {
        p.content_type
    };
    let (field, data) = if is_content_type(ct, "application/json") {
        // unmarshalPrecise: a Decoder with UseNumber; a failure keeps the body as a string.
        match gojson::decode_first(p.body) {
            Ok(v) => ("data", v),
            Err(_) => ("data", s(String::from_utf8_lossy(p.body))),
        }
    } else if is_content_type(ct, "application/octet-stream")
        || is_content_type(ct, "application/cloudevents+protobuf")
    {
        let b64 = base64::engine::general_purpose::STANDARD.encode(p.body);
        ("data_base64", s(b64))
    } else {
        ("data", s(String::from_utf8_lossy(p.body)))
    };
    let trace = md("cloudevent.traceparent").unwrap_or_default();
    let mut ce = vec![
        (
            "id".to_string(),
            s(md("cloudevent.id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
        ),
        ("specversion".into(), s("1.0")),
        ("datacontenttype".into(), s(ct)),
        (
            "source".into(),
            s(md("cloudevent.source").unwrap_or_else(|| p.app_id.to_string())),
        ),
        (
            "type".into(),
            s(md("cloudevent.type").unwrap_or_else(|| "com.dapr.event.sent".into())),
        ),
        ("topic".into(), s(p.topic)),
        ("pubsubname".into(), s(p.pubsub)),
        ("traceid".into(), s(trace.clone())),
        ("traceparent".into(), s(trace)),
        (
            "tracestate".into(),
            s(md("cloudevent.tracestate").unwrap_or_default()),
        ),
        ("time".into(), s(now_rfc3339())),
        (field.to_string(), data),
    ];
    if let Some(subject) = md("cloudevent.subject") {
        ce.push(("subject".into(), s(subject)));
    }
    ce
}

/// Mode (b): components-contrib `FromCloudEvent` plus daprd's defaults.
fn from_cloud_event(p: &Publish<'_>) -> Result<Vec<(String, GoValue)>, EnvelopeError> {
    let mut ce = match gojson::decode_first(p.body) {
        Ok(GoValue::Map(pairs)) => pairs,
        Ok(_) => return Err(EnvelopeError("cloudevent is not a JSON object".into())),
        Err(e) => return Err(EnvelopeError(format!("cannot decode cloudevent: {e}"))),
    };
    let get = |ce: &[(String, GoValue)], k: &str| {
        ce.iter()
            .rev()
            .find(|(ck, _)| ck == k)
            .map(|(_, v)| v.clone())
    };
    map_set(&mut ce, "topic", s(p.topic));
    map_set(&mut ce, "pubsubname", s(p.pubsub));
    if get(&ce, "time").is_none() {
        map_set(&mut ce, "time", s(now_rfc3339()));
    }
    if get(&ce, "traceid").is_none() {
        // Tracing is off in the stand-in: the publish span's traceparent is empty.
        map_set(&mut ce, "traceid", s(""));
        map_set(&mut ce, "traceparent", s(""));
    }
    if get(&ce, "tracestate").is_none() {
        map_set(&mut ce, "tracestate", s(""));
    }
    for (k, default) in [
        ("source", "Dapr"),
        ("type", "com.dapr.event.sent"),
        ("specversion", "1.0"),
    ] {
        if matches!(get(&ce, k), None | Some(GoValue::Null)) {
            map_set(&mut ce, k, s(default));
        }
    }
    Ok(ce)
}

/// components-contrib `TryGetTTL`: `ttlInSeconds` (or `ttl`), whole seconds or a Go duration;
/// anything unparsable or negative is ignored, as daprd silently does.
fn ttl(md: &BTreeMap<String, String>) -> Option<Duration> {
    let v = md.get("ttlInSeconds").or_else(|| md.get("ttl"))?;
    if let Ok(secs) = v.parse::<i64>() {
        return u64::try_from(secs).ok().map(Duration::from_secs);
    }
    go_duration(v)
}

/// A subset of Go's `time.ParseDuration`: sums of `<number><unit>` with h, m, s, ms, us, ns.
pub(crate) fn go_duration(v: &str) -> Option<Duration> {
    let mut rest = v.strip_prefix('+').unwrap_or(v);
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[u_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// components-contrib `FromRawPayload`, plus the trace fields daprd copies from metadata.
/// The id is a fresh uuid4 on every (re)delivery, as in daprd.
pub(crate) fn from_raw_payload(
    body: &[u8],
    topic: &str,
    pubsub: &str,
    metadata: &BTreeMap<String, String>,
) -> GoValue {
    let mut ce = vec![
        ("id".to_string(), s(uuid::Uuid::new_v4().to_string())),
        ("specversion".into(), s("1.0")),
        ("datacontenttype".into(), s("application/octet-stream")),
        ("source".into(), s("Dapr")),
        ("type".into(), s("com.dapr.event.sent")),
        ("topic".into(), s(topic)),
        ("pubsubname".into(), s(pubsub)),
        (
            "data_base64".into(),
            s(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    ];
    if let Some(t) = metadata.get("traceid") {
        map_set(&mut ce, "traceid", s(t));
    }
    if let Some(t) = metadata.get("traceparent") {
        // traceparent supersedes traceid
        map_set(&mut ce, "traceparent", s(t));
        map_set(&mut ce, "traceid", s(t));
    }
    if let Some(t) = metadata.get("tracestate") {
        map_set(&mut ce, "tracestate", s(t));
    }
    GoValue::Map(ce)
}

/// components-contrib `HasExpired`: only a string `expiration` in RFC 3339 counts.
pub(crate) fn has_expired(ce: &GoValue) -> bool {
    match gojson::map_get(ce, "expiration") {
        Some(GoValue::String(e)) if !e.is_empty() => chrono::DateTime::parse_from_rfc3339(e)
            .map(|t| t < chrono::Utc::now())
            .unwrap_or(false),
        _ => false,
    }
}

/// The event id for logs: `id` when it is a string.
pub(crate) fn event_id(ce: &GoValue) -> Option<String> {
    match gojson::map_get(ce, "id") {
        Some(GoValue::String(id)) => Some(id.clone()),
        _ => None,
    }
}
