//! The one redb file behind the embedded sidecar: topic logs, consumer positions, state.
//!
//! Owns the on-disk layout. Every method is blocking (call it from `spawn_blocking`) and every
//! write is one committed transaction with redb's default `Durability::Immediate` (fsync), so
//! what a method returned `Ok` for survives `kill -9`.
//!
//! Layout:
//! - `topic_log`        (topic, offset) -> record. Offsets are a per-topic sequence from 0,
//!   assigned at publish, shared by all partitions of the topic (so `topics tail` can page one
//!   sequence; within a partition they are increasing, with gaps).
//! - `topic_partition`  (topic, partition, offset) -> (): the per-partition index consumers read.
//! - `topic_next`       topic -> next offset (= number of records).
//! - `consumer_next`    (group, topic, partition) -> next offset to deliver (the commit).
//! - `state`            (store, key) -> etag (u64 LE) ++ value bytes (see `state.rs`).
//! - `meta`             "partitions" -> u32 the file was created with.
//!
//! Fails with [`StoreError`] (I/O, corruption); nothing partial is ever committed.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::error::{EmbeddedError, StoreError};

pub(super) const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("topic_log");
pub(super) const PARTITION: TableDefinition<(&str, u32, u64), ()> =
    TableDefinition::new("topic_partition");
pub(super) const NEXT: TableDefinition<&str, u64> = TableDefinition::new("topic_next");
pub(super) const POSITIONS: TableDefinition<(&str, &str, u32), u64> =
    TableDefinition::new("consumer_next");
pub(super) const STATE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("state");
/// When a state key expires, in ms since the epoch (keys without a TTL are absent here).
pub(super) const STATE_EXPIRY: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("state_expiry");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Jobs API: name -> the job as JSON (`jobs.rs`).
pub(super) const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
/// Jobs API: (due time in ms since the epoch, name), the firing order.
pub(super) const JOBS_DUE: TableDefinition<(i64, &str), ()> = TableDefinition::new("jobs_due");

pub(crate) const FILE_NAME: &str = "task-events.redb";

/// One record of a topic, as stored and as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub partition: u32,
    /// The partition key (Kafka record key), if the publisher gave one.
    pub key: Option<String>,
    /// Unix milliseconds.
    pub published_at_ms: i64,
    /// The publish request's metadata: Kafka record headers, delivered as HTTP headers.
    pub metadata: Vec<(String, String)>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Record {
    /// `u32 LE header length ++ header JSON ++ body`: the body stays raw bytes.
    fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        let header = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(4 + header.len() + self.body.len());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.body);
        out
    }

    pub(super) fn decode(topic: &str, offset: u64, bytes: &[u8]) -> Result<Record, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: format!("{topic}@{offset}"),
            detail,
        };
        let len_bytes: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("shorter than its header length".into()))?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let header = bytes
            .get(4..4 + len)
            .ok_or_else(|| corrupt("header truncated".into()))?;
        let mut rec: Record = serde_json::from_slice(header).map_err(|e| corrupt(e.to_string()))?;
        rec.body = bytes[4 + len..].to_vec();
        Ok(rec)
    }
}

/// A topic and how far its consumers got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TopicInfo {
    pub topic: String,
    /// Number of records = the next offset to be assigned.
    pub records: u64,
    pub consumers: Vec<ConsumerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ConsumerInfo {
    pub group: String,
    pub partition: u32,
    /// The next offset this consumer will deliver; everything before it in its partition is done.
    pub next: u64,
}

pub(crate) struct Store {
    pub(super) db: Database,
    pub path: PathBuf,
}

