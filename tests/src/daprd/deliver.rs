//! Delivery of single messages: the Kafka consumer loop, daprd's handler, response handling,
//! inbound resiliency and dead-lettering.
//!
//! Contract (dapr-contract.md §2, §3):
//! - One loop per (subscription, partition): messages of a partition go to the app one at a
//!   time, in offset order; partitions run in parallel. Consumers start at the oldest offset.
//! - Per message, as `subscription.go` does: metadata (Kafka `__key`, `__offset`, `__partition`,
//!   `__timestamp`, `__topic`, then every record header, then `pubsubName`), `rawPayload`
//!   (bad value: DLQ or error), body (rawPayload: the `FromRawPayload` wrapper with a fresh
//!   uuid; otherwise the exact broker bytes, which must be a JSON object or null), expiry
//!   (dropped, DLQ if set), routing (no match: acked, DLQ if set; CEL error: DLQ or error).
//! - The delivery runs inside the inbound policy: `max_retries + 1` attempts `retry_interval`
//!   apart, each bounded by `timeout`. DROP and 404 are never retried (DLQ if set, then ack).
//! - When the policy gives up: with a DLQ the original bytes and metadata are published there
//!   and the message is acked; without one the error goes to the component, and Kafka
//!   (`consumeRetryEnabled`) re-runs the whole handler, policy included, after a constant
//!   back-off (Kafka's 5 s default; here `retry_interval`, at least 10 ms), for ever, blocking the
//!   partition. `stop()` ends those loops.
//!
//! Every HTTP attempt is journaled with its classification; every ack is journaled too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::app;
use super::broker::{Append, Record};
use super::envelope;
use super::gojson::{self, GoValue};
use super::journal::{ComponentRetry, DeliveryAttempt, Outcome, Settled, Settlement};
use super::subscribe::Subscription;
use super::{Inner, bulk};

/// A handler error: `Cancelled` ends the loop, anything else goes back to the component.
pub(crate) enum HandlerError {
    Cancelled,
    Failed(String),
}

/// Run the consumer of one partition until shutdown.
pub(crate) async fn run_partition(inner: Arc<Inner>, sub: Arc<Subscription>, partition: u32) {
    if sub.bulk_subscribe.enabled {
        return bulk::run_partition(inner, sub, partition).await;
    }
    let mut appended = inner.broker.watch();
    let mut offset = 0u64;
    loop {
        appended.borrow_and_update();
        let Some(rec) = inner
            .broker
            .get(&sub.pubsubname, &sub.topic, partition, offset)
        else {
            tokio::select! {
                _ = appended.changed() => continue,
                _ = inner.shutdown.cancelled() => return,
            }
        };
        let mut round = 0;
        loop {
            match handle(&inner, &sub, &rec, round).await {
                Ok(()) => break,
                Err(HandlerError::Cancelled) => return,
                Err(HandlerError::Failed(reason)) => {
                    inner.journal.component_retry(ComponentRetry {
                        seq: 0,
                        pubsub: sub.pubsubname.clone(),
                        topic: sub.topic.clone(),
                        partition,
                        offsets: vec![offset],
                        round,
                        reason,
                    });
                    round += 1;
                    if !component_backoff(&inner).await {
                        return;
                    }
                }
            }
        }
        offset += 1;
    }
}

/// Kafka's consume-retry back-off; false when shutting down.
pub(crate) async fn component_backoff(inner: &Inner) -> bool {
    let d = inner
        .cfg
        .resiliency
        .retry_interval
        .max(Duration::from_millis(10));
    sleep_or_stop(inner, d).await
}

/// Sleep unless shutdown comes first; false on shutdown.
pub(crate) async fn sleep_or_stop(inner: &Inner, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = inner.shutdown.cancelled() => false,
    }
}

