//! W3C trace context (`traceparent`, `tracestate`) carried from a delivery to everything it causes.
//!
//! Contract: a delivery's context comes from the `traceparent`/`tracestate` HTTP headers (daprd
//! sends them with tracing on: its delivery span, a child of the event's) or from the CloudEvent's
//! own attributes (the distributed-tracing extension); `dapr::app` picks which. Every event the
//! delivery publishes and its dead-letter record carry it, three ways:
//! - as CloudEvent attributes `traceparent`/`tracestate` (and daprd's legacy `traceid`, without
//!   which a daprd-compatible sidecar blanks `traceparent`) in the published JSON;
//! - as the publish metadata `cloudevent.traceparent`/`cloudevent.tracestate`;
//! - as `traceparent`/`tracestate` headers on the publish call (`dapr::client`), because daprd
//!   overwrites an app CloudEvent's trace fields with the context of the publish request.
//!
//! A value that is not a valid W3C `traceparent` (version 00 shape, non-zero ids) is ignored, so
//! nothing arbitrary from a publisher is copied into other events; a `tracestate` longer than the
//! W3C limit or with characters outside printable ASCII is dropped.

use serde_json::{Value, json};

/// W3C's limit on a `tracestate` header value (32 list members).
const MAX_TRACESTATE: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// A context from raw values; `None` unless `traceparent` is valid.
    pub fn parse(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<TraceContext> {
        let traceparent = traceparent?.trim();
        if !valid_traceparent(traceparent) {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .map(str::to_string);
        Some(TraceContext {
            traceparent: traceparent.to_ascii_lowercase(),
            tracestate,
        })
    }

    /// The context of HTTP request headers.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        TraceContext::parse(get("traceparent"), get("tracestate"))
    }

    /// The context of a CloudEvent's JSON text (e.g. a recorded emit's exact bytes).
    pub fn of_body(body: &str) -> Option<TraceContext> {
        // Only the two attributes: the rest of the event is skipped, not built.
        #[derive(serde::Deserialize)]
        struct Attributes<'a> {
            #[serde(borrow, default)]
            traceparent: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            tracestate: Option<std::borrow::Cow<'a, str>>,
        }
        let attributes = serde_json::from_str::<Attributes>(body).ok()?;
        TraceContext::parse(
            attributes.traceparent.as_deref(),
            attributes.tracestate.as_deref(),
        )
    }

    /// Sets the trace attributes of a CloudEvent JSON object.
    pub fn stamp(&self, event: &mut Value) {
        if let Some(event) = event.as_object_mut() {
            event.insert("traceparent".into(), json!(self.traceparent));
            event.insert("traceid".into(), json!(self.traceparent));
            if let Some(state) = &self.tracestate {
                event.insert("tracestate".into(), json!(state));
            }
        }
    }

    /// daprd's publish metadata for the trace attributes.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut metadata = vec![("cloudevent.traceparent".into(), self.traceparent.clone())];
        if let Some(state) = &self.tracestate {
            metadata.push(("cloudevent.tracestate".into(), state.clone()));
        }
        metadata
    }
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, ids not all zero. Later versions may
/// append fields after the flags (W3C §3.2.4); version `ff` is invalid.
fn valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    match parts.as_slice() {
        [version, trace, parent, flags, rest @ ..] => {
            hex(version, 2)
                && !version.eq_ignore_ascii_case("ff")
                && (rest.is_empty() || *version != "00")
                && hex(trace, 32)
                && nonzero(trace)
                && hex(parent, 16)
                && nonzero(parent)
                && hex(flags, 2)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn only_valid_traceparents_are_kept() {
        let ctx = TraceContext::parse(Some(TP), Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(ctx.traceparent, TP);
        assert_eq!(ctx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nforged",
        ] {
            assert_eq!(TraceContext::parse(Some(bad), None), None, "{bad:?}");
        }
        let state = TraceContext::parse(Some(TP), Some("a=b\nc")).unwrap();
        assert_eq!(
            state.tracestate, None,
            "a tracestate with a newline is dropped"
        );
    }

    #[test]
    fn stamps_a_cloudevent_and_names_daprd_metadata() {
        let ctx = TraceContext::parse(Some(TP), Some("k=v")).unwrap();
        let mut event = json!({"id": "e1"});
        ctx.stamp(&mut event);
        assert_eq!(event["traceparent"], TP);
        assert_eq!(event["traceid"], TP);
        assert_eq!(event["tracestate"], "k=v");
        assert_eq!(
            ctx.metadata(),
            vec![
                ("cloudevent.traceparent".to_string(), TP.to_string()),
                ("cloudevent.tracestate".to_string(), "k=v".to_string())
            ]
        );
    }
}
