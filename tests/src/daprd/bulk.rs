//! Bulk subscribe: batching per partition, the bulk envelope, per-entry statuses, retries of
//! only the failed entries, and dead-lettering.
//!
//! Contract (dapr-contract.md §4, with Kafka's native bulk consumer):
//! - A batch is flushed when it reaches `maxMessagesCount` (default 80) or when the
//!   `maxAwaitDurationMs` ticker fires (default 10 000 ms) with something buffered. Entry ids are
//!   `"0"`, `"1"`, ... (index in the batch); one POST per distinct route.
//! - Request: `Content-Type: application/json`, bulk metadata (`pubsubName`) as headers, body
//!   `{"entries":[{"entryId","event","metadata","contentType"}],"id","metadata","pubsubname",
//!   "topic","type":"com.dapr.event.sent.bulk"}`. `event` is the parsed CloudEvent (re-encoded
//!   from Go's `map[string]any`, so numbers went through float64) or, with rawPayload, the
//!   base64 of the bytes with contentType `application/octet-stream`.
//! - Non-JSON entries fail before the POST; expired and unrouted ones are acked (DLQ if set).
//! - Response: 2xx + `{"statuses":[{"entryId","status"}]}`; a missing entry or an empty/unknown
//!   status is RETRY; unknown ids are ignored; DROP goes to the DLQ at once. 2xx with any other
//!   body (even empty) retries all; 404 acks all (no DLQ); any other status or a transport
//!   error retries all.
//! - Resiliency retries re-send only the failed entries (same envelope id). When the policy gives
//!   up, failed entries go to the DLQ if set and the batch is acked; otherwise the error goes to
//!   Kafka, which marks the successful prefix and re-runs the whole batch after its back-off.
//!
//! Entry ids in a response are matched against the entries of that attempt only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::Inner;
use super::app;
use super::broker::Record;
use super::bulk_reply::classify;
use super::deliver::{
    HandlerError, component_backoff, consumer_metadata, dead_letter, settle, sleep_or_stop,
};
use super::envelope;
use super::gojson::{self, GoValue, s};
use super::journal::{ComponentRetry, DeliveryAttempt, EntryStatus, Outcome, Settlement};
use super::subscribe::Subscription;

pub(crate) async fn run_partition(inner: Arc<Inner>, sub: Arc<Subscription>, partition: u32) {
    let b = &sub.bulk_subscribe;
    let max = if b.max_messages_count > 0 {
        b.max_messages_count as usize
    } else {
        80
    };
    let every = Duration::from_millis(if b.max_await_duration_ms > 0 {
        b.max_await_duration_ms as u64
    } else {
        10_000
    });
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut appended = inner.broker.watch();
    let (mut next, mut batch) = (0u64, Vec::<Arc<Record>>::new());
    loop {
        appended.borrow_and_update();
        while batch.len() < max {
            match inner
                .broker
                .get(&sub.pubsubname, &sub.topic, partition, next)
            {
                Some(r) => {
                    batch.push(r);
                    next += 1;
                }
                None => break,
            }
        }
        let flush_now = batch.len() >= max
            || tokio::select! {
                _ = appended.changed() => false,
                _ = ticker.tick() => !batch.is_empty(),
                _ = inner.shutdown.cancelled() => return,
            };
        if flush_now {
            if !flush(&inner, &sub, &batch).await {
                return;
            }
            batch.clear();
        }
    }
}

/// Run the bulk handler until Kafka considers the batch done; false on shutdown.
async fn flush(inner: &Inner, sub: &Subscription, batch: &[Arc<Record>]) -> bool {
    let mut round = 0;
    loop {
        match handle_batch(inner, sub, batch, round).await {
            Ok(()) => return true,
            Err(HandlerError::Cancelled) => return false,
            Err(HandlerError::Failed(reason)) => {
                inner.journal.component_retry(ComponentRetry {
                    seq: 0,
                    pubsub: sub.pubsubname.clone(),
                    topic: sub.topic.clone(),
                    partition: batch.first().map_or(0, |r| r.partition),
                    offsets: batch.iter().map(|r| r.offset).collect(),
                    round,
                    reason,
                });
                round += 1;
                if !component_backoff(inner).await {
                    return false;
                }
            }
        }
    }
}

/// Why an entry failed: at the app (retriable), or before it could be sent.
enum Failure {
    Delivery,
    Undeliverable(String),
}

