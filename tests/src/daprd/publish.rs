//! `POST|PUT /v1.0/publish/{pubsubname}/{topic}`: validate, wrap, append to the broker.
//!
//! Contract (dapr-contract.md §5 "Publish", §2.1): checks run in daprd's order, and each failure
//! has its own code:
//! 400 `ERR_PUBSUB_NOT_CONFIGURED` (no pubsub components), 404 `ERR_PUBSUB_EMPTY`,
//! 404 `ERR_PUBSUB_NOT_FOUND`, 404 `ERR_TOPIC_NAME_EMPTY`, 400 `ERR_PUBSUB_REQUEST_METADATA`
//! (`rawPayload` not a Go bool), 500 `ERR_PUBSUB_CLOUD_EVENTS_SER` (cloudevents+json body that is
//! not a JSON object), 500 `ERR_PUBSUB_PUBLISH_MESSAGE` (broker error; injected by
//! `Faults::publish_fail_next`), else 204 with an empty body.
//! All request metadata becomes Kafka record headers; `partitionKey` sets the record key.

use std::collections::BTreeMap;

use axum::http::StatusCode;

use super::api::Reply;
use super::broker::Append;
use super::envelope::{self, Publish};
use super::{Inner, parse_go_bool};

pub(crate) fn publish(
    inner: &Inner,
    pubsub: &str,
    topic: &str,
    content_type: &str,
    body: &[u8],
    metadata: BTreeMap<String, String>,
) -> Reply {
    let cfg = &inner.cfg;
    if cfg.pubsubs.is_empty() {
        let msg = "pubsub is not configured";
        return Reply::kit_error(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_NOT_CONFIGURED",
            msg,
            "DAPR_PUBSUB_NOT_CONFIGURED",
            pubsub,
        );
    }
    if pubsub.is_empty() {
        let msg = "pubsub name is empty";
        return Reply::kit_error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_EMPTY",
            msg,
            "DAPR_PUBSUB_NAME_EMPTY",
            pubsub,
        );
    }
    if !cfg.pubsubs.iter().any(|p| p == pubsub) {
        let msg = format!("pubsub {pubsub} not found");
        return Reply::kit_error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            &msg,
            "DAPR_PUBSUB_NOT_FOUND",
            pubsub,
        );
    }
    if topic.is_empty() {
        let msg = format!("topic is empty in pubsub {pubsub}");
        return Reply::kit_error(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
            &msg,
            "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
            pubsub,
        );
    }
    let raw = match metadata.get("rawPayload").filter(|v| !v.is_empty()) {
        None => false,
        Some(v) => match parse_go_bool(v) {
            Some(b) => b,
            None => {
                let msg = format!(
                    "failed deserializing metadata. Error: strconv.ParseBool: parsing {v:?}: invalid syntax"
                );
                return Reply::kit_error(
                    StatusCode::BAD_REQUEST,
                    "ERR_PUBSUB_REQUEST_METADATA",
                    &msg,
                    "DAPR_PUBSUB_METADATA_DESERIALIZATION",
                    pubsub,
                );
            }
        },
    };
    let bytes = if raw {
        body.to_vec()
    } else {
        let p = Publish {
            app_id: &cfg.app_id,
            pubsub,
            topic,
            content_type,
            body,
            metadata: &metadata,
        };
        match envelope::wrap(&p) {
            Ok(b) => b,
            Err(e) => {
                let msg = format!("cannot create cloudevent: {}", e.0);
                return Reply::kit_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ERR_PUBSUB_CLOUD_EVENTS_SER",
                    &msg,
                    "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
                    pubsub,
                );
            }
        }
    };
    if inner.faults.take_publish_failure() {
        let msg = format!(
            "error when publishing to topic {topic} in pubsub {pubsub}: kafka: injected broker failure (stand-in fault)"
        );
        return Reply::kit_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
            &msg,
            "DAPR_PUBSUB_PUBLISH_MESSAGE",
            pubsub,
        );
    }
    inner.broker.append(Append {
        pubsub,
        topic,
        metadata,
        content_type,
        body: bytes,
    });
    inner.journal.changed.notify_waiters();
    Reply::empty(StatusCode::NO_CONTENT)
}
