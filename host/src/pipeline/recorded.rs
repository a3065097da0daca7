//! What the host publishes, as it records it: an emit's exact CloudEvent bytes, its publish
//! metadata, and the one rule that turns outside values (event ids, user ids, timer names) into
//! state keys and job names the store and the scheduler accept.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::plugin::bindings::Emit;
use crate::sidecar::PublishRequest;
use crate::trace_context::TraceContext;

/// A dedupe key longer than this, or with other characters, is hashed.
const MAX_PLAIN_KEY: usize = 200;

/// The state key of a dedupe key; `None` for an empty one (nothing to record).
pub(super) fn state_key(dedupe_key: &str) -> Option<String> {
    (!dedupe_key.is_empty()).then(|| format!("processed-{}", key_part(dedupe_key)))
}

/// `raw` as part of a state key or job name: itself when made of plain characters and short,
/// else `sha256-<hex>`, so no outside value can make a key the store or the scheduler refuses.
pub(super) fn key_part(raw: &str) -> String {
    let plain = !raw.is_empty()
        && raw.len() <= MAX_PLAIN_KEY
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
    if plain {
        raw.to_string()
    } else {
        format!("sha256-{}", hex::encode(Sha256::digest(raw.as_bytes())))
    }
}

/// One emit as it was (or will be) published.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RecordedEmit {
    pub topic: String,
    pub key: String,
    pub id: String,
    /// The exact CloudEvent JSON sent to the sidecar.
    pub body: String,
}

/// The publish request for a recorded emit on `pubsub`: its exact bytes, partition key and trace.
pub(super) fn publish_request(pubsub: &str, emit: &RecordedEmit) -> PublishRequest {
    PublishRequest {
        pubsub: pubsub.to_string(),
        topic: emit.topic.clone(),
        content_type: "application/cloudevents+json".into(),
        body: Bytes::from(emit.body.clone()),
        metadata: publish_metadata(emit),
    }
}

/// The partition key, and the trace context of the recorded bytes as daprd's publish metadata.
fn publish_metadata(emit: &RecordedEmit) -> Vec<(String, String)> {
    let mut metadata = vec![("partitionKey".into(), emit.key.clone())];
    if let Some(trace) = TraceContext::of_body(&emit.body) {
        metadata.extend(trace.metadata());
    }
    metadata
}

/// The CloudEvent the host publishes for one emit: the plugin's deterministic id and type,
/// partitioned by the emit's key, in the trace of the delivery that caused it. The emit's data
/// is embedded as the plugin wrote it when it is JSON (else as a JSON string), and the event is
/// written straight to text, never built as a `Value` tree: this runs for every emit.
pub(super) fn recorded(emit: &Emit, app_id: &str, trace: Option<&TraceContext>) -> RecordedEmit {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Data<'a> {
        Json(&'a RawValue),
        Text(&'a str),
    }
    #[derive(Serialize)]
    struct CloudEvent<'a> {
        specversion: &'static str,
        id: &'a str,
        source: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        datacontenttype: &'static str,
        data: Data<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        traceparent: Option<&'a str>,
        // daprd's legacy name for it; without it a daprd-compatible sidecar blanks traceparent.
        #[serde(skip_serializing_if = "Option::is_none")]
        traceid: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tracestate: Option<&'a str>,
    }
    let data = match serde_json::from_str::<&RawValue>(&emit.data) {
        Ok(raw) => Data::Json(raw),
        Err(_) => Data::Text(&emit.data),
    };
    let traceparent = trace.map(|t| t.traceparent.as_str());
    let event = CloudEvent {
        specversion: "1.0",
        id: &emit.id,
        source: app_id,
        kind: &emit.kind,
        datacontenttype: "application/json",
        data,
        traceparent,
        traceid: traceparent,
        tracestate: trace.and_then(|t| t.tracestate.as_deref()),
    };
    RecordedEmit {
        topic: emit.topic.clone(),
        key: emit.key.clone(),
        id: emit.id.clone(),
        body: serde_json::to_string(&event).expect("a CloudEvent serializes"),
    }
}

#[cfg(test)]
mod tests {
    use super::{recorded, state_key};
    use crate::plugin::bindings::Emit;
    use crate::trace_context::TraceContext;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn an_emit_becomes_its_cloudevent_with_the_data_as_written_and_the_trace() {
        let emit = |data: &str| Emit {
            topic: "task-events".into(),
            key: "user-1".into(),
            id: "evt-next".into(),
            kind: "task.created".into(),
            data: data.into(),
        };
        let trace = TraceContext::parse(
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some("vendor=1"),
        );
        let json_data = r#"{"event_id":"evt-next","title":"Water \"the\" plants"}"#;
        let with_trace = recorded(&emit(json_data), "app", trace.as_ref());
        let expected = format!(
            r#"{{"specversion":"1.0","id":"evt-next","source":"app","type":"task.created","datacontenttype":"application/json","data":{json_data},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","traceid":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"vendor=1"}}"#
        );
        assert_eq!(with_trace.body, expected);
        assert_eq!(
            TraceContext::of_body(&with_trace.body),
            trace,
            "the trace reads back"
        );
        // Data that is not JSON travels as a JSON string; no trace, no trace attributes.
        let text = recorded(&emit("not json"), "app", None);
        let event: Value = serde_json::from_str(&text.body).unwrap();
        assert_eq!(event["data"], json!("not json"));
        assert!(event.get("traceparent").is_none() && event.get("traceid").is_none());
    }

    #[test]
    fn plain_ids_keep_their_readable_key() {
        assert_eq!(state_key("evt-1").as_deref(), Some("processed-evt-1"));
        assert_eq!(state_key(""), None);
        let hashed = state_key("poison||1").unwrap();
        assert!(hashed.starts_with("processed-sha256-") && !hashed.contains("||"));
        assert_ne!(state_key("a||b"), state_key("a||c"));
    }

    proptest! {
        #[test]
        fn no_event_id_makes_an_invalid_key(id in ".{1,300}") {
            let key = state_key(&id).unwrap();
            prop_assert!(!key.contains("||"));
            prop_assert!(key.len() <= 217);
            prop_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b)));
        }
    }
}