impl Store {
    /// Opens or creates `dir/task-events.redb`, creating `dir`, and checks the partition count.
    pub fn open(dir: &Path, partitions: u32) -> Result<Store, EmbeddedError> {
        std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let storage = |source: redb::Error| EmbeddedError::Storage {
            file: path.clone(),
            source,
        };
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(EmbeddedError::Locked {
                    dir: dir.to_path_buf(),
                    file: path,
                });
            }
            Err(redb::DatabaseError::UpgradeRequired(found)) => {
                return Err(EmbeddedError::UpgradeRequired { file: path, found });
            }
            Err(e) => return Err(storage(e.into())),
        };
        // Create every table up front so readers never meet a missing one.
        let stored = (|| -> Result<u64, redb::Error> {
            let tx = db.begin_write()?;
            let stored = {
                tx.open_table(LOG)?;
                tx.open_table(PARTITION)?;
                tx.open_table(NEXT)?;
                tx.open_table(POSITIONS)?;
                tx.open_table(STATE)?;
                tx.open_table(STATE_EXPIRY)?;
                tx.open_table(JOBS)?;
                tx.open_table(JOBS_DUE)?;
                let mut meta = tx.open_table(META)?;
                let existing = meta.get("partitions")?.map(|v| v.value());
                match existing {
                    Some(n) => n,
                    None => {
                        meta.insert("partitions", u64::from(partitions))?;
                        u64::from(partitions)
                    }
                }
            };
            tx.commit()?;
            Ok(stored)
        })()
        .map_err(storage)?;
        if stored != u64::from(partitions) {
            return Err(EmbeddedError::PartitionsChanged {
                file: path,
                stored: u32::try_from(stored).unwrap_or(u32::MAX),
                configured: partitions,
            });
        }
        Ok(Store { db, path })
    }

    /// Appends all of `recs` to `topic` in one transaction; returns their offsets.
    #[cfg(test)]
    pub fn append_many(&self, topic: &str, recs: &[Record]) -> Result<Vec<u64>, StoreError> {
        let mut offsets = self.append_groups(&[(topic, recs)])?;
        Ok(offsets.pop().unwrap_or_default())
    }

    /// Appends every group's records to its topic, all in one transaction (group_commit.rs);
    /// returns each group's offsets.
    pub fn append_groups(&self, groups: &[(&str, &[Record])]) -> Result<Vec<Vec<u64>>, StoreError> {
        let tx = self.db.begin_write()?;
        let offsets = groups
            .iter()
            .map(|(topic, recs)| {
                recs.iter()
                    .map(|rec| append_in(&tx, topic, rec))
                    .collect::<Result<Vec<u64>, StoreError>>()
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit()?;
        Ok(offsets)
    }

    /// Records of `topic` with offset >= `from`, in offset order, at most `limit`.
    pub fn read_topic(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        let tx = self.db.begin_read()?;
        let log = tx.open_table(LOG)?;
        let mut out = Vec::new();
        for entry in log.range((topic, from)..=(topic, u64::MAX))?.take(limit) {
            let (k, v) = entry?;
            let offset = k.value().1;
            out.push((offset, Record::decode(topic, offset, v.value())?));
        }
        Ok(out)
    }

    /// Records of one partition of `topic` with offset >= `from`, in order, at most `limit`.
    pub fn read_partition(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        let tx = self.db.begin_read()?;
        let index = tx.open_table(PARTITION)?;
        let log = tx.open_table(LOG)?;
        let mut out = Vec::new();
        for entry in index
            .range((topic, partition, from)..=(topic, partition, u64::MAX))?
            .take(limit)
        {
            let offset = entry?.0.value().2;
            let bytes = log
                .get((topic, offset))?
                .ok_or_else(|| StoreError::Corrupt {
                    what: format!("{topic}@{offset}"),
                    detail: "indexed in its partition but missing from the log".into(),
                })?;
            out.push((offset, Record::decode(topic, offset, bytes.value())?));
        }
        Ok(out)
    }

    /// The committed position of a consumer: the next offset to deliver (0 for a new group,
    /// i.e. a new consumer starts at the oldest record, like `initialOffset: oldest`).
    pub fn position(&self, group: &str, topic: &str, partition: u32) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(POSITIONS)?;
        Ok(t.get((group, topic, partition))?.map_or(0, |v| v.value()))
    }

    /// Commits a consumer position.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(POSITIONS)?
            .insert((group, topic, partition), next)?;
        tx.commit()?;
        Ok(())
    }

    /// Appends `dead` to `dead_letter_topic` and commits the consumer position in ONE
    /// transaction: a dead-lettered message is neither lost nor forwarded twice. Returns the
    /// offsets of the dead letters.
    pub fn commit_with_dead_letters(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        next: u64,
        dead_letter_topic: &str,
        dead: &[Record],
    ) -> Result<Vec<u64>, StoreError> {
        let tx = self.db.begin_write()?;
        let offsets = dead
            .iter()
            .map(|rec| append_in(&tx, dead_letter_topic, rec))
            .collect::<Result<Vec<u64>, StoreError>>()?;
        tx.open_table(POSITIONS)?
            .insert((group, topic, partition), next)?;
        tx.commit()?;
        Ok(offsets)
    }

    /// Every topic with its record count and consumer positions, sorted by topic.
    pub fn topics(&self) -> Result<Vec<TopicInfo>, StoreError> {
        let tx = self.db.begin_read()?;
        let mut topics = Vec::new();
        for entry in tx.open_table(NEXT)?.iter()? {
            let (k, v) = entry?;
            topics.push(TopicInfo {
                topic: k.value().to_string(),
                records: v.value(),
                consumers: Vec::new(),
            });
        }
        for entry in tx.open_table(POSITIONS)?.iter()? {
            let (k, v) = entry?;
            let (group, topic, partition) = k.value();
            if let Some(t) = topics.iter_mut().find(|t| t.topic == topic) {
                t.consumers.push(ConsumerInfo {
                    group: group.to_string(),
                    partition,
                    next: v.value(),
                });
            }
        }
        Ok(topics)
    }
}

