//! The events the plugin emits, built once: the seed's envelope in the newest version, then
//! migrated down to the input's version (so each version's shape is defined by the migration
//! ladder alone).

use serde_json::{Map, Value};

use crate::migrate;
use crate::model::Emit;
use crate::problem::Problem;
use crate::schema::{TaskEvent, Version, codes};

/// The event envelope, in the seed's key order, in the newest version.
pub(super) fn envelope_of(
    event: &TaskEvent,
    event_type: &str,
    event_id: &str,
    task_id: &str,
    timestamp: &str,
    payload: Map<String, Value>,
) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("event_id".into(), event_id.into());
    e.insert("event_type".into(), event_type.into());
    e.insert("event_version".into(), Version::LATEST.as_str().into());
    e.insert("task_id".into(), task_id.into());
    e.insert("user_id".into(), event.user_id.as_str().into());
    e.insert("timestamp".into(), timestamp.into());
    e.insert("payload".into(), Value::Object(payload));
    e
}

/// `data` migrated to the input's version and wrapped for the host; `what` names it in a
/// problem.
pub(super) fn emit(
    event: &TaskEvent,
    topic: &str,
    what: &str,
    data: Map<String, Value>,
) -> Result<Emit, Vec<Problem>> {
    let field = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (id, kind) = (field("event_id"), field("event_type"));
    // Cannot fail for an event built from a valid input of that version; if it ever did, the
    // problems say exactly which field, instead of a panic.
    let data = migrate::convert(data, Version::LATEST, event.version).map_err(|ps| {
        ps.into_iter()
            .map(|p| Problem {
                code: codes::INTERNAL.into(),
                message: format!("emitted {kind} for {what}: {}", p.message),
                pointer: p.pointer,
            })
            .collect::<Vec<_>>()
    })?;
    Ok(Emit {
        topic: topic.into(),
        key: event.user_id.clone(),
        id,
        kind,
        data: Value::Object(data).to_string(),
    })
}
