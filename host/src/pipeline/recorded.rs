//! What the host publishes, as it records it: an emit's exact CloudEvent bytes, its publish
//! metadata, and the one rule that turns outside values (event ids, user ids, timer names) into
//! state keys and job names the store and the scheduler accept.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::plugin::bindings::Emit;
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

/// The partition key, and the trace context of the recorded bytes as daprd's publish metadata.
pub(super) fn publish_metadata(emit: &RecordedEmit) -> Vec<(String, String)> {
    let mut metadata = vec![("partitionKey".into(), emit.key.clone())];
    if let Some(trace) = TraceContext::of_body(&emit.body) {
        metadata.extend(trace.metadata());
    }
    metadata
}

/// The CloudEvent the host publishes for one emit: the plugin's deterministic id and type,
/// partitioned by the emit's key, in the trace of the delivery that caused it.
pub(super) fn recorded(emit: &Emit, app_id: &str, trace: Option<&TraceContext>) -> RecordedEmit {
    let data: Value =
        serde_json::from_str(&emit.data).unwrap_or_else(|_| Value::String(emit.data.clone()));
    let mut event = json!({
        "specversion": "1.0",
        "id": emit.id,
        "source": app_id,
        "type": emit.kind,
        "datacontenttype": "application/json",
        "data": data,
    });
    if let Some(trace) = trace {
        trace.stamp(&mut event);
    }
    RecordedEmit {
        topic: emit.topic.clone(),
        key: emit.key.clone(),
        id: emit.id.clone(),
        body: event.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::state_key;
    use proptest::prelude::*;

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