pub(super) fn append_in(
    tx: &redb::WriteTransaction,
    topic: &str,
    rec: &Record,
) -> Result<u64, StoreError> {
    let mut next = tx.open_table(NEXT)?;
    let offset = next.get(topic)?.map_or(0, |v| v.value());
    next.insert(topic, offset + 1)?;
    tx.open_table(LOG)?
        .insert((topic, offset), rec.encode().as_slice())?;
    tx.open_table(PARTITION)?
        .insert((topic, rec.partition, offset), ())?;
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: u32, body: &str) -> Record {
        Record {
            partition,
            key: Some("k".into()),
            published_at_ms: 1,
            metadata: vec![("partitionKey".into(), "k".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn append_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 2).unwrap();
            assert_eq!(s.append_many("t", &[rec(0, "a")]).unwrap()[0], 0);
            assert_eq!(s.append_many("t", &[rec(1, "b")]).unwrap()[0], 1);
            assert_eq!(s.append_many("t", &[rec(0, "c")]).unwrap()[0], 2);
            s.commit("g", "t", 0, 1).unwrap();
            let p0: Vec<u64> = s
                .read_partition("t", 0, 0, 10)
                .unwrap()
                .iter()
                .map(|r| r.0)
                .collect();
            assert_eq!(p0, vec![0, 2]);
            assert!(matches!(
                Store::open(dir.path(), 2),
                Err(EmbeddedError::Locked { .. })
            ));
        }
        let s = Store::open(dir.path(), 2).unwrap();
        let all = s.read_topic("t", 1, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, rec(1, "b"));
        assert_eq!(s.position("g", "t", 0).unwrap(), 1);
        assert_eq!(s.position("g", "t", 1).unwrap(), 0);
        assert_eq!(s.read_partition("t", 0, 1, 10).unwrap()[0].0, 2);
        let topics = s.topics().unwrap();
        assert_eq!((topics[0].topic.as_str(), topics[0].records), ("t", 3));
        assert_eq!(topics[0].consumers.len(), 1);
        drop(s);
        assert!(matches!(
            Store::open(dir.path(), 3),
            Err(EmbeddedError::PartitionsChanged {
                stored: 2,
                configured: 3,
                ..
            })
        ));
    }

    #[test]
    fn dead_letter_and_commit_is_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        s.append_many("t", &[rec(0, "x")]).unwrap();
        let dead = [rec(0, "x")];
        assert_eq!(
            s.commit_with_dead_letters("g", "t", 0, 1, "t-dlq", &dead)
                .unwrap(),
            vec![0]
        );
        assert_eq!(s.position("g", "t", 0).unwrap(), 1);
        assert_eq!(s.read_topic("t-dlq", 0, 10).unwrap()[0].1.body, b"x");
    }
}
