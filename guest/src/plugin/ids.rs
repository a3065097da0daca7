//! Deterministic identifiers for everything the plugin creates (no randomness, no clock).
//!
//! Every id is a UUIDv5 in [`NAMESPACE`] whose name is the JSON text of an array of strings,
//! e.g. `["task","<series_id>","3"]`: JSON quoting makes the encoding unambiguous whatever the
//! ids contain. Names:
//! - series id (when the event has none, i.e. it is the series' first task):
//!   `["series", user_id, task_id]`, task_id as text (1.x integers in decimal, so a 1.0 and a
//!   2.0 event of the same task agree);
//! - the next task: `["task", scope, next_occurrence_index]`;
//! - an emitted event: `["event", event_type, scope, next_occurrence_index]`;
//! - a `reminder.due`: `["reminder.due", event_version, user_id, task_id, due_date,
//!   remind_at, title?]` (reminders.rs: the same reminder, the same id);
//! - the scope is the series id when the plugin derived it (it names the user already), and
//!   `["client-series", user_id, series_id]` when the client chose the series id (2.0's
//!   `series-gym`): two users who pick the same series id never share a task or event id.
//!
//! So a redelivered or repeated `task.completed` of one occurrence always names the same next
//! task and the same events, and downstream consumers deduplicate on them; and no id one user's
//! events produce can equal one another user's produce.

use uuid::Uuid;

/// `7f73a3a4-6e4c-5b80-9387-9ee590d7b3f0` = `Uuid::new_v5(&Uuid::NAMESPACE_URL,
/// b"urn:task-events:task-plugin")`, fixed forever (a test
/// re-derives it): changing it would change every id the plugin has ever produced.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x7f73a3a4_6e4c_5b80_9387_9ee590d7b3f0);

/// Largest integer id for 1.x events: 2^53 - 1, the largest integer a JSON number survives as
/// in JavaScript (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

pub(super) fn derive(parts: &[&str]) -> Uuid {
    // Serialising a list of strings cannot fail; the fallback only keeps this total.
    let name = serde_json::to_string(parts).unwrap_or_else(|_| parts.join("\u{0}"));
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

pub fn series_id(user_id: &str, task_id: &str) -> String {
    derive(&["series", user_id, task_id]).to_string()
}

/// What task and event ids of a series are derived from (see the module doc).
pub fn scope(user_id: &str, client_series_id: Option<&str>, series_id: &str) -> String {
    match client_series_id {
        Some(client) => derive(&["client-series", user_id, client]).to_string(),
        None => series_id.to_string(),
    }
}

pub fn task_uuid(series_id: &str, index: u32) -> Uuid {
    derive(&["task", series_id, &index.to_string()])
}

pub fn event_id(event_type: &str, series_id: &str, index: u32) -> String {
    derive(&["event", event_type, series_id, &index.to_string()]).to_string()
}

/// A positive integer id in 1..=2^53-1 from a UUID (for 1.x events, whose ids are integers):
/// the UUID's first 64 bits reduced into that range.
pub fn integer_id(id: Uuid) -> u64 {
    let (high, _) = id.as_u64_pair();
    high % MAX_SAFE_INTEGER + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespace_is_the_documented_derivation() {
        assert_eq!(
            NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:task-events:task-plugin")
        );
    }

    #[test]
    fn client_series_ids_are_scoped_to_their_user() {
        let derived = series_id("u1", "7");
        assert_eq!(
            scope("u1", None, &derived),
            derived,
            "derived series keep their ids"
        );
        let a = scope("u1", Some("series-gym"), "series-gym");
        let b = scope("u2", Some("series-gym"), "series-gym");
        assert_ne!(a, b);
        assert_ne!(task_uuid(&a, 2), task_uuid(&b, 2));
        assert_ne!(
            event_id("task.created", &a, 2),
            event_id("task.created", &b, 2)
        );
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let s = series_id("user-456", "123");
        assert_eq!(s, series_id("user-456", "123"));
        assert_ne!(s, series_id("user-456", "124"));
        assert_ne!(task_uuid(&s, 2), task_uuid(&s, 3));
        assert_ne!(
            event_id("task.created", &s, 2),
            event_id("reminder.scheduled", &s, 2)
        );
        // The array encoding keeps ("a/b", "c") and ("a", "b/c") apart.
        assert_ne!(series_id("a\",\"b", "c"), series_id("a", "b\",\"c"));
    }

    proptest! {
        #[test]
        fn integer_ids_are_positive_and_js_safe(hi in any::<u64>(), lo in any::<u64>()) {
            let n = integer_id(Uuid::from_u64_pair(hi, lo));
            prop_assert!((1..=MAX_SAFE_INTEGER).contains(&n));
        }
    }
}
