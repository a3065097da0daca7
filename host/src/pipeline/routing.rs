//! The two fields of a task event the host reads, both top level: `event_type` (which retry
//! policy applies) and `user_id` (the only partition key an emit may carry). Everything else in
//! the event is the plugin's business.

use serde::Deserialize;

use super::dead_letter::host_problem;
use crate::plugin::bindings::{Emit, Problem};

/// What the host reads of one task event; both absent when the data is not a JSON object.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Routing {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

impl Routing {
    /// Reads `data` (the CloudEvent's data as JSON text). Fields of other types count as absent.
    pub fn read(data: &str) -> Routing {
        #[derive(Deserialize)]
        struct Loose {
            #[serde(default)]
            event_type: serde_json::Value,
            #[serde(default)]
            user_id: serde_json::Value,
        }
        match serde_json::from_str::<Loose>(data) {
            Ok(l) => Routing {
                event_type: l.event_type.as_str().map(str::to_string),
                user_id: l.user_id.as_str().map(str::to_string),
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
