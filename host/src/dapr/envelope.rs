//! Incoming CloudEvents, parsed once at the edge into what the plugin needs.
//!
//! daprd delivers the exact broker bytes (docs/dapr-contract.md §2). What a publisher sends decides
//! where the task event sits: `data` as a JSON object (publisher used `application/json` or its
//! own CloudEvent), `data` as a JSON *string* (publisher sent JSON as `text/plain`, e.g. `curl -d`
//! with no content type: a common Dapr mistake, §9.5, accepted when the string holds JSON),
//! `data_base64` (binary publish), or the `rawPayload` wrapper whose `data_base64` holds the
//! broker bytes, which are themselves a CloudEvent unless the publisher also used rawPayload.
//! A body that is not a CloudEvent is refused with a reason the operator can act on; nothing
//! here panics on any input.

use base64::Engine as _;
use serde_json::Value;
use serde_json::value::RawValue;

use super::fields::{FieldsError, Found, fields, fields_of_body, text};
use crate::trace_context::TraceContext;

/// A delivery reduced to what the pipeline and the plugin use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// CloudEvent `id` (empty if the publisher left it out).
    pub id: String,
    /// CloudEvent `type`.
    pub kind: String,
    pub source: String,
    /// The task event as JSON text.
    pub data: String,
    /// The event's W3C trace context attributes, when valid (`traceparent`, `tracestate`).
    pub trace: Option<TraceContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON object, so it is not a CloudEvent")]
    NotAnObject,
    #[error(
        "the body is not a CloudEvent: it has no `specversion` (publish with Content-Type application/json or application/cloudevents+json, without rawPayload)"
    )]
    NotACloudEvent,
    #[error("the CloudEvent has neither `data` nor `data_base64`")]
    NoData,
    #[error(
        "the CloudEvent's `data` is a string that is not JSON (publish the event with Content-Type: application/json)"
    )]
    DataNotJson,
    #[error("the CloudEvent's `data_base64` is not valid base64")]
    BadBase64,
    #[error("the CloudEvent's `data_base64` does not hold JSON")]
    Base64NotJson,
}

/// What a delivery body is: one CloudEvent, or a bulk batch (§4: an object with an `entries`
/// array and no `specversion`) whose entries are decoded one by one ([`bulk_entry`]).
pub enum Delivery<'a> {
    Event(Incoming),
    Batch(Vec<&'a RawValue>),
}

/// The top-level fields read from a delivery body; everything else (the task event above all)
/// is skipped unparsed, and `data` is handed on as the publisher's JSON text (dapr/fields.rs).
const FIELDS: [&str; 9] = [
    "specversion",
    "id",
    "type",
    "source",
    "traceparent",
    "tracestate",
    "data",
    "data_base64",
    "entries",
];

/// Decodes a delivery body: one structured-mode CloudEvent or a bulk batch.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery<'_>, EnvelopeError> {
    let found = fields_of_body(body, FIELDS).map_err(refusal)?;
    if found[0].is_none()
        && let Some(entries) = found[8]
        && let Ok(entries) = serde_json::from_str::<Vec<&RawValue>>(entries.get())
    {
        return Ok(Delivery::Batch(entries));
    }
    from_fields(found, true).map(Delivery::Event)
}

/// Parses a structured-mode CloudEvent body.
pub fn parse(body: &[u8]) -> Result<Incoming, EnvelopeError> {
    from_fields(fields_of_body(body, FIELDS).map_err(refusal)?, true)
}

/// [`parse`] of a part of a body [`parse_delivery`] already checked.
fn parse_part(event: &RawValue) -> Result<Incoming, EnvelopeError> {
    from_fields(
        fields(event.get().as_bytes(), FIELDS).map_err(refusal)?,
        true,
    )
}

/// Parses an already decoded CloudEvent (shadow inputs, the fuzz harness), by the same rules
/// as its text.
pub fn from_value(value: Value) -> Result<Incoming, EnvelopeError> {
    parse(&serde_json::to_vec(&value).expect("a JSON value serializes"))
}

/// One entry of a bulk batch from [`parse_delivery`]: its `entryId` (`None` when it has no
/// string one: it then gets no status, and daprd retries it) and its event, the parsed
/// CloudEvent or, with rawPayload, a base64 string of the broker bytes.
pub fn bulk_entry(entry: &RawValue) -> (Option<String>, Result<Incoming, EnvelopeError>) {
    let Ok([id, event]) = fields(entry.get().as_bytes(), ["entryId", "event"]) else {
        return (None, Err(EnvelopeError::NotAnObject));
    };
    let event = match event {
        None => Err(EnvelopeError::NoData),
        Some(event) => match text(Some(event)) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| EnvelopeError::BadBase64)
                .and_then(|bytes| parse(&bytes)),
            None => parse_part(event),
        },
    };
    (text(id), event)
}

fn refusal(error: FieldsError) -> EnvelopeError {
    match error {
        FieldsError::NotAnObject => EnvelopeError::NotAnObject,
        other => EnvelopeError::NotJson(other.to_string()),
    }
}