/// One entry of the batch while the handler runs.
struct Entry<'a> {
    rec: &'a Record,
    id: String,
    md: BTreeMap<String, String>,
    event: GoValue,
    event_id: Option<String>,
    content_type: &'static str,
    /// Set while the entry is failed.
    error: Option<Failure>,
    /// How it settles if the batch is acked.
    how: Settlement,
    dead_letter: Option<String>,
}

async fn handle_batch(
    inner: &Inner,
    sub: &Subscription,
    batch: &[Arc<Record>],
    round: u32,
) -> Result<(), HandlerError> {
    let bulk_md = BTreeMap::from([("pubsubName".to_string(), sub.pubsubname.clone())]);
    let mut entries: Vec<Entry<'_>> = batch
        .iter()
        .enumerate()
        .map(|(i, rec)| Entry {
            rec,
            id: i.to_string(),
            md: consumer_metadata(rec, None),
            event: GoValue::Null,
            event_id: None,
            content_type: envelope::CLOUDEVENTS_JSON,
            error: None,
            how: Settlement::Delivered,
            dead_letter: None,
        })
        .collect();
    let raw = match sub.raw_payload() {
        Ok(raw) => raw,
        Err(e) => {
            for en in &mut entries {
                en.error = Some(Failure::Undeliverable(format!(
                    "error deserializing pubsub metadata: {e}"
                )));
            }
            return finish(inner, sub, entries, &bulk_md);
        }
    };
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, en) in entries.iter_mut().enumerate() {
        let routed = if raw {
            en.event = s(base64::engine::general_purpose::STANDARD.encode(&en.rec.body));
            en.content_type = "application/octet-stream";
            sub.route_for(&s(String::from_utf8_lossy(&en.rec.body)))
        } else {
            match gojson::unmarshal(&en.rec.body).map(|v| gojson::to_float64_numbers(&v)) {
                Ok(Ok(ce @ (GoValue::Map(_) | GoValue::Null))) => {
                    en.event_id = envelope::event_id(&ce);
                    en.event = ce;
                }
                Ok(Ok(other)) => {
                    en.error = Some(Failure::Undeliverable(gojson::type_error(
                        &other,
                        "",
                        "map[string]interface {}",
                    )))
                }
                Ok(Err(e)) => en.error = Some(Failure::Undeliverable(e)),
                Err(e) => {
                    en.error = Some(Failure::Undeliverable(format!(
                        "error deserializing cloud event: {e}"
                    )))
                }
            }
            if en.error.is_some() {
                continue;
            }
            if envelope::has_expired(&en.event) {
                en.how = Settlement::Expired;
                en.dead_letter = dead_letter(inner, sub, en.rec, en.md.clone());
                continue;
            }
            sub.route_for(&en.event)
        };
        match routed {
            Err(e) => {
                en.error = Some(Failure::Undeliverable(format!(
                    "error finding matching route: {e}"
                )))
            }
            Ok(None) => {
                en.how = Settlement::Unrouted;
                en.dead_letter = dead_letter(inner, sub, en.rec, en.md.clone());
            }
            Ok(Some(p)) => {
                let p = app::clean_path(p);
                match groups.iter_mut().find(|(gp, _)| *gp == p) {
                    Some((_, idx)) => idx.push(i),
                    None => groups.push((p, vec![i])),
                }
            }
        }
    }
    for (path, idxs) in groups {
        deliver_group(inner, sub, &mut entries, &bulk_md, &path, idxs, round).await?;
    }
    finish(inner, sub, entries, &bulk_md)
}

