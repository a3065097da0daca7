//! Bulk delivery for subscriptions with `bulkSubscribe.enabled` (docs/dapr-contract.md §4).
//!
//! A batch is up to `maxMessagesCount` records already in the partition (default 80, Kafka's);
//! it is sent at once rather than after waiting up to `maxAwaitDurationMs` for more: an app
//! cannot tell, and a lone event is not held back 10 s. Entry ids are the index in the batch
//! (`"0"`, `"1"`, ... as with Kafka); one POST per distinct route path.
//!
//! Outcome per entry as in §4 (missing or unknown status = RETRY; other 2xx bodies, non-2xx or a
//! transport error = all RETRY; 404 = all DROP). Retried entries, and only those, are re-sent
//! after a backoff until every entry is settled; then the dropped ones go to the dead-letter topic
//! and the batch is committed in one transaction. A record is never committed before the whole
//! batch is settled, so a crash redelivers the batch (at-least-once).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::deliver::{self, Verdict};
use super::dispatch::{Consumer, Flow};
use super::go_decode::{field, str_field};
use super::store::Record;
use super::subscribe::BulkConfig;

impl Consumer {
    /// Delivers `batch` in chunks of `cfg.max_messages`; returns the next offset to read.
    pub(super) async fn bulk(&self, batch: Vec<(u64, Record)>, cfg: BulkConfig) -> (Flow, u64) {
        let mut next = batch.first().map_or(0, |(o, _)| *o);
        for chunk in batch.chunks(cfg.max_messages.max(1)) {
            if self.shutdown.is_cancelled() {
                return (Flow::Stop, next);
            }
            if let Flow::Stop = self.bulk_chunk(chunk).await {
                return (Flow::Stop, next);
            }
            next = chunk.last().map_or(next, |(o, _)| o + 1);
        }
        (Flow::Continue, next)
    }

    async fn bulk_chunk(&self, chunk: &[(u64, Record)]) -> Flow {
        let sub = &self.sub;
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut dropped: Vec<(u64, Record, String)> = Vec::new();
        let mut backoff = self.backoff();
        let mut attempt = 1u32;
        loop {
            let now = chrono::Utc::now();
            let mut retry: Vec<(usize, String)> = Vec::new();
            // Route path -> entries for it, in order.
            let mut by_path: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
            for &i in &pending {
                let (offset, rec) = &chunk[i];
                match deliver::prepare(sub, rec, now) {
                    Ok(p) => {
                        let entry =
                            entry_json(i, *offset, rec, p.event, sub.raw_payload, &sub.topic);
                        by_path.entry(p.path).or_default().push((i, entry));
                    }
                    Err(Verdict::Drop(why)) => dropped.push((*offset, rec.clone(), why)),
                    Err(Verdict::Retry(why)) => retry.push((i, why)),
                    Err(Verdict::Ack) => {}
                }
            }
            for (path, entries) in by_path {
                let ids: Vec<String> = entries.iter().map(|(i, _)| i.to_string()).collect();
                let verdicts = self
                    .post_bulk(
                        &path,
                        entries.iter().map(|(_, e)| e.clone()).collect(),
                        &ids,
                    )
                    .await;
                for ((i, _), v) in entries.iter().zip(verdicts) {
                    match v {
                        Verdict::Ack => {}
                        Verdict::Drop(why) => dropped.push((chunk[*i].0, chunk[*i].1.clone(), why)),
                        Verdict::Retry(why) => retry.push((*i, why)),
                    }
                }
            }
            if !retry.is_empty() && self.redeliveries_spent(attempt) {
                // daprd's resiliency `maxRetries`: the entries still failing go to the
                // dead-letter topic, so one batch can never hold its partition for good.
                for (i, why) in retry.drain(..) {
                    let why = format!("{why}; given up after {attempt} deliveries");
                    dropped.push((chunk[i].0, chunk[i].1.clone(), why));
                }
            }
            if retry.is_empty() {
                dropped.sort_by_key(|(o, _, _)| *o);
                let next = chunk.last().map_or(0, |(o, _)| o + 1);
                match self.settle(next, std::mem::take(&mut dropped)).await {
                    Ok(()) => return Flow::Continue,
                    Err(wait) => {
                        // Nothing was committed: start the whole batch again.
                        pending = (0..chunk.len()).collect();
                        if let Flow::Stop = self.sleep(wait).await {
                            return Flow::Stop;
                        }
                        continue;
                    }
                }
            }
            retry.sort_by_key(|(i, _)| *i);
            let wait = backoff.next();
            tracing::warn!(topic = %sub.topic, partition = self.partition, entries = retry.len(),
                first_reason = %retry[0].1, "embedded sidecar: bulk entries failed; re-sending them in {wait:?}");
            pending = retry.into_iter().map(|(i, _)| i).collect();
            if let Flow::Stop = self.sleep(wait).await {
                return Flow::Stop;
            }
            attempt += 1;
        }
    }

