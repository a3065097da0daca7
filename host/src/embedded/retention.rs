//! Bounded growth: expired state keys are removed, and topic records older than the retention
//! period are deleted once every consumer group subscribed to the topic has committed past
//! them, so a laptop that runs `serve` for months does not fill its disk.
//!
//! Runs in the background every [`SWEEP_EVERY`], on the blocking pool, each pass doing at most
//! [`MAX_PER_PASS`] deletions per kind in one transaction, so it never holds the write lock for
//! long. Kafka deletes by age whether or not a record was consumed; here an unconsumed record
//! is kept (the sidecar and its app live and die together, so "unconsumed" means "the app was
//! down", not "nobody wants it"). A topic no group reads (e.g. `task-updates` with no
//! subscriber) is trimmed by age alone, as Kafka would.

use std::collections::HashMap;
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable};
use tokio_util::sync::CancellationToken;

use super::Embedded;
use super::error::StoreError;
use super::store::{LOG, NEXT, PARTITION, POSITIONS, Record, STATE, STATE_EXPIRY, Store};

/// Time between two passes.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Deletions per kind and pass.
const MAX_PER_PASS: usize = 10_000;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Swept {
    pub state_keys: usize,
    pub records: usize,
}

impl Store {
    /// Removes expired state keys and topic records published before `cutoff_ms` that every
    /// group reading their topic has committed past.
    pub(super) fn sweep(&self, now_ms: i64, cutoff_ms: i64) -> Result<Swept, StoreError> {
        let expired = self.expired_keys(now_ms)?;
        let records = self.old_records(cutoff_ms)?;
        if expired.is_empty() && records.is_empty() {
            return Ok(Swept::default());
        }
        let tx = self.db.begin_write()?;
        {
            let mut state = tx.open_table(STATE)?;
            let mut expiry = tx.open_table(STATE_EXPIRY)?;
            for (store, key) in &expired {
                state.remove((store.as_str(), key.as_str()))?;
                expiry.remove((store.as_str(), key.as_str()))?;
            }
            let mut log = tx.open_table(LOG)?;
            let mut index = tx.open_table(PARTITION)?;
            for (topic, partition, offset) in &records {
                log.remove((topic.as_str(), *offset))?;
                index.remove((topic.as_str(), *partition, *offset))?;
            }
        }
        tx.commit()?;
        Ok(Swept {
            state_keys: expired.len(),
            records: records.len(),
        })
    }

