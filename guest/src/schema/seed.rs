//! What event_version 1.0 accepts from producers written after the seed's Python examples, and
//! how the plugin's output says how it read them (docs/migrating-from-the-seed.md).
//!
//! The seed's pydantic `TaskEvent` defaults `timestamp` to `datetime.utcnow()`, a naive
//! datetime, which pydantic and `isoformat()` write without an offset
//! (`2025-12-29T10:00:00.123456`, or without the fraction when it is zero). Its migration helper
//! reads a missing `event_version` as `"1.0"`. So, in 1.0 only:
//! - `event_version` absent (or `null`) is 1.0;
//! - `timestamp` and `payload.completed_at`, the two instants of an event, may be naive
//!   (`YYYY-MM-DDTHH:MM:SS`, optionally `.` and 1 to 9 digits) and are read as UTC, the only
//!   reading `utcnow()` allows. Both read alike because `completed_at` falls back to `timestamp`.
//!
//! Not widened: date values (`due_date`, `remind_at`, `dtstart`, ...) already give a naive
//! `YYYY-MM-DDTHH:MM:SS` a meaning, the task's wall clock (floating, or in `tzid` from 1.1), and
//! keep it; 1.1 and 2.0 never accepted naive instants and still refuse them, with a message that
//! names the fix.
//!
//! Said in the output: the parsed event's `raw` (what migrations and the handler write from) gets
//! the reading written out: `"event_version": "1.0"` is added after `event_type`, and a naive
//! instant gets a `Z` (`2025-12-29T10:00:00.123456Z`, exactly what the seed's own publisher writes
//! with `utcnow().isoformat() + "Z"`). So the next `task.created`, a `migrate` to any version and
//! the explicit-UTC twin of the input all produce the same bytes; no new field appears that a
//! consumer would have to learn.

use serde_json::{Map, Value};

use super::version::Version;

/// The version of an event that does not say.
pub const IMPLIED_VERSION: Version = Version::V1_0;

/// Writes the implied version and the UTC reading of naive instants into `map`, keeping every
/// key where it was (an added `event_version` goes right after `event_type`, the seed's order).
/// `timestamp` / `completed_at`: the text to write, given only when the event had it naive.
pub fn make_explicit(
    map: &mut Map<String, Value>,
    implied_version: bool,
    timestamp: Option<&str>,
    completed_at: Option<&str>,
) {
    if let Some(utc) = timestamp {
        // `insert` on an existing key keeps its position in a preserve_order map.
        map.insert("timestamp".into(), utc.into());
    }
    if let (Some(utc), Some(Value::Object(payload))) = (completed_at, map.get_mut("payload")) {
        payload.insert("completed_at".into(), utc.into());
    }
    if implied_version {
        let version = Value::from(IMPLIED_VERSION.as_str());
        for (k, v) in std::mem::take(map) {
            // A `null` version is replaced in place; an absent one follows `event_type`.
            if k == "event_version" {
                map.insert(k, version.clone());
                continue;
            }
            let is_type = k == "event_type";
            map.insert(k, v);
            if is_type && !map.contains_key("event_version") {
                map.insert("event_version".into(), version.clone());
            }
        }
        // Only reached without `event_type`, which a valid event has; kept so the version is
        // never silently missing.
        if !map.contains_key("event_version") {
            map.insert("event_version".into(), version);
        }
    }
}