    /// One bulk POST; one verdict per entry, in order.
    async fn post_bulk(&self, path: &str, entries: Vec<Value>, ids: &[String]) -> Vec<Verdict> {
        let sub = &self.sub;
        let body = json!({
            "entries": entries,
            "id": uuid::Uuid::new_v4().to_string(),
            "metadata": { "pubsubName": sub.pubsub },
            "pubsubname": sub.pubsub,
            "topic": sub.topic,
            "type": "com.dapr.event.sent.bulk",
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let all = |v: Verdict| vec![v; ids.len()];
        let req = match deliver::request(path, "application/json", &sub.pubsub, &[], bytes.into()) {
            Ok(r) => r,
            Err(e) => return all(Verdict::Retry(e)),
        };
        match self.app.call(req, self.partition).await {
            Ok((status, body)) => interpret_bulk(status, &body, ids),
            Err(e) => all(Verdict::Retry(e)),
        }
    }
}

/// One entry of the bulk request.
fn entry_json(i: usize, offset: u64, rec: &Record, event: Value, raw: bool, topic: &str) -> Value {
    let metadata: Map<String, Value> = deliver::broker_metadata(topic, offset, rec)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let (content_type, event) = if raw {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&rec.body);
        ("application/octet-stream", Value::String(b64))
    } else {
        (super::envelope::CLOUDEVENTS_JSON, event)
    };
    json!({ "contentType": content_type, "entryId": i.to_string(), "event": event, "metadata": metadata })
}

/// The §4 response rules.
pub(crate) fn interpret_bulk(status: StatusCode, body: &[u8], ids: &[String]) -> Vec<Verdict> {
    let all = |v: Verdict| vec![v; ids.len()];
    if status == StatusCode::NOT_FOUND {
        return all(Verdict::Drop(
            "the app answered 404 to a bulk delivery".into(),
        ));
    }
    if !status.is_success() {
        return all(Verdict::Retry(format!(
            "the app answered {status} to a bulk delivery"
        )));
    }
    let answer = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let statuses = field(&answer, "statuses").and_then(Value::as_array);
    let Some(statuses) = statuses else {
        return all(Verdict::Retry(
            "the bulk answer has no \"statuses\" array".into(),
        ));
    };
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for s in statuses {
        if let Some(id) = str_field(s, "entryId").map(str::to_string) {
            if !ids.contains(&id) {
                tracing::warn!(entry_id = %id, "bulk answer names an unknown entry; ignored");
            }
            by_id.insert(id, str_field(s, "status").unwrap_or_default().to_string());
        }
    }
    ids.iter()
        .map(|id| match by_id.get(id).map(String::as_str) {
            Some("SUCCESS") => Verdict::Ack,
            Some("DROP") => Verdict::Drop("the app answered DROP for the entry".into()),
            Some(other) => {
                Verdict::Retry(format!("the app answered status {other:?} for the entry"))
            }
            None => Verdict::Retry("the bulk answer has no status for the entry".into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_response_rules() {
        let ids: Vec<String> = ["0", "1", "2", "3"].map(String::from).to_vec();
        let body = br#"{"statuses":[{"entryId":"0","status":"SUCCESS"},{"entryId":"1","status":"DROP"},{"entryId":"2","status":"success"},{"entryId":"9","status":"SUCCESS"}]}"#;
        let v = interpret_bulk(StatusCode::OK, body, &ids);
        assert_eq!(v[0], Verdict::Ack);
        assert!(matches!(v[1], Verdict::Drop(_)));
        assert!(matches!(v[2], Verdict::Retry(_)), "case-sensitive");
        assert!(matches!(v[3], Verdict::Retry(_)), "missing = RETRY");
        for (status, body) in [(200, &b""[..]), (200, b"{}"), (500, br#"{"statuses":[]}"#)] {
            let v = interpret_bulk(StatusCode::from_u16(status).unwrap(), body, &ids);
            assert!(
                v.iter().all(|v| matches!(v, Verdict::Retry(_))),
                "{status} {body:?}"
            );
        }
        let v = interpret_bulk(StatusCode::NOT_FOUND, b"", &ids);
        assert!(v.iter().all(|v| matches!(v, Verdict::Drop(_))));
    }
}
