//! The two fields of a task event the host reads, both top level: `event_type` (which retry
//! policy applies) and `user_id` (the only partition key an emit may carry). Everything else in
//! the event is the plugin's business.

use crate::dapr::fields::{fields, text};

use super::dead_letter::host_problem;
use crate::plugin::bindings::{Emit, Problem};

/// What the host reads of one task event; both absent when the data is not a JSON object.
#[derive(Debug, Default)]
pub(super) struct Routing {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
}

impl Routing {
    /// Reads `data` (the CloudEvent's data as JSON text). Fields of other types count as absent;
    /// a field given twice counts by its last value, as the plugin's JSON parser reads it.
    pub fn read(data: &str) -> Routing {
        match fields(data.as_bytes(), ["event_type", "user_id"]) {
            Ok([event_type, user_id]) => Routing {
                event_type: text(event_type),
                user_id: text(user_id),
            },
            Err(_) => Routing::default(),
        }
    }

    /// One user's event may only publish on that user's partition: an emit keyed by anything
    /// but the input's `user_id` could reach another user's data, so it is refused.
    pub fn foreign_key(&self, emits: &[Emit]) -> Option<Problem> {
        let (index, emit) = emits
            .iter()
            .enumerate()
            .find(|(_, e)| Some(e.key.as_str()) != self.user_id.as_deref())?;
        let message = match &self.user_id {
            Some(user) => format!(
                "emit {index} ({} on {}) has partition key {:?}, but the event belongs to user {user:?}: \
                 a plugin may only publish on the input's user_id",
                emit.kind, emit.topic, emit.key
            ),
            None => format!(
                "emit {index} ({} on {}) has partition key {:?}, but the event has no string user_id \
                 to publish under",
                emit.kind, emit.topic, emit.key
            ),
        };
        Some(host_problem(
            "effect-refused:foreign-partition-key",
            message,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(key: &str) -> Emit {
        Emit {
            topic: "task-events".into(),
            key: key.into(),
            id: "i".into(),
            kind: "task.created".into(),
            data: "{}".into(),
        }
    }

    #[test]
    fn reads_the_two_fields_and_nothing_else() {
        let r = Routing::read(r#"{"event_type":"task.completed","user_id":"u1","payload":{}}"#);
        assert_eq!(r.event_type.as_deref(), Some("task.completed"));
        assert_eq!(r.user_id.as_deref(), Some("u1"));
        let r = Routing::read(r#"{"event_type":1,"user_id":null}"#);
        assert!(r.event_type.is_none() && r.user_id.is_none());
        assert!(Routing::read("not json").user_id.is_none());
    }

    #[test]
    fn emits_stay_on_the_users_partition() {
        let r = Routing::read(r#"{"user_id":"u1"}"#);
        assert!(r.foreign_key(&[emit("u1"), emit("u1")]).is_none());
        let p = r.foreign_key(&[emit("u1"), emit("u2")]).unwrap();
        assert!(
            p.message.contains("emit 1") && p.message.contains("u2"),
            "{}",
            p.message
        );
        let none = Routing::read("{}");
        assert!(none.foreign_key(&[emit("u1")]).is_some());
        assert!(none.foreign_key(&[]).is_none());
    }
}