/// Send one route's entries inside the resiliency policy, re-sending only failed entries.
async fn deliver_group(
    inner: &Inner,
    sub: &Subscription,
    entries: &mut [Entry<'_>],
    bulk_md: &BTreeMap<String, String>,
    path: &str,
    mut pending: Vec<usize>,
    round: u32,
) -> Result<(), HandlerError> {
    let envelope_id = uuid::Uuid::new_v4().to_string();
    let headers = app::delivery_headers(inner, bulk_md, "application/json");
    let policy = &inner.cfg.resiliency;
    let attempts = policy.max_retries.saturating_add(1);
    for attempt in 1..=attempts {
        let items = pending
            .iter()
            .map(|&i| {
                let en = &entries[i];
                let md = en.md.iter().map(|(k, v)| (k.clone(), s(v))).collect();
                GoValue::Struct(vec![
                    ("entryId".into(), s(&en.id)),
                    ("event".into(), en.event.clone()),
                    ("metadata".into(), GoValue::Map(md)),
                    ("contentType".into(), s(en.content_type)),
                ])
            })
            .collect();
        let body = gojson::marshal(&GoValue::Map(vec![
            ("entries".into(), GoValue::Array(items)),
            ("id".into(), s(&envelope_id)),
            (
                "metadata".into(),
                GoValue::Map(bulk_md.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            ),
            ("pubsubname".into(), s(&sub.pubsubname)),
            ("topic".into(), s(&sub.topic)),
            ("type".into(), s("com.dapr.event.sent.bulk")),
        ]));
        let res = app::call(
            inner,
            reqwest::Method::POST,
            path,
            &headers,
            body.clone(),
            policy.timeout,
        )
        .await;
        if inner.shutdown.is_cancelled() {
            return Err(HandlerError::Cancelled);
        }
        let ids: Vec<&str> = pending.iter().map(|&i| entries[i].id.as_str()).collect();
        let (status, resp_body, verdicts) = match res {
            Ok(r) => {
                let v = classify(r.status, &r.body, &ids);
                (Some(r.status), r.body, v)
            }
            Err(e) => (
                None,
                Vec::new(),
                ids.iter().map(|_| Outcome::Error(e.clone())).collect(),
            ),
        };
        let mut statuses = Vec::with_capacity(pending.len());
        for (&i, verdict) in pending.iter().zip(&verdicts) {
            let en = &mut entries[i];
            en.error = verdict.is_retriable().then_some(Failure::Delivery);
            if *verdict == Outcome::Drop {
                en.how = Settlement::Dropped;
                // An explicit DROP is dead-lettered; a 404 acks without it.
                if status != Some(404) {
                    en.dead_letter = dead_letter(inner, sub, en.rec, en.md.clone());
                }
            }
            statuses.push(EntryStatus {
                entry_id: en.id.clone(),
                offset: en.rec.offset,
                event_id: en.event_id.clone(),
                outcome: verdict.clone(),
            });
        }
        let failed = verdicts.iter().filter(|v| v.is_retriable()).count();
        let overall = match (status, res_error(&verdicts)) {
            (_, Some(e)) => Outcome::Error(e),
            (Some(404), _) => Outcome::Drop,
            _ if failed == 0 => Outcome::Success,
            _ => Outcome::Retry(format!("{failed} of {} entries failed", verdicts.len())),
        };
        let first = &entries[pending[0]];
        inner.journal.attempt(DeliveryAttempt {
            seq: 0,
            pubsub: sub.pubsubname.clone(),
            topic: sub.topic.clone(),
            partition: first.rec.partition,
            offsets: pending.iter().map(|&i| entries[i].rec.offset).collect(),
            route: path.to_string(),
            event_id: None,
            bulk: true,
            attempt,
            round,
            request_headers: headers.clone(),
            request_body: body,
            status,
            parsed: serde_json::from_slice(&resp_body).ok(),
            response_body: resp_body,
            outcome: overall,
            entries: statuses,
        });
        pending.retain(|&i| entries[i].error.is_some());
        if pending.is_empty() {
            return Ok(());
        }
        if attempt < attempts && !sleep_or_stop(inner, policy.retry_interval).await {
            return Err(HandlerError::Cancelled);
        }
    }
    Ok(())
}

fn res_error(verdicts: &[Outcome]) -> Option<String> {
    match verdicts.first() {
        Some(Outcome::Error(e)) => Some(e.clone()),
        _ => None,
    }
}

/// After all routes: DLQ the failed entries (then ack all), or hand the error to Kafka.
fn finish(
    inner: &Inner,
    sub: &Subscription,
    mut entries: Vec<Entry<'_>>,
    bulk_md: &BTreeMap<String, String>,
) -> Result<(), HandlerError> {
    let any_failed = entries.iter().any(|e| e.error.is_some());
    if any_failed && sub.dead_letter_topic.is_none() {
        // Kafka marks the successful prefix of the batch; the whole batch runs again.
        for en in entries.iter().take_while(|e| e.error.is_none()) {
            settle(inner, en.rec, en.how.clone(), en.dead_letter.clone());
        }
        return Err(HandlerError::Failed(
            "few message(s) have failed during bulk subscribe operation".into(),
        ));
    }
    for en in &mut entries {
        if let Some(failure) = en.error.take() {
            let mut md = en.md.clone();
            md.extend(bulk_md.iter().map(|(k, v)| (k.clone(), v.clone())));
            en.dead_letter = dead_letter(inner, sub, en.rec, md);
            en.how = match failure {
                Failure::Delivery => Settlement::RetriesExhausted,
                Failure::Undeliverable(why) => Settlement::Undeliverable(why),
            };
        }
        settle(inner, en.rec, en.how.clone(), en.dead_letter.clone());
    }
    Ok(())
}
