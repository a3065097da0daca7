//! Entry points for the fuzz targets (fuzz/) and their corpus replay on stable
//! (tests/e2e/fuzz_corpus.rs): thin wrappers over crate-private parsers, each checking the
//! contract its parser promises; and the app route's decoding alone, for its benchmark
//! (tests/benches/envelope.rs). Not an API: nothing else may depend on it.
//!
//! Every function here takes any bytes, never panics on its own account, and panics (so the
//! fuzzer reports a crash) only when the wrapped code breaks its documented contract.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::dapr::envelope::{self, Delivery, EnvelopeError};
use crate::embedded::envelope::{Envelope, Metadata, choose_partition, raw_payload_wrapper};

/// The app route's decoding of one delivery body, as `dapr/app.rs` does it: a structured
/// CloudEvent or a bulk batch. Contract: no panic; every accepted event's `data` is JSON text;
/// a single event decodes to the same event from its text as from its parsed value (`data`
/// compared as JSON: the text path hands on the publisher's bytes). Returns how many events
/// were accepted.
pub fn app_delivery(body: &[u8]) -> usize {
    let decoded = decode(body);
    if let [single] = decoded.as_slice()
        && let Ok(value) = serde_json::from_slice::<Value>(body)
        && value.get("entries").is_none()
    {
        let by_value = envelope::from_value(value);
        let as_json = |r: &Result<envelope::Incoming, EnvelopeError>| {
            r.clone().map(|mut i| {
                let data = serde_json::from_str::<Value>(&i.data).expect("data is JSON");
                i.data = data.to_string();
                i
            })
        };
        assert_eq!(
            as_json(single),
            as_json(&by_value),
            "text and value decode differently"
        );
    }
    let mut accepted = 0;
    for incoming in decoded.into_iter().flatten() {
        assert!(
            serde_json::from_str::<Value>(&incoming.data).is_ok(),
            "accepted data is not JSON: {:?}",
            incoming.data
        );
        accepted += 1;
    }
    accepted
}

/// The app route's decoding of one delivery body and nothing else (no checks): the bytes of
/// `data` of every event it accepts, summed.
pub fn decode_delivery(body: &[u8]) -> usize {
    decode(body)
        .into_iter()
        .flatten()
        .map(|i| i.data.len())
        .sum()
}

/// Every event of a delivery body as the app route decodes it (none when the body is not JSON).
fn decode(body: &[u8]) -> Vec<Result<envelope::Incoming, EnvelopeError>> {
    match envelope::parse_delivery(body) {
        Err(_) => Vec::new(),
        Ok(Delivery::Batch(entries)) => entries.iter().map(|e| envelope::bulk_entry(e).1).collect(),
        Ok(Delivery::Event(incoming)) => vec![Ok(incoming)],
    }
}

/// The embedded sidecar's publish: the broker bytes for `body` sent with `content_type` and
/// `metadata`, and the partition it lands in. Contract: no panic; a rawPayload publish is stored
/// verbatim; any other accepted publish is a CloudEvent the app side reads as one (never "not
/// JSON", "not an object" or "not a CloudEvent"), with the publisher's id when it sent one; the
/// partition is one of the topic's.
pub fn embedded_publish(content_type: &str, metadata: Vec<(String, String)>, body: &[u8]) {
    let metadata = Metadata::from_pairs(metadata);
    let envelope = Envelope {
        app_id: "app",
        pubsub: "pubsub",
        topic: "topic",
        content_type,
        metadata: &metadata,
    };
    let now: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    if let Ok(partition) = choose_partition(&metadata, 4) {
        assert!(partition < 4, "partition {partition} of 4");
    }
    let Ok(stored) = envelope.build(body, now) else {
        return;
    };
    if matches!(metadata.raw_payload(), Ok(true)) {
        assert_eq!(stored, body, "rawPayload must store the body verbatim");
        // What a rawPayload subscriber is handed is always a CloudEvent; what it carries may
        // be the publisher's own broken CloudEvent, refused for its own reasons.
        let wrapper = raw_payload_wrapper(&stored, "topic", "pubsub", metadata.pairs());
        let refused = envelope::parse(&wrapper);
        assert!(
            !matches!(
                refused,
                Err(EnvelopeError::NotJson(_)
                    | EnvelopeError::NotAnObject
                    | EnvelopeError::NotACloudEvent)
            ),
            "the rawPayload wrapper is not a CloudEvent: {refused:?}"
        );
        return;
    }
    match envelope::parse(&stored) {
        Ok(_)
        | Err(EnvelopeError::NoData)
        | Err(EnvelopeError::DataNotJson)
        | Err(EnvelopeError::BadBase64)
        | Err(EnvelopeError::Base64NotJson) => {}
        // Bodies nested this deep are refused by the publish API before they get here
        // (`http_limits::json_too_deep`); this function fuzzes the envelope on its own.
        Err(EnvelopeError::NotJson(why))
            if why.contains("recursion limit") && crate::http_limits::json_too_deep(body) => {}
        Err(other) => panic!(
            "the sidecar stored what the app refuses ({other}): {}",
            String::from_utf8_lossy(&stored)
        ),
    }
}
