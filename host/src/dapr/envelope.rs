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
use serde_json::{Map, Value};

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

/// Parses a structured-mode CloudEvent body.
pub fn parse(body: &[u8]) -> Result<Incoming, EnvelopeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
    match value {
        Value::Object(event) => from_object(event, true),
        _ => Err(EnvelopeError::NotAnObject),
    }
}

/// Parses an already decoded CloudEvent (bulk deliveries carry parsed events).
pub fn from_value(value: Value) -> Result<Incoming, EnvelopeError> {
    match value {
        Value::Object(event) => from_object(event, true),
        _ => Err(EnvelopeError::NotAnObject),
    }
}

fn from_object(mut event: Map<String, Value>, may_unwrap: bool) -> Result<Incoming, EnvelopeError> {
    if !event.contains_key("specversion") {
        return Err(EnvelopeError::NotACloudEvent);
    }
    let text = |event: &Map<String, Value>, key: &str| {
        event
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let id = text(&event, "id");
    let kind = text(&event, "type");
    let source = text(&event, "source");
    let trace = TraceContext::from_event(&event);

    let data = match (event.remove("data"), event.remove("data_base64")) {
        (Some(Value::String(s)), _) => {
            let parsed: Value = serde_json::from_str(&s).map_err(|_| EnvelopeError::DataNotJson)?;
            parsed.to_string()
        }
        (Some(Value::Null), None) | (None, None) => return Err(EnvelopeError::NoData),
        (Some(Value::Null), Some(b64)) | (None, Some(b64)) => {
            let b64 = b64.as_str().ok_or(EnvelopeError::BadBase64)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| EnvelopeError::BadBase64)?;
            let inner: Value =
                serde_json::from_slice(&bytes).map_err(|_| EnvelopeError::Base64NotJson)?;
            // The rawPayload wrapper (§2): the broker bytes are the publisher's own CloudEvent,
            // unless the publisher used rawPayload too, in which case they are the task event.
            match inner {
                Value::Object(inner) if may_unwrap && inner.contains_key("specversion") => {
                    // The publisher's own context, else the wrapper's.
                    return from_object(inner, false).map(|mut incoming| {
                        incoming.trace = incoming.trace.or(trace);
                        incoming
                    });
                }
                other => other.to_string(),
            }
        }
        (Some(other), _) => other.to_string(),
    };
    Ok(Incoming {
        id,
        kind,
        source,
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
