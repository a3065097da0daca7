//! What a publish puts on the broker: daprd's envelope rules (docs/dapr-contract.md §2.1), the
//! `rawPayload` delivery wrapper (§2), and which partition a record lands in.
//!
//! Pure functions of (request, clock, uuid): no I/O. Fails only with daprd's publish errors
//! (`ERR_PUBSUB_CLOUD_EVENTS_SER`, `ERR_PUBSUB_REQUEST_METADATA`).
//!
//! Deliberate differences from daprd, each harmless to a consumer:
//! - daprd re-marshals the app's JSON (mode (b) through a Go map of `float64`s, so big numbers
//!   lose digits); here every value keeps its exact bytes.
//! - Strings are not HTML-escaped (`<` stays `<`, where Go writes `\u003c`): the same JSON.
//! - `application/x-protobuf` bodies are never parsed as protobuf CloudEvents: they are data
//!   strings like any other unknown type.
//! - Tracing is off, so `traceid`/`traceparent`/`tracestate` are `""` unless given.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Local, SecondsFormat, Utc};

use serde_json::value::{RawValue, to_raw_value};

use super::error::ApiError;

/// A CloudEvent as this sidecar writes it: top-level keys sorted, as Go's `json.Marshal` of a
/// map writes them, and every value kept as the bytes it arrived as (`RawValue`), so the app's
/// data survives exactly. Nothing downstream compares envelopes byte for byte with daprd's, so
/// serde_json's writer is enough: strings are not HTML-escaped as Go's are, and nested objects
/// keep the publisher's key order and spacing.
type Fields = BTreeMap<String, Box<RawValue>>;

fn raw(s: &str) -> Box<RawValue> {
    to_raw_value(s).expect("a string always serializes")
}

fn to_bytes(fields: &Fields) -> Vec<u8> {
    serde_json::to_vec(fields).expect("raw JSON values always serialize")
}

pub(crate) const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";
const DEFAULT_TYPE: &str = "com.dapr.event.sent";

/// Request metadata (`metadata.<key>` query parameters), first value of a key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata(Vec<(String, String)>);

impl Metadata {
    /// Keeps the first occurrence of each key, in request order.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Metadata {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in pairs {
            if !out.iter().any(|(seen, _)| *seen == k) {
                out.push((k, v));
            }
        }
        Metadata(out)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// `metadata.rawPayload`, parsed like Go's `strconv.ParseBool`; empty means false.
    pub fn raw_payload(&self) -> Result<bool, ApiError> {
        match self.get("rawPayload") {
            None | Some("") => Ok(false),
            Some(v) => parse_go_bool(v).ok_or_else(|| {
                ApiError::rejected(
                    StatusCode::BAD_REQUEST,
                    "ERR_PUBSUB_REQUEST_METADATA",
                    format!("rawPayload value must be a valid boolean: actual is '{v}'"),
                )
            }),
        }
    }

    /// The record key: `partitionKey`, or Kafka's `__key` alias.
    pub fn partition_key(&self) -> Option<&str> {
        self.get("partitionKey").or_else(|| self.get("__key"))
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The media type of a Content-Type header, lowercased, parameters dropped.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Where and what a publish writes.
pub(crate) struct Envelope<'a> {
    pub app_id: &'a str,
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub content_type: &'a str,
    pub metadata: &'a Metadata,
}

