//! Dead-lettering one delivery: a record on the subscription's dead-letter topic that says
//! why, with every problem, the plugin that decided, and the original event.
//!
//! The record is a CloudEvent (`task-events.dead-letter`) with a deterministic id (the
//! delivery's id + `:dead-letter`), so a repeated dead-lettering is a duplicate downstream
//! consumers can drop. When the sidecar refuses the full record for good (too large for the
//! broker), a smaller one without the original data is sent; if that is refused too, the
//! delivery answers DROP and daprd forwards the raw message to the same topic.

use bytes::Bytes;
use serde_json::{Value, json};

use super::Pipeline;
use crate::dapr::Status;
use crate::dapr::envelope::Incoming;
use crate::dead_letter::DeadLetterReason;
use crate::plugin::Generation;
use crate::plugin::bindings::{Problem, Subscription};
use crate::sidecar::{PublishRequest, SidecarError};

/// A problem the host found (not the plugin), in the plugin's problem shape.
pub(super) fn host_problem(code: &str, message: String) -> Problem {
    Problem {
        code: code.into(),
        message,
        pointer: None,
    }
}

impl Pipeline {
    pub(super) async fn dead_letter(
        &self,
        sub: &Subscription,
        incoming: &Incoming,
        generation: &Generation,
        reason: DeadLetterReason,
        problems: Vec<Problem>,
        attempt: u32,
    ) -> Status {
        self.metrics.dead_letter(reason);
        let Some(topic) = &sub.dead_letter_topic else {
            tracing::warn!(event = %incoming.id, reason = reason.as_str(), "no dead-letter topic on {}; answering DROP", sub.topic);
            return Status::Drop;
        };
        tracing::warn!(event = %incoming.id, reason = reason.as_str(), topic = %topic,
            problems = problems.len(), first = ?problems.first().map(|p| &p.message), "dead-lettering");
        let original: Value = serde_json::from_str(&incoming.data)
            .unwrap_or_else(|_| Value::String(incoming.data.clone()));
        let mut record = json!({
            "specversion": "1.0",
            "id": format!("{}:dead-letter", incoming.id),
            "source": self.app_id,
            "type": "task-events.dead-letter",
            "datacontenttype": "application/json",
            "data": {
                "reason": reason.as_str(),
                "problems": problems.iter().map(|p| json!({"code": p.code, "message": p.message, "pointer": p.pointer})).collect::<Vec<_>>(),
                "plugin": {"name": generation.plugin.name, "version": generation.plugin.version, "sha256": generation.plugin.sha256},
                "attempt": attempt,
                "original": {"id": incoming.id, "type": incoming.kind, "source": incoming.source, "topic": sub.topic, "pubsub": sub.pubsub, "data": original},
            },
        });
        // The record is in the trace of the delivery it ends.
        if let Some(trace) = &incoming.trace {
            trace.stamp(&mut record);
        }
        let metadata = incoming
            .trace
            .as_ref()
            .map(|t| t.metadata())
            .unwrap_or_default();
        let request = |record: &Value| PublishRequest {
            pubsub: sub.pubsub.clone(),
            topic: topic.clone(),
            content_type: "application/cloudevents+json".into(),
            body: Bytes::from(record.to_string()),
            metadata: metadata.clone(),
        };
        let full = request(&record);
        let what = "publishing a dead-letter record";
        match self
            .with_retries(what, || self.sidecar.publish(full.clone()))
            .await
        {
            Ok(()) => {
                self.log_dead_letter(topic, &record).await;
                Status::Success
            }
            Err(SidecarError::Refused(why)) => {
                tracing::warn!(event = %incoming.id, "the dead-letter record was refused ({why}); sending it without the original data");
                record["data"]["original"]["data"] = Value::Null;
                record["data"]["original_omitted"] = json!(why);
                let small = request(&record);
                match self
                    .with_retries(what, || self.sidecar.publish(small.clone()))
                    .await
                {
                    Ok(()) => {
                        self.log_dead_letter(topic, &record).await;
                        Status::Success
                    }
                    Err(SidecarError::Refused(why)) => {
                        tracing::error!(event = %incoming.id, "the dead-letter record was refused again ({why}); answering DROP");
                        Status::Drop
                    }
                    Err(e) => self.sidecar_failed(what, e),
                }
            }
            Err(e) => self.sidecar_failed(what, e),
        }
    }

    /// A sidecar failure that is not the event's fault: RETRY, so daprd redelivers.
    pub(super) fn sidecar_failed(&self, what: &str, error: SidecarError) -> Status {
        self.metrics.sidecar_error();
        match &error {
            SidecarError::Misconfigured(_) => {
                tracing::error!(
                    "{what} failed: {error}; answering RETRY until the sidecar is fixed"
                )
            }
            _ => tracing::warn!("{what} failed: {error}; answering RETRY"),
        }
        Status::Retry
    }
}
