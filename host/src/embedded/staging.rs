//! One transaction per delivery: in `serve`'s embedded mode, what the host writes while it
//! handles a message (publishes, state, jobs) commits together with the consumer position.
//!
//! Contract:
//! - When the sidecar delivers a single message to the in-process app, it opens a [`Staging`]
//!   for it (a tokio task-local, carried into the app's handler task by `app_channel.rs`). Every
//!   sidecar call the pipeline makes for that delivery is staged instead of written: publishes
//!   become records to append, state writes an overlay that reads see at once (with the etags
//!   and first-write answers the store would give), job changes a list.
//! - When the app answers SUCCESS, the staged records, state and jobs and the position past the
//!   message commit in ONE redb transaction (`Store::commit_delivery`): the emits, the dedupe
//!   record and the position are durable together or not at all. A crash before it, a RETRY or
//!   a DROP discards them, and the message is delivered again as if it had never been handled.
//! - Optimistic concurrency: every key the delivery reads or writes remembers the version and
//!   bytes it saw first. Writers outside the delivery (a job callback popping a parked retry,
//!   another partition's delivery) may change one meanwhile; then the commit fails and the
//!   message is delivered again at once, so no update is lost and no decision rests on a value
//!   that changed. Bytes are compared as well as versions because versions restart after a
//!   delete: a key deleted and re-created in between is caught too.
//! - Calls outside a delivery (job callbacks, the HTTP API, bulk deliveries, an app over HTTP)
//!   write directly, as before.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::error::StoreError;
use super::jobs::{Job, delete_job_in, put_job_in};
use super::state::StateTables;
use super::store::{POSITIONS, Record, Store, append_in};

tokio::task_local! {
    static DELIVERY: Staging;
}

/// The writes of one delivery, not yet durable.
#[derive(Clone, Default)]
pub(crate) struct Staging(Arc<Mutex<Staged>>);

/// A state key as the delivery saw and left it.
#[derive(Debug, Clone)]
pub(crate) struct StagedKey {
    /// The stored version and bytes when the delivery first read or wrote the key (None: absent).
    pub base: Option<(u64, Vec<u8>)>,
    /// Whether the delivery wrote it (else it is only checked at the commit).
    pub written: bool,
    /// The version now (None: deleted or absent).
    pub version: Option<u64>,
    pub value: Vec<u8>,
    pub ttl_secs: Option<u64>,
}

impl StagedKey {
    fn seen(base: Option<(u64, Vec<u8>)>) -> StagedKey {
        StagedKey {
            version: base.as_ref().map(|(v, _)| *v),
            value: base.as_ref().map(|(_, b)| b.clone()).unwrap_or_default(),
            base,
            written: false,
            ttl_secs: None,
        }
    }
}

/// A job change.
#[derive(Debug, Clone)]
pub(crate) enum StagedJob {
    Put(Job),
    Delete(String),
}

#[derive(Default)]
pub(crate) struct Staged {
    /// (topic, record) in publish order.
    pub records: Vec<(String, Record)>,
    /// (state store, key) -> its staged state.
    pub state: BTreeMap<(String, String), StagedKey>,
    pub jobs: Vec<StagedJob>,
}

/// Why a staged state write is refused (what the store would answer).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StageRefusal {
    /// An etag that is not the key's current one.
    EtagMismatch,
    /// First-write over an existing key.
    Exists,
}

impl Staging {
    /// The staging of the delivery this task works for, if any.
    pub fn current() -> Option<Staging> {
        DELIVERY.try_with(Clone::clone).ok()
    }

    /// Runs `f` with `staging` (if any) as the current one.
    pub async fn scope<F: std::future::Future>(staging: Option<Staging>, f: F) -> F::Output {
        match staging {
            Some(s) => DELIVERY.scope(s, f).await,
            None => f.await,
        }
    }

    pub fn publish(&self, topic: &str, rec: Record) {
        self.lock().records.push((topic.to_string(), rec));
    }

    /// The key as the delivery sees it: `Some(None)` when absent or deleted, `None` when the
    /// delivery has not met it yet (read the store, then [`Staging::saw`]).
    pub fn get(&self, store: &str, key: &str) -> Option<Option<(u64, Vec<u8>)>> {
        let staged = self.lock();
        let k = staged.state.get(&(store.to_string(), key.to_string()))?;
        Some(k.version.map(|v| (v, k.value.clone())))
    }

    /// Records what the store held for a key the delivery read first (checked at the commit).
    pub fn saw(&self, store: &str, key: &str, stored: Option<(u64, Vec<u8>)>) {
        self.lock()
            .state
            .entry((store.to_string(), key.to_string()))
            .or_insert_with(|| StagedKey::seen(stored));
    }

    /// Stages a save or delete (`value: None`) of `key` under `etag` / `first_write`, as the
    /// store would apply it. `stored` is what the store holds, read when the delivery meets the
    /// key first.
    pub fn write(
        &self,
        store: &str,
        key: &str,
        value: Option<(Vec<u8>, Option<u64>)>,
        etag: Option<u64>,
        first_write: bool,
        stored: impl FnOnce() -> Option<(u64, Vec<u8>)>,
    ) -> Result<(), StageRefusal> {
        let mut staged = self.lock();
        let entry = staged
            .state
            .entry((store.to_string(), key.to_string()))
            .or_insert_with(|| StagedKey::seen(stored()));
        match (etag, first_write) {
            (Some(e), _) if entry.version != Some(e) => return Err(StageRefusal::EtagMismatch),
            (None, true) if value.is_some() && entry.version.is_some() => {
                return Err(StageRefusal::Exists);
            }
            _ => {}
        }
        entry.written = true;
        match value {
            Some((bytes, ttl_secs)) => {
                entry.version = Some(entry.version.unwrap_or(0) + 1);
                entry.value = bytes;
                entry.ttl_secs = ttl_secs;
            }
            None => {
                entry.version = None;
                entry.value.clear();
            }
        }
        Ok(())
    }

