//! The events `replay` and `canary record` run: read from a JSON-lines file or from a running
//! host's topic, and turned into the deliveries the host would hand the plugin.
//!
//! Contract: every JSON value of the input (one a line; blank lines skipped; a JSON array counts
//! as its elements) becomes one named delivery, attempt 1, in input order:
//! - a golden case, or any object with a `delivery` (the canary file format): that delivery
//!   exactly, and the case's `name`; so an old canary file can be recorded again;
//! - a topic record as `topics tail` prints it (`{"offset", "event", ...}`): its CloudEvent;
//! - a CloudEvent (it has `specversion`): unpacked exactly as the host unpacks a delivery
//!   (`dapr::envelope`: id, type, source, and `data` / `data_base64`);
//! - any other JSON object: a task event, delivered as a plain publish of it would be: the
//!   CloudEvent id is its `event_id` (deterministic, unlike the random one Dapr assigns), type
//!   `com.dapr.event.sent` (Dapr's default), source `recorded`.
//!
//! Pubsub and topic come from `DeliveryArgs` unless the value carries a whole delivery. Anything
//! else (not JSON, not an object, a CloudEvent without data) is an error naming the line.

use std::path::Path;

use clap::Args;
use serde_json::Value;

use crate::plugin::bindings::Delivery;
use crate::plugin::canary;

/// What a plain event publish is delivered as (Dapr's CloudEvent type for a publish).
const PUBLISH_KIND: &str = "com.dapr.event.sent";
const SOURCE: &str = "recorded";
/// Records per request when reading a topic (the API's maximum).
const PAGE: usize = 1000;

/// Where events without a delivery of their own are delivered.
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// Pub/sub component the events are delivered through (as the serving host's subscription).
    #[arg(long, env = "TASK_EVENTS_PUBSUB", default_value = "kafka-pubsub")]
    pub pubsub: String,
    /// Topic the events are delivered on (`--from-topic` sets it to that topic).
    #[arg(long, default_value = "task-events")]
    pub topic: String,
}

/// One event to run, with the name reports and canary cases use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub delivery: Delivery,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{source_name} line {line}: {reason}")]
    Line {
        source_name: String,
        line: usize,
        reason: String,
    },
    #[error("reading topic {topic:?} from {url}: {reason}")]
    Topic {
        topic: String,
        url: String,
        reason: String,
    },
    #[error(
        "{0} holds no events: nothing to run (one JSON task event, CloudEvent, topic record or canary case a line)"
    )]
    Empty(String),
}

/// Reads the events of a JSON-lines file.
pub fn read_file(path: &Path, at: &DeliveryArgs) -> Result<Vec<Input>, InputError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError::File {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let inputs = parse_text(&text, &shown, at)?;
    if inputs.is_empty() {
        return Err(InputError::Empty(shown));
    }
    Ok(inputs)
}

/// Parses events in the formats above; `source_name` names the input in errors.
pub fn parse_text(
    text: &str,
    source_name: &str,
    at: &DeliveryArgs,
) -> Result<Vec<Input>, InputError> {
    let error = |line: usize, reason: String| InputError::Line {
        source_name: source_name.to_string(),
        line,
        reason,
    };
    let items =
        canary::json_items(text).map_err(|(line, e)| error(line, format!("not JSON: {e}")))?;
    let mut inputs = Vec::new();
    for (line, item) in items {
        inputs.push(from_value(item, &format!("line {line}"), at).map_err(|r| error(line, r))?);
    }
    Ok(inputs)
}

