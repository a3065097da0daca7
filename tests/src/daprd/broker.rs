//! In-memory Kafka-like broker: topics with partitions, append-only logs, record headers.
//!
//! Contract (dapr-contract.md §2 headers, §5 "Publish" Kafka extras, §2.1 DLQ): a record carries
//! the publisher's metadata as Kafka headers; `partitionKey` (or `__key`) becomes the record key;
//! `partitionNumber` picks the partition. Partitions follow sarama's default hash partitioner
//! (FNV-1a 32 of the key, `int32(hash) % n`, negated when negative); keyless records land on a
//! random partition. Topics are created on first use, as with Kafka's auto-create, and consumers
//! start at the oldest offset (the `initialOffset: oldest` of deploy/ and §8).
//!
//! Records are never removed; consumers keep their own offsets. A `watch` counter wakes
//! consumers on every append, so no delivery loop has to poll.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// One record as the broker stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Global append order across all topics (handy to assert publish order in tests).
    pub seq: u64,
    pub pubsub: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    /// The Kafka record key (`partitionKey` / `__key`).
    pub key: Option<String>,
    /// The Kafka record headers: exactly the publisher's `metadata.*` query parameters (for a
    /// dead-lettered record: the metadata of the failed delivery, `__offset` and friends too).
    pub metadata: BTreeMap<String, String>,
    /// The Content-Type the publisher declared (informational: Kafka does not carry it).
    pub content_type: String,
    /// The exact bytes on the broker.
    pub body: Vec<u8>,
    /// Broker timestamp, Unix milliseconds (`__timestamp`).
    pub timestamp_ms: i64,
}

impl Record {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The publisher's partition key header, if any.
    pub fn partition_key(&self) -> Option<&str> {
        self.metadata.get("partitionKey").map(String::as_str)
    }
}

/// What a publish asks the broker to append.
pub(crate) struct Append<'a> {
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub metadata: BTreeMap<String, String>,
    pub content_type: &'a str,
    pub body: Vec<u8>,
}

type Log = Vec<Vec<Arc<Record>>>;

#[derive(Default)]
struct Logs {
    next_seq: u64,
    topics: HashMap<(String, String), Log>,
}

pub(crate) struct Broker {
    partitions: u32,
    logs: Mutex<Logs>,
    appended: watch::Sender<u64>,
}

impl Broker {
    pub(crate) fn new(partitions: u32) -> Broker {
        Broker {
            partitions: partitions.max(1),
            logs: Mutex::new(Logs::default()),
            appended: watch::Sender::new(0),
        }
    }

    pub(crate) fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Append a record; returns it as stored.
    pub(crate) fn append(&self, a: Append<'_>) -> Arc<Record> {
        // sarama: `partitionKey` and `__key` both set the key (map order decides if both differ;
        // `__key` is taken here, which is what a dead-lettered record carries).
        let key = a
            .metadata
            .get("__key")
            .or_else(|| a.metadata.get("partitionKey"))
            .cloned();
        let partition = a
            .metadata
            .get("partitionNumber")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p < self.partitions)
            .unwrap_or_else(|| partition_for(key.as_deref(), self.partitions));
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let seq = logs.next_seq;
        logs.next_seq += 1;
        let log = logs
            .topics
            .entry((a.pubsub.to_string(), a.topic.to_string()))
            .or_insert_with(|| vec![Vec::new(); self.partitions as usize]);
        let part = &mut log[partition as usize];
        let rec = Arc::new(Record {
            seq,
            pubsub: a.pubsub.to_string(),
            topic: a.topic.to_string(),
            partition,
            offset: part.len() as u64,
            key,
            metadata: a.metadata,
            content_type: a.content_type.to_string(),
            body: a.body,
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
        });
        part.push(rec.clone());
        drop(logs);
        self.appended.send_modify(|n| *n += 1);
        rec
    }

    /// The record at `offset` of a partition, if it exists yet.
    pub(crate) fn get(
        &self,
        pubsub: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Option<Arc<Record>> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        logs.topics
            .get(&(pubsub.to_string(), topic.to_string()))?
            .get(partition as usize)?
            .get(usize::try_from(offset).ok()?)
            .cloned()
    }

    /// Every record of `topic` on any pubsub, in append order.
    pub(crate) fn topic(&self, topic: &str) -> Vec<Record> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Record> = logs
            .topics
            .iter()
            .filter(|((_, t), _)| t == topic)
            .flat_map(|(_, parts)| parts.iter().flatten().map(|r| (**r).clone()))
            .collect();
        out.sort_by_key(|r| r.seq);
        out
    }

    /// A receiver that changes on every append (consumers wait on it).
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

/// sarama's default `hashPartitioner`: FNV-1a 32, `int32(sum) % n`, absolute value.
pub(crate) fn partition_for(key: Option<&str>, n: u32) -> u32 {
    let n = n.max(1);
    match key {
        Some(k) => {
            let mut h: u32 = 0x811c_9dc5;
            for b in k.as_bytes() {
                h ^= u32::from(*b);
                h = h.wrapping_mul(0x0100_0193);
            }
            ((h as i32) % (n as i32)).unsigned_abs()
        }
        // sarama picks a random partition for keyless messages.
        None => (uuid::Uuid::new_v4().as_u128() % u128::from(n)) as u32,
    }
}