    pub fn job(&self, job: StagedJob) {
        self.lock().jobs.push(job);
    }

    /// Everything staged, for the commit.
    pub fn take(&self) -> Staged {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Staged> {
        // A panic while holding this lock cannot leave it half-written: every update is one
        // insert or push. Recover the data rather than poison the delivery.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store {
    /// Commits a delivery's staged writes and the consumer position past it (`next`) in one
    /// transaction; returns the appended (topic, offset)s. A staged key whose stored version
    /// moved since it was staged fails the whole commit ([`StoreError::Raced`]).
    pub(super) fn commit_delivery(
        &self,
        position: (&str, &str, u32, u64),
        staged: &Staged,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let (group, topic, partition, next) = position;
        let tx = self.db.begin_write()?;
        {
            let mut tables = StateTables::open(&tx)?;
            for ((store, key), k) in &staged.state {
                if tables.current(store, key)? != k.base {
                    return Err(StoreError::Raced { key: key.clone() });
                }
                match (k.written, k.version) {
                    (false, _) => {}
                    (true, Some(version)) => {
                        tables.put(store, key, version, &k.value, k.ttl_secs)?
                    }
                    (true, None) => tables.remove(store, key)?,
                }
            }
        }
        for job in &staged.jobs {
            match job {
                StagedJob::Put(job) => drop(put_job_in(&tx, job, true)?),
                StagedJob::Delete(name) => drop(delete_job_in(&tx, name)?),
            }
        }
        let mut appended = Vec::with_capacity(staged.records.len());
        for (to, rec) in &staged.records {
            appended.push((to.clone(), append_in(&tx, to, rec)?));
        }
        tx.open_table(POSITIONS)?
            .insert((group, topic, partition), next)?;
        tx.commit()?;
        Ok(appended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(s: &Staging, v: &str, etag: Option<u64>, first: bool) -> Result<(), StageRefusal> {
        s.write("st", "k", Some((v.into(), None)), etag, first, || {
            Some((3, b"x".to_vec()))
        })
    }

    #[test]
    fn reads_see_staged_writes_with_the_stores_etags() {
        let s = Staging::default();
        assert_eq!(s.get("st", "k"), None, "untouched: read the store");
        assert_eq!(save(&s, "a", None, true), Err(StageRefusal::Exists));
        assert_eq!(
            save(&s, "a", Some(2), false),
            Err(StageRefusal::EtagMismatch)
        );
        save(&s, "a", Some(3), false).unwrap();
        assert_eq!(s.get("st", "k"), Some(Some((4, b"a".to_vec()))));
        save(&s, "b", Some(4), false).unwrap();
        s.write("st", "k", None, None, false, || unreachable!())
            .unwrap();
        assert_eq!(s.get("st", "k"), Some(None));
        save(&s, "c", None, true).unwrap();
        let staged = s.take();
        let k = &staged.state[&("st".to_string(), "k".to_string())];
        assert_eq!(
            (&k.base, k.version, k.value.as_slice()),
            (&Some((3, b"x".to_vec())), Some(1), &b"c"[..])
        );
    }

    #[test]
    fn a_commit_fails_when_a_key_it_only_read_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1).unwrap();
        let upsert = |v: &str| {
            super::super::state::StateOp::Upsert(super::super::state::SaveOp {
                key: "k".into(),
                value: v.into(),
                etag: None,
                first_write: false,
                ttl_secs: None,
            })
        };
        store.state_apply("st", &[upsert("a")]).unwrap();
        let s = Staging::default();
        s.saw("st", "k", store.state_get("st", "k").unwrap());
        s.publish("out", rec());
        // Deleted and written again by someone else: same version, other bytes.
        store
            .state_apply(
                "st",
                &[super::super::state::StateOp::Delete {
                    key: "k".into(),
                    etag: None,
                }],
            )
            .unwrap();
        store.state_apply("st", &[upsert("b")]).unwrap();
        let raced = store.commit_delivery(("g", "t", 0, 1), &s.take());
        assert!(matches!(raced, Err(StoreError::Raced { .. })), "{raced:?}");
        assert!(
            store.read_topic("out", 0, 10).unwrap().is_empty(),
            "nothing of it committed"
        );
        assert_eq!(store.position("g", "t", 0).unwrap(), 0);
    }

    #[tokio::test]
    async fn the_scope_is_what_current_sees() {
        assert!(Staging::current().is_none());
        let s = Staging::default();
        Staging::scope(Some(s.clone()), async {
            Staging::current().unwrap().publish("t", rec());
        })
        .await;
        assert_eq!(s.take().records.len(), 1);
    }

    fn rec() -> Record {
        Record {
            partition: 0,
            key: None,
            published_at_ms: 0,
            metadata: Vec::new(),
            body: Vec::new(),
        }
    }
}