/// Reads the records of `topic` from a running host's embedded sidecar, from offset `from`,
/// at most `limit` of them.
pub async fn read_topic(
    base_url: &str,
    topic: &str,
    from: u64,
    limit: Option<usize>,
    at: &DeliveryArgs,
) -> Result<Vec<Input>, InputError> {
    let base = base_url.trim_end_matches('/');
    let error = |reason: String| InputError::Topic {
        topic: topic.to_string(),
        url: base.to_string(),
        reason,
    };
    let at = DeliveryArgs {
        pubsub: at.pubsub.clone(),
        topic: topic.to_string(),
    };
    let client = reqwest::Client::new();
    let (mut inputs, mut from) = (Vec::new(), from);
    while limit.is_none_or(|limit| inputs.len() < limit) {
        let url = format!(
            "{base}/v1.0-embedded/topics/{}?from={from}&limit={PAGE}",
            crate::embedded::encode_path(topic)
        );
        let resp = client.get(&url).send().await.map_err(|e| {
            error(format!(
                "cannot reach the host ({e}): is `task-events-host serve --sidecar embedded` \
                 running there? Point --url (or TASK_EVENTS_URL) at its app port"
            ))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(error(
                "404: the host does not serve the embedded sidecar (in Dapr mode, export the \
                 topic from the broker to a JSON-lines file and replay that)"
                    .into(),
            ));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(error(format!("{url} answered {status}: {body}")));
        }
        let page: Value = resp
            .json()
            .await
            .map_err(|e| error(format!("{url} did not answer a topic page: {e}")))?;
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        for record in records {
            let name = format!("{topic}@{}", record["offset"]);
            let input =
                from_value(record, &name, &at).map_err(|e| error(format!("{name}: {e}")))?;
            inputs.push(input);
        }
        // A page always ends past `from`; a host answering otherwise would loop forever.
        let next = page["next"].as_u64().unwrap_or(from);
        if next <= from {
            return Err(error(format!(
                "the page from {from} did not move on (next {next})"
            )));
        }
        from = next;
    }
    if let Some(limit) = limit {
        inputs.truncate(limit);
    }
    if inputs.is_empty() {
        return Err(InputError::Empty(format!("topic {topic:?} at {base}")));
    }
    Ok(inputs)
}

/// One input value as a named delivery; `place` (e.g. `line 3`) starts names without one.
fn from_value(value: Value, place: &str, at: &DeliveryArgs) -> Result<Input, String> {
    let Value::Object(object) = &value else {
        return Err(
            "expected a JSON object (a task event, CloudEvent, topic record or canary case)".into(),
        );
    };
    if let Some(delivery) = object.get("delivery") {
        let delivery = canary::parse_delivery(delivery.clone())
            .map_err(|e| format!("its delivery is not in the canary file format: {e}"))?;
        let name = match object.get("name").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => format!("{place}: {}", describe(&delivery)),
        };
        return Ok(Input { name, delivery });
    }
    if object.contains_key("offset") && object.contains_key("event") {
        return from_value(object["event"].clone(), place, at);
    }
    let delivery = if object.contains_key("specversion") {
        let incoming = crate::dapr::envelope::from_value(value)
            .map_err(|e| format!("a CloudEvent the host would refuse: {e}"))?;
        Delivery {
            id: incoming.id,
            pubsub: at.pubsub.clone(),
            topic: at.topic.clone(),
            kind: incoming.kind,
            source: incoming.source,
            data: incoming.data,
            attempt: 1,
        }
    } else {
        let id = match object.get("event_id") {
            Some(Value::String(id)) => id.clone(),
            _ => place.replace(' ', "-"),
        };
        Delivery {
            id,
            pubsub: at.pubsub.clone(),
            topic: at.topic.clone(),
            kind: PUBLISH_KIND.into(),
            source: SOURCE.into(),
            data: value.to_string(),
            attempt: 1,
        }
    };
    Ok(Input {
        name: format!("{place}: {}", describe(&delivery)),
        delivery,
    })
}

/// `event_type event_id` of the task event in a delivery, for names.
fn describe(delivery: &Delivery) -> String {
    let event: Value = serde_json::from_str(&delivery.data).unwrap_or(Value::Null);
    let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_string);
    match (text("event_type"), text("event_id")) {
        (Some(kind), Some(id)) => format!("{kind} {id}"),
        (Some(kind), None) => kind,
        (None, Some(id)) => id,
        (None, None) => format!("{} {}", delivery.kind, delivery.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DeliveryArgs {
        DeliveryArgs {
            pubsub: "kafka-pubsub".into(),
            topic: "task-events".into(),
        }
    }

    #[test]
    fn every_input_shape_becomes_the_delivery_the_host_would_make() {
        let event = r#"{"event_id":"e1","event_type":"task.completed","user_id":"u"}"#;
        let cloud_event =
            r#"{"specversion":"1.0","id":"ce","type":"t","source":"app","data":{"event_id":"e2"}}"#;
        let record = format!(r#"{{"offset":7,"partition":0,"key":"u","event":{cloud_event}}}"#);
        let case = r#"{"name":"kept","delivery":{"id":"i","pubsub":"p","topic":"t","kind":"k","source":"s","data":"{}","attempt":3},"expected":{"reject":[]}}"#;
        let text = format!("{event}\n\n{cloud_event}\n{record}\n{case}\n");
        let inputs = parse_text(&text, "events.jsonl", &at()).unwrap();
        assert_eq!(inputs.len(), 4);

        let plain = &inputs[0];
        assert_eq!(plain.name, "line 1: task.completed e1");
        assert_eq!(
            (plain.delivery.id.as_str(), plain.delivery.kind.as_str()),
            ("e1", "com.dapr.event.sent")
        );
        assert_eq!(plain.delivery.topic, "task-events");
        let parsed: Value = serde_json::from_str(&plain.delivery.data).unwrap();
        assert_eq!(parsed, serde_json::from_str::<Value>(event).unwrap());

        for unpacked in &inputs[1..3] {
            assert_eq!(unpacked.delivery.id, "ce");
            assert_eq!(unpacked.delivery.kind, "t");
            assert_eq!(unpacked.delivery.data, r#"{"event_id":"e2"}"#);
        }
        assert_eq!(inputs[1].name, "line 3: e2");
        assert_eq!(inputs[3].name, "kept");
        assert_eq!(inputs[3].delivery.attempt, 3);
    }

    #[test]
    fn mistakes_name_the_line() {
        let err = parse_text("{}\n[1]\n", "f.jsonl", &at())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.jsonl line 2: expected a JSON object"),
            "{err}"
        );
        let err = parse_text("{}\n{\"specversion\":\"1.0\"}", "f", &at())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("neither `data`"),
            "{err}"
        );
        let err = parse_text("{\"delivery\":{\"id\":1}}", "f", &at())
            .unwrap_err()
            .to_string();
        assert!(err.contains("canary file format"), "{err}");
        assert!(
            parse_text("{", "f", &at())
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }
}