    fn expired_keys(&self, now_ms: i64) -> Result<Vec<(String, String)>, StoreError> {
        let tx = self.db.begin_read()?;
        let expiry = tx.open_table(STATE_EXPIRY)?;
        let mut out = Vec::new();
        for entry in expiry.iter()? {
            let (k, at) = entry?;
            if at.value() <= now_ms {
                let (store, key) = k.value();
                out.push((store.to_string(), key.to_string()));
                if out.len() >= MAX_PER_PASS {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// `(topic, partition, offset)` of records old enough and consumed by every group.
    fn old_records(&self, cutoff_ms: i64) -> Result<Vec<(String, u32, u64)>, StoreError> {
        let tx = self.db.begin_read()?;
        let topics: Vec<String> = tx
            .open_table(NEXT)?
            .iter()?
            .map(|e| e.map(|(k, _)| k.value().to_string()))
            .collect::<Result<_, _>>()?;
        // Per topic and partition, the lowest position any group has committed.
        let mut committed: HashMap<(String, u32), u64> = HashMap::new();
        let mut read_by_a_group: std::collections::HashSet<String> = Default::default();
        for entry in tx.open_table(POSITIONS)?.iter()? {
            let (k, next) = entry?;
            let (_, topic, partition) = k.value();
            read_by_a_group.insert(topic.to_string());
            let slot = committed
                .entry((topic.to_string(), partition))
                .or_insert(u64::MAX);
            *slot = (*slot).min(next.value());
        }
        let log = tx.open_table(LOG)?;
        let mut out = Vec::new();
        for topic in topics {
            for entry in log.range((topic.as_str(), 0)..=(topic.as_str(), u64::MAX))? {
                let (k, v) = entry?;
                let offset = k.value().1;
                let record = Record::decode(&topic, offset, v.value())?;
                if record.published_at_ms >= cutoff_ms {
                    break; // offsets grow with time: the rest of the topic is younger
                }
                let consumed = !read_by_a_group.contains(&topic)
                    || committed
                        .get(&(topic.clone(), record.partition))
                        .is_some_and(|next| offset < *next);
                if consumed {
                    out.push((topic.clone(), record.partition, offset));
                    if out.len() >= MAX_PER_PASS {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Embedded {
    /// Sweeps every [`SWEEP_EVERY`] until `shutdown`.
    pub(super) async fn run_retention(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                () = shutdown.cancelled() => return,
            }
            let retention = self.config().retention;
            let now = super::state::now_ms();
            let cutoff =
                now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            match self.blocking(move |s| s.sweep(now, cutoff)).await {
                Ok(swept) if swept != Swept::default() => tracing::info!(
                    expired_state_keys = swept.state_keys,
                    records = swept.records,
                    "embedded sidecar: retention removed old data"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("embedded sidecar: the retention sweep failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::state::{SaveOp, StateOp};

    fn record(partition: u32, at: i64) -> Record {
        Record {
            partition,
            key: None,
            published_at_ms: at,
            metadata: vec![],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn expired_keys_read_as_absent_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let save = |key: &str, ttl: Option<u64>| {
            StateOp::Upsert(SaveOp {
                key: key.into(),
                value: b"v".to_vec(),
                etag: None,
                first_write: true,
                ttl_secs: ttl,
            })
        };
        s.state_apply(
            "st",
            &[
                save("short", Some(0)),
                save("long", Some(3600)),
                save("forever", None),
            ],
        )
        .unwrap();
        assert_eq!(s.state_get("st", "short").unwrap(), None, "expired at once");
        assert!(s.state_get("st", "long").unwrap().is_some());
        // A first-write over an expired key succeeds.
        s.state_apply("st", &[save("short", Some(0))]).unwrap();
        let swept = s.sweep(crate::embedded::state::now_ms(), 0).unwrap();
        assert_eq!(swept.state_keys, 1);
        assert!(s.state_get("st", "long").unwrap().is_some());
        assert!(s.state_get("st", "forever").unwrap().is_some());
        // A later save without a TTL makes a key permanent again.
        s.state_apply(
            "st",
            &[StateOp::Upsert(SaveOp {
                key: "long".into(),
                value: b"w".to_vec(),
                etag: None,
                first_write: false,
                ttl_secs: None,
            })],
        )
        .unwrap();
        assert_eq!(s.sweep(i64::MAX, 0).unwrap().state_keys, 0);
    }

    #[test]
    fn old_records_go_once_every_group_is_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 2).unwrap();
        s.append_many(
            "read",
            &[record(0, 10), record(1, 10), record(0, 10), record(0, 500)],
        )
        .unwrap();
        s.append_many("unread", &[record(0, 10), record(0, 500)])
            .unwrap();
        // One group: partition 0 committed up to offset 2 (exclusive), partition 1 not at all.
        s.commit("group", "read", 0, 2).unwrap();
        s.commit("group", "read", 1, 0).unwrap();
        let swept = s.sweep(0, 100).unwrap();
        // read: offset 0 (p0, consumed) goes; offset 1 (p1, unconsumed) and 2 (p0 at the
        // position) stay; 3 is young. unread: offset 0 goes by age alone.
        assert_eq!(swept.records, 2);
        let left: Vec<u64> = s
            .read_topic("read", 0, 10)
            .unwrap()
            .iter()
            .map(|(o, _)| *o)
            .collect();
        assert_eq!(left, [1, 2, 3]);
        let left: Vec<u64> = s
            .read_topic("unread", 0, 10)
            .unwrap()
            .iter()
            .map(|(o, _)| *o)
            .collect();
        assert_eq!(left, [1]);
        assert_eq!(
            s.read_partition("read", 0, 0, 10).unwrap().len(),
            2,
            "the index follows"
        );
    }
}