fn from_fields(found: Found<'_, 9>, may_unwrap: bool) -> Result<Incoming, EnvelopeError> {
    let [
        specversion,
        id,
        kind,
        source,
        traceparent,
        tracestate,
        data,
        data_base64,
        _,
    ] = found;
    if specversion.is_none() {
        return Err(EnvelopeError::NotACloudEvent);
    }
    let trace = TraceContext::parse(text(traceparent).as_deref(), text(tracestate).as_deref());
    let data = match (data.filter(|d| d.get() != "null"), data_base64) {
        // JSON sent as text (§9.5): accepted when the string holds JSON.
        (Some(d), _) if d.get().starts_with('"') => {
            let s = text(Some(d)).unwrap_or_default();
            let parsed: Value = serde_json::from_str(&s).map_err(|_| EnvelopeError::DataNotJson)?;
            parsed.to_string()
        }
        (Some(d), _) => d.get().to_string(),
        (None, None) => return Err(EnvelopeError::NoData),
        (None, Some(b64)) => {
            let b64 = text(Some(b64)).ok_or(EnvelopeError::BadBase64)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| EnvelopeError::BadBase64)?;
            match fields_of_body(&bytes, FIELDS) {
                Err(FieldsError::NotAnObject) => {}
                Err(_) => return Err(EnvelopeError::Base64NotJson),
                // The rawPayload wrapper (§2): the broker bytes are the publisher's own
                // CloudEvent, unless the publisher used rawPayload too, in which case they are
                // the task event. The publisher's own trace context, else the wrapper's.
                Ok(inner) if may_unwrap && inner[0].is_some() => {
                    return from_fields(inner, false).map(|mut incoming| {
                        incoming.trace = incoming.trace.or(trace);
                        incoming
                    });
                }
                Ok(_) => {}
            }
            // Valid JSON (checked just above), so valid UTF-8.
            String::from_utf8(bytes).map_err(|_| EnvelopeError::Base64NotJson)?
        }
    };
    Ok(Incoming {
        id: text(id).unwrap_or_default(),
        kind: text(kind).unwrap_or_default(),
        source: text(source).unwrap_or_default(),
        data,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(v.to_string())
    }

    #[test]
    fn data_object_is_passed_as_json_text() {
        let body = json!({"specversion":"1.0","id":"e1","type":"com.dapr.event.sent","source":"app","data":{"a":1}});
        let got = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            got,
            Incoming {
                id: "e1".into(),
                kind: "com.dapr.event.sent".into(),
                source: "app".into(),
                data: r#"{"a":1}"#.into(),
                trace: None,
            }
        );
    }

    #[test]
    fn data_string_holding_json_is_accepted() {
        let body = json!({"specversion":"1.0","id":"e1","data":"{\"a\":1}"});
        assert_eq!(
            parse(body.to_string().as_bytes()).unwrap().data,
            r#"{"a":1}"#
        );
        let body = json!({"specversion":"1.0","id":"e1","data":"hello"});
        assert_eq!(
            parse(body.to_string().as_bytes()),
            Err(EnvelopeError::DataNotJson)
        );
    }

    #[test]
    fn raw_payload_wrapper_around_a_cloudevent_is_unwrapped() {
        let inner =
            json!({"specversion":"1.0","id":"inner","type":"t","source":"s","data":{"a":1}});
        let body = json!({"specversion":"1.0","id":"outer","type":"com.dapr.event.sent","source":"Dapr","data_base64": b64(&inner)});
        let got = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            (got.id.as_str(), got.data.as_str()),
            ("inner", r#"{"a":1}"#)
        );
    }

    #[test]
    fn raw_payload_wrapper_around_raw_json_is_the_event() {
        let inner = json!({"event_id":"x"});
        let body = json!({"specversion":"1.0","id":"outer","data_base64": b64(&inner)});
        let got = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            (got.id.as_str(), got.data.as_str()),
            ("outer", r#"{"event_id":"x"}"#)
        );
    }

    #[test]
    fn trace_context_attributes_are_read() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let body =
            json!({"specversion":"1.0","id":"e1","traceparent":tp,"tracestate":"k=v","data":{}});
        let trace = parse(body.to_string().as_bytes()).unwrap().trace.unwrap();
        assert_eq!(
            (trace.traceparent.as_str(), trace.tracestate.as_deref()),
            (tp, Some("k=v"))
        );
        let body = json!({"specversion":"1.0","id":"e1","traceparent":"forged","data":{}});
        assert_eq!(parse(body.to_string().as_bytes()).unwrap().trace, None);
    }

    #[test]
    fn bodies_that_are_not_cloudevents_are_refused_with_a_reason() {
        assert!(matches!(parse(b"not json"), Err(EnvelopeError::NotJson(_))));
        assert_eq!(parse(b"[1,2]"), Err(EnvelopeError::NotAnObject));
        assert_eq!(
            parse(br#"{"event_id":"x"}"#),
            Err(EnvelopeError::NotACloudEvent)
        );
        assert_eq!(
            parse(br#"{"specversion":"1.0"}"#),
            Err(EnvelopeError::NoData)
        );
        assert_eq!(
            parse(br#"{"specversion":"1.0","data_base64":"!!"}"#),
            Err(EnvelopeError::BadBase64)
        );
        assert_eq!(
            parse(br#"{"specversion":"1.0","data_base64":"aGk="}"#),
            Err(EnvelopeError::Base64NotJson)
        );
    }
}