impl Envelope<'_> {
    /// The bytes daprd would hand to the broker for this publish body.
    pub fn build(&self, body: &[u8], now: DateTime<Utc>) -> Result<Vec<u8>, ApiError> {
        if self.metadata.raw_payload()? {
            return Ok(body.to_vec()); // (c) verbatim
        }
        let mut ce = if media_type(self.content_type) == CLOUDEVENTS_JSON {
            self.complete_cloud_event(body, now)?
        } else {
            self.new_envelope(body, now)
        };
        if let Some(exp) = self.expiration(now) {
            ce.insert("expiration".into(), raw(&exp));
        }
        Ok(to_bytes(&ce))
    }

    /// (a) A new envelope around an arbitrary body.
    fn new_envelope(&self, body: &[u8], now: DateTime<Utc>) -> Fields {
        let md = self.metadata;
        let ce_or = |k: &str, default: &str| raw(md.get(k).unwrap_or(default));
        let trace = md.get("cloudevent.traceparent").unwrap_or("");
        let content_type = if self.content_type.is_empty() {
            "text/plain"
        } else {
            self.content_type
        };
        let id = md
            .get("cloudevent.id")
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut fields = Fields::new();
        let mut put = |k: &str, v: Box<RawValue>| {
            fields.insert(k.to_string(), v);
        };
        put("id", raw(&id));
        put("specversion", raw("1.0"));
        put("datacontenttype", raw(content_type));
        put("source", ce_or("cloudevent.source", self.app_id));
        put("type", ce_or("cloudevent.type", DEFAULT_TYPE));
        put("topic", raw(self.topic));
        put("pubsubname", raw(self.pubsub));
        put("traceid", raw(trace));
        put("traceparent", raw(trace));
        put("tracestate", ce_or("cloudevent.tracestate", ""));
        put("time", raw(&local_time(now)));
        if let Some(subject) = md.get("cloudevent.subject") {
            put("subject", raw(subject));
        }
        let text = || raw(&String::from_utf8_lossy(body));
        match media_type(self.content_type).as_str() {
            "application/json" => put(
                "data",
                // Kept as its bytes only if it also parses as a value (numbers in range), as
                // Go's json.Unmarshal in daprd; otherwise a string, as daprd stores it.
                serde_json::from_slice::<Box<RawValue>>(body)
                    .ok()
                    .filter(|_| serde_json::from_slice::<serde_json::Value>(body).is_ok())
                    .unwrap_or_else(text),
            ),
            "application/octet-stream"
            | "application/cloudevents+protobuf"
            | "application/protobuf+cloudevents" => put("data_base64", raw(&BASE64.encode(body))),
            _ => put("data", text()),
        }
        fields
    }

    /// (b) The app's own CloudEvent, completed. A key given twice keeps its last value, as
    /// decoding into a Go map does.
    fn complete_cloud_event(&self, body: &[u8], now: DateTime<Utc>) -> Result<Fields, ApiError> {
        // RawValue checks syntax only; a number out of range would reach the app unreadable.
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| ce_ser_error(&e.to_string()))?;
        let mut ce: Fields = match serde_json::from_slice::<Box<RawValue>>(body) {
            Ok(v) if v.get().starts_with('{') => {
                serde_json::from_str(v.get()).map_err(|e| ce_ser_error(&e.to_string()))?
            }
            Ok(_) => return Err(ce_ser_error("the body is JSON but not an object")),
            Err(e) => return Err(ce_ser_error(&e.to_string())),
        };
        ce.insert("topic".into(), raw(self.topic));
        ce.insert("pubsubname".into(), raw(self.pubsub));
        if !ce.contains_key("time") {
            ce.insert("time".into(), raw(&local_time(now)));
        }
        if !ce.contains_key("traceid") {
            ce.insert("traceid".into(), raw(""));
            ce.insert("traceparent".into(), raw(""));
        }
        ce.entry("tracestate".into()).or_insert_with(|| raw(""));
        for (key, default) in [
            ("source", "Dapr"),
            ("type", DEFAULT_TYPE),
            ("specversion", "1.0"),
        ] {
            if ce.get(key).is_none_or(|v| v.get() == "null") {
                ce.insert(key.into(), raw(default));
            }
        }
        Ok(ce)
    }

    /// `expiration` for `metadata.ttlInSeconds` (or `ttl`): Kafka has no native TTL, so daprd
    /// stamps one. A TTL that does not parse is ignored, as in daprd.
    fn expiration(&self, now: DateTime<Utc>) -> Option<String> {
        let raw = self
            .metadata
            .get("ttlInSeconds")
            .or_else(|| self.metadata.get("ttl"))?;
        let secs = parse_ttl_seconds(raw)?;
        let at = now.checked_add_signed(chrono::TimeDelta::try_seconds(secs)?)?;
        Some(at.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

fn ce_ser_error(why: &str) -> ApiError {
    ApiError::rejected(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_PUBSUB_CLOUD_EVENTS_SER",
        format!(
            "error when unmarshalling the request body as a cloud event ({CLOUDEVENTS_JSON} \
             requires a JSON object): {why}"
        ),
    )
}

/// RFC 3339, whole seconds, in the process's local zone (`Z` in UTC containers), like daprd.
fn local_time(now: DateTime<Utc>) -> String {
    now.with_timezone(&Local)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A TTL in whole seconds, or a Go duration (`90s`, `1h30m`, `1.5h`); sub-second precision is
/// dropped (expirations are written in whole seconds anyway).
fn parse_ttl_seconds(raw: &str) -> Option<i64> {
    if let Ok(n) = raw.parse::<i64>() {
        return Some(n);
    }
    let (negative, rest) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let secs = i64::try_from(super::go_decode::go_duration(rest)?.as_secs()).ok()?;
    Some(if negative { -secs } else { secs })
}

/// The partition of a record: `metadata.partitionNumber` if given (Kafka's manual partitioner),
/// else the hash of the key, else partition 0.
///
/// The hash is FNV-1a 32 with sarama's reduction (`int32(h) % n`, negated if negative), the
/// default partitioner of the Kafka client daprd uses, so a key lands where it would on a Kafka
/// topic with as many partitions. It must be stable across processes: std's `DefaultHasher` is
/// randomly keyed per process, so after a restart a key would move to another partition and its
/// new records could overtake its old pending ones.
///
/// Without a key every record goes to partition 0, so keyless publishes keep a total order
/// (sarama would pick a random partition; order across keyless records is then not promised).
pub(crate) fn choose_partition(metadata: &Metadata, partitions: u32) -> Result<u32, ApiError> {
    if let Some(raw) = metadata.get("partitionNumber") {
        return match raw.parse::<u32>() {
            Ok(p) if p < partitions => Ok(p),
            _ => Err(ApiError::rejected(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                format!(
                    "partitionNumber '{raw}' is not a partition of this topic (0..{partitions})"
                ),
            )),
        };
    }
    Ok(match metadata.partition_key() {
        Some(key) => partition_for_key(key, partitions),
        None => 0,
    })
}

pub(crate) fn partition_for_key(key: &str, partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // Go: int32(h) % int32(n), then -p if negative.
    let p = (h as i32).wrapping_rem(partitions.max(1) as i32);
    p.unsigned_abs()
}

/// The body daprd delivers to a `rawPayload: "true"` subscription (components-contrib
/// `FromRawPayload`): a fresh id on every (re)delivery, no `time`, trace fields only if the
/// record's metadata carries them.
pub(crate) fn raw_payload_wrapper(
    stored: &[u8],
    topic: &str,
    pubsub: &str,
    metadata: &[(String, String)],
) -> Vec<u8> {
    let mut fields = Fields::new();
    for (k, v) in [
        ("data_base64", BASE64.encode(stored)),
        ("datacontenttype", "application/octet-stream".into()),
        ("id", uuid::Uuid::new_v4().to_string()),
        ("pubsubname", pubsub.into()),
        ("source", "Dapr".into()),
        ("specversion", "1.0".into()),
        ("topic", topic.into()),
        ("type", DEFAULT_TYPE.into()),
    ] {
        fields.insert(k.into(), raw(&v));
    }
    for key in ["traceid", "traceparent", "tracestate"] {
        if let Some((_, v)) = metadata.iter().find(|(k, _)| k == key) {
            fields.insert(key.into(), raw(v));
        }
    }
    to_bytes(&fields)
}

#[cfg(test)]
#[path = "tests_envelope.rs"]
mod tests;