/// What the Kafka consumer hands daprd for a record; `pubsub` is added by daprd itself.
pub(crate) fn consumer_metadata(rec: &Record, pubsub: Option<&str>) -> BTreeMap<String, String> {
    let mut md = BTreeMap::new();
    if let Some(k) = &rec.key {
        md.insert("__key".to_string(), k.clone());
    }
    md.insert("__offset".into(), rec.offset.to_string());
    md.insert("__topic".into(), rec.topic.clone());
    md.insert("__timestamp".into(), rec.timestamp_ms.to_string());
    md.insert("__partition".into(), rec.partition.to_string());
    // Record headers override the consumer's own keys (a DLQ record keeps the original's).
    md.extend(rec.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(ps) = pubsub {
        md.insert("pubsubName".into(), ps.to_string());
    }
    md
}

/// Publish the original bytes and metadata to the dead-letter topic (no re-wrapping).
pub(crate) fn dead_letter(
    inner: &Inner,
    sub: &Subscription,
    rec: &Record,
    md: BTreeMap<String, String>,
) -> Option<String> {
    let dlq = sub.dead_letter_topic.clone()?;
    inner.broker.append(Append {
        pubsub: &sub.pubsubname,
        topic: &dlq,
        metadata: md,
        content_type: &rec.content_type,
        body: rec.body.clone(),
    });
    Some(dlq)
}

pub(crate) fn settle(inner: &Inner, rec: &Record, how: Settlement, dead_letter: Option<String>) {
    inner.journal.settle(Settled {
        seq: 0,
        pubsub: rec.pubsub.clone(),
        topic: rec.topic.clone(),
        partition: rec.partition,
        offset: rec.offset,
        how,
        dead_letter,
    });
}

/// daprd's subscription handler for one message.
async fn handle(
    inner: &Inner,
    sub: &Subscription,
    rec: &Record,
    round: u32,
) -> Result<(), HandlerError> {
    let md = consumer_metadata(rec, Some(&sub.pubsubname));
    // Failures before delivery: DLQ and ack when a DLQ is set, else back to the component.
    let refuse = |why: String| match dead_letter(inner, sub, rec, md.clone()) {
        Some(dlq) => {
            settle(inner, rec, Settlement::Undeliverable(why), Some(dlq));
            Ok(())
        }
        None => Err(HandlerError::Failed(why)),
    };
    let raw = match sub.raw_payload() {
        Ok(raw) => raw,
        Err(e) => return refuse(format!("error deserializing pubsub metadata: {e}")),
    };
    let (event, data) = if raw {
        let ce = envelope::from_raw_payload(&rec.body, &rec.topic, &sub.pubsubname, &md);
        let data = gojson::marshal(&ce);
        (ce, data)
    } else {
        match gojson::unmarshal(&rec.body).map(|v| gojson::to_float64_numbers(&v)) {
            Ok(Ok(ce @ (GoValue::Map(_) | GoValue::Null))) => {
                (with_trace(ce, &md), rec.body.clone())
            }
            Ok(Ok(other)) => {
                return refuse(gojson::type_error(&other, "", "map[string]interface {}"));
            }
            Ok(Err(e)) => return refuse(e),
            Err(e) => return refuse(format!("error deserializing cloud event: {e}")),
        }
    };
    if envelope::has_expired(&event) {
        let dlq = dead_letter(inner, sub, rec, md);
        settle(inner, rec, Settlement::Expired, dlq);
        return Ok(());
    }
    let path = match sub.route_for(&event) {
        Err(e) => return refuse(format!("error finding matching route: {e}")),
        Ok(None) => {
            let dlq = dead_letter(inner, sub, rec, md);
            settle(inner, rec, Settlement::Unrouted, dlq);
            return Ok(());
        }
        Ok(Some(p)) => app::clean_path(p),
    };
    let headers = app::delivery_headers(inner, &md, envelope::CLOUDEVENTS_JSON);
    let policy = &inner.cfg.resiliency;
    let attempts = policy.max_retries.saturating_add(1);
    for attempt in 1..=attempts {
        let res = app::call(
            inner,
            reqwest::Method::POST,
            &path,
            &headers,
            data.clone(),
            policy.timeout,
        )
        .await;
        if inner.shutdown.is_cancelled() {
            return Err(HandlerError::Cancelled);
        }
        let (status, body, outcome) = match res {
            Ok(r) => {
                let outcome = classify(r.status, &r.body);
                (Some(r.status), r.body, outcome)
            }
            Err(e) => (None, Vec::new(), Outcome::Error(e)),
        };
        inner.journal.attempt(DeliveryAttempt {
            seq: 0,
            pubsub: sub.pubsubname.clone(),
            topic: rec.topic.clone(),
            partition: rec.partition,
            offsets: vec![rec.offset],
            route: path.clone(),
            event_id: envelope::event_id(&event),
            bulk: false,
            attempt,
            round,
            request_headers: headers.clone(),
            request_body: data.clone(),
            status,
            parsed: serde_json::from_slice(&body).ok(),
            response_body: body,
            outcome: outcome.clone(),
            entries: Vec::new(),
        });
        match outcome {
            Outcome::Success => {
                settle(inner, rec, Settlement::Delivered, None);
                return Ok(());
            }
            Outcome::Drop => {
                let dlq = dead_letter(inner, sub, rec, md);
                settle(inner, rec, Settlement::Dropped, dlq);
                return Ok(());
            }
            Outcome::Retry(_) | Outcome::Error(_) => {
                if attempt < attempts && !sleep_or_stop(inner, policy.retry_interval).await {
                    return Err(HandlerError::Cancelled);
                }
            }
        }
    }
    match dead_letter(inner, sub, rec, md) {
        Some(dlq) => {
            settle(inner, rec, Settlement::RetriesExhausted, Some(dlq));
            Ok(())
        }
        None => Err(HandlerError::Failed("retries exhausted".into())),
    }
}

/// Tracing fallback: metadata fills trace fields the event lacks (affects routing only).
fn with_trace(ce: GoValue, md: &BTreeMap<String, String>) -> GoValue {
    let GoValue::Map(mut pairs) = ce else {
        return ce;
    };
    let has = |p: &[(String, GoValue)], k: &str| p.iter().any(|(pk, _)| pk == k);
    if !has(&pairs, "traceid")
        && let Some(t) = md.get("traceid")
    {
        gojson::map_set(&mut pairs, "traceid", gojson::s(t));
    }
    if !has(&pairs, "traceparent")
        && let Some(t) = md.get("traceparent")
    {
        gojson::map_set(&mut pairs, "traceparent", gojson::s(t));
        gojson::map_set(&mut pairs, "traceid", gojson::s(t));
    }
    if !has(&pairs, "tracestate")
        && let Some(t) = md.get("tracestate")
    {
        gojson::map_set(&mut pairs, "tracestate", gojson::s(t));
    }
    GoValue::Map(pairs)
}

/// The response table of §3 (postman/http `Deliver`).
pub(crate) fn classify(status: u16, body: &[u8]) -> Outcome {
    if (200..=299).contains(&status) {
        // `json.NewDecoder(body).Decode(&struct{Status string})`; any decode error is success.
        let status_field = match gojson::decode_first(body) {
            Ok(GoValue::Map(pairs)) => status_string(&pairs),
            _ => String::new(),
        };
        return match status_field.as_str() {
            "" | "SUCCESS" => Outcome::Success,
            "RETRY" => Outcome::Retry("RETRY status returned from app".into()),
            "DROP" => Outcome::Drop,
            other => Outcome::Retry(format!("unknown status returned from app: {other}")),
        };
    }
    if status == 404 {
        return Outcome::Drop;
    }
    Outcome::Retry(format!(
        "retriable error returned from app, status code returned: {status}"
    ))
}

/// The `status` string Go would decode, or "" when the decode fails: Go keeps decoding after a
/// type mismatch but still reports it, so one non-string `status` key makes the whole answer
/// undecodable (and therefore a success).
pub(crate) fn status_string(pairs: &[(String, GoValue)]) -> String {
    let matching = pairs
        .iter()
        .filter(|(k, _)| gojson::key_matches(k, "status"));
    let mut status = String::new();
    for (_, v) in matching {
        match v {
            GoValue::String(s) => status = s.clone(),
            GoValue::Null => {}
            _ => return String::new(),
        }
    }
    status
}
