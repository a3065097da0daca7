//! State store semantics, Redis-flavoured (docs/dapr-contract.md §5 State).
//!
//! ETags are per-key counters `"1"`, `"2"`, ... (what `state.redis` returns). A save:
//! - with an etag: applies only if it equals the current one (missing key = mismatch) -> 409;
//!   a non-numeric etag is 400, as Redis/Postgres answer;
//! - without an etag, `last-write` (default): overwrites;
//! - without an etag, `first-write`: inserts only if absent, else daprd's Redis answer: 500
//!   (here regardless of how the key was first written: insert-if-absent is what users mean).
//!
//! A delete with an etag (`If-Match`) applies only at that etag; without one it always succeeds.
//!
//! A request of several items (save, transaction) is one redb transaction: all or nothing
//! (daprd's Redis bulk save is not atomic; nobody relies on partial success). Values are stored
//! as the given bytes.
//!
//! TTLs (`metadata.ttlInSeconds`, as `state.redis` takes them): a save with a TTL expires the key
//! that many seconds later; a save without one (or with `-1`/`0`) makes it permanent again, as
//! Redis `SET` does. An expired key reads as absent at once (a first-write over it succeeds) and
//! is removed by the background sweep (`retention.rs`). Expiry times live in their own table,
//! so values written before TTLs existed read the same.

use axum::http::StatusCode;
use redb::ReadableTable;

use super::error::{ApiError, StoreError};
use super::store::{STATE, STATE_EXPIRY, Store};

/// One write of a save, delete or transaction request.
#[derive(Debug, Clone)]
pub(crate) enum StateOp {
    Upsert(SaveOp),
    Delete { key: String, etag: Option<String> },
}

impl StateOp {
    pub fn key(&self) -> &str {
        match self {
            StateOp::Upsert(op) => &op.key,
            StateOp::Delete { key, .. } => key,
        }
    }
}

/// One item of a save request.
#[derive(Debug, Clone)]
pub(crate) struct SaveOp {
    pub key: String,
    pub value: Vec<u8>,
    pub etag: Option<String>,
    pub first_write: bool,
    /// Seconds until the key expires; `None` keeps it forever.
    pub ttl_secs: Option<u64>,
}

impl From<crate::sidecar::SaveItem> for SaveOp {
    /// A save the in-process host asks for, as the store applies it (first-write with an etag
    /// is daprd's "only over this version").
    fn from(item: crate::sidecar::SaveItem) -> SaveOp {
        use crate::sidecar::Concurrency;
        let (etag, first_write) = match item.concurrency {
            Concurrency::LastWrite => (None, false),
            Concurrency::FirstWrite => (None, true),
            Concurrency::IfMatch(etag) => (Some(etag), true),
        };
        SaveOp {
            key: item.key,
            value: item.value.to_vec(),
            etag,
            first_write,
            ttl_secs: item.ttl.map(|t| t.as_secs()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error(
        "possible etag mismatch. error from state store: etag {etag:?} does not match key {key:?}"
    )]
    EtagMismatch { key: String, etag: String },
    #[error("invalid etag {etag:?} for key {key:?}: etags of this store are numbers")]
    InvalidEtag { key: String, etag: String },
    #[error(
        "failed to set key {key}: it exists and the write asked for first-write without an etag"
    )]
    FirstWriteExists { key: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! redb_into_state_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> Self { StateError::Store(StoreError::Redb(e.into())) }
        }
    )*};
}
redb_into_state_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl StateError {
    /// daprd's answer for this failure of a save (`ERR_STATE_SAVE`) or delete (`ERR_STATE_DELETE`).
    /// A transaction (`ERR_STATE_TRANSACTION`) answers 500 for every failure, mismatch included.
    pub fn into_api(self, code: &'static str) -> ApiError {
        let msg = self.to_string();
        let mut e = match self {
            StateError::EtagMismatch { .. } => ApiError::conflict(StatusCode::CONFLICT, code, msg),
            StateError::InvalidEtag { .. } => {
                ApiError::rejected(StatusCode::BAD_REQUEST, code, msg)
            }
            StateError::FirstWriteExists { .. } => {
                ApiError::conflict(StatusCode::INTERNAL_SERVER_ERROR, code, msg)
            }
            StateError::Store(e) => ApiError::storage(code, e),
        };
        if code == "ERR_STATE_TRANSACTION" {
            e.status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        e
    }
}

fn split(stored: &[u8]) -> (u64, Vec<u8>) {
    let (etag, value) = stored.split_at(8.min(stored.len()));
    let etag = etag.try_into().map(u64::from_le_bytes).unwrap_or(0);
    (etag, value.to_vec())
}

fn join(etag: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&etag.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn check_etag(key: &str, given: &str, current: Option<u64>) -> Result<(), StateError> {
    let n: u64 = given.parse().map_err(|_| StateError::InvalidEtag {
        key: key.to_string(),
        etag: given.to_string(),
    })?;
    if current == Some(n) {
        Ok(())
    } else {
        Err(StateError::EtagMismatch {
            key: key.to_string(),
            etag: given.to_string(),
        })
    }
}

/// A stored value and its version (the etag).
pub type Versioned = (u64, Vec<u8>);

impl Store {
    /// The value and etag of `key`, if present.
    pub fn state_get(&self, store: &str, key: &str) -> Result<Option<Versioned>, StoreError> {
        let mut found = self.state_get_many(store, std::slice::from_ref(&key))?;
        Ok(found.pop().flatten())
    }

    /// [`state_get`](Self::state_get) of every key, in order, from one read transaction.
    pub fn state_get_many(
        &self,
        store: &str,
        keys: &[impl AsRef<str>],
    ) -> Result<Vec<Option<Versioned>>, StoreError> {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read()?;
        let t = tx.open_table(STATE)?;
        let expiry = tx.open_table(STATE_EXPIRY)?;
        let now = now_ms();
        keys.iter()
            .map(|key| {
                let key = key.as_ref();
                if expiry
                    .get((store, key))?
                    .is_some_and(|at| at.value() <= now)
                {
                    return Ok(None);
                }
                Ok(t.get((store, key))?.map(|v| split(v.value())))
            })
            .collect()
    }

    /// Applies every op or none.
    pub fn state_apply(&self, store: &str, ops: &[StateOp]) -> Result<(), StateError> {
        let tx = self.db.begin_write()?;
        {
            let mut tables = StateTables::open(&tx)?;
            for op in ops {
                let key = op.key();
                let current = tables.current(store, key)?.map(|(version, _)| version);
                match op {
                    StateOp::Upsert(op) => {
                        match (&op.etag, op.first_write) {
                            (Some(etag), _) => check_etag(key, etag, current)?,
                            (None, true) if current.is_some() => {
                                return Err(StateError::FirstWriteExists {
                                    key: key.to_string(),
                                });
                            }
                            (None, _) => {}
                        }
                        let next = current.unwrap_or(0) + 1;
                        tables.put(store, key, next, &op.value, op.ttl_secs)?;
                    }
                    StateOp::Delete { etag, .. } => {
                        if let Some(etag) = etag {
                            check_etag(key, etag, current)?;
                        }
                        tables.remove(store, key)?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The state and expiry tables inside one write transaction: the one place that reads a key
/// as the store sees it (expired = absent) and writes a value with its TTL.
pub(super) struct StateTables<'tx> {
    values: redb::Table<'tx, (&'static str, &'static str), &'static [u8]>,
    expiry: redb::Table<'tx, (&'static str, &'static str), i64>,
    now: i64,
}

impl<'tx> StateTables<'tx> {
    pub fn open(tx: &'tx redb::WriteTransaction) -> Result<StateTables<'tx>, redb::TableError> {
        Ok(StateTables {
            values: tx.open_table(STATE)?,
            expiry: tx.open_table(STATE_EXPIRY)?,
            now: now_ms(),
        })
    }

    /// The version and value of `key`; `None` when absent or expired.
    pub fn current(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, redb::StorageError> {
        let expired = self
            .expiry
            .get((store, key))?
            .is_some_and(|at| at.value() <= self.now);
        if expired {
            return Ok(None);
        }
        Ok(self.values.get((store, key))?.map(|v| split(v.value())))
    }

    /// Writes `value` at `version`, expiring `ttl_secs` from now (`None`: never).
    pub fn put(
        &mut self,
        store: &str,
        key: &str,
        version: u64,
        value: &[u8],
        ttl_secs: Option<u64>,
    ) -> Result<(), redb::StorageError> {
        self.values
            .insert((store, key), join(version, value).as_slice())?;
        match ttl_secs {
            Some(secs) => {
                let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
                self.expiry
                    .insert((store, key), self.now.saturating_add(ms))?;
            }
            None => {
                self.expiry.remove((store, key))?;
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, store: &str, key: &str) -> Result<(), redb::StorageError> {
        self.values.remove((store, key))?;
        self.expiry.remove((store, key))?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, the clock TTLs are measured on.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, value: &str, etag: Option<&str>, first_write: bool) -> StateOp {
        StateOp::Upsert(SaveOp {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            etag: etag.map(str::to_string),
            first_write,
            ttl_secs: None,
        })
    }

    fn del(key: &str, etag: Option<&str>) -> StateOp {
        StateOp::Delete {
            key: key.into(),
            etag: etag.map(str::to_string),
        }
    }

    #[test]
    fn etags_increment_and_guard_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        assert_eq!(s.state_get("st", "k").unwrap(), None);
        s.state_apply("st", &[op("k", "1", None, false)]).unwrap();
        assert_eq!(s.state_get("st", "k").unwrap(), Some((1, b"1".to_vec())));
        s.state_apply("st", &[op("k", "2", Some("1"), false)])
            .unwrap();
        assert_eq!(s.state_get("st", "k").unwrap(), Some((2, b"2".to_vec())));
        // Stale etag, etag on a missing key, non-numeric etag.
        let e = s
            .state_apply("st", &[op("k", "x", Some("1"), false)])
            .unwrap_err();
        assert_eq!(e.into_api("ERR_STATE_SAVE").status, StatusCode::CONFLICT);
        let e = s
            .state_apply("st", &[op("new", "x", Some("1"), false)])
            .unwrap_err();
        assert!(matches!(e, StateError::EtagMismatch { .. }));
        let e = s
            .state_apply("st", &[op("k", "x", Some("abc"), false)])
            .unwrap_err();
        assert_eq!(e.into_api("ERR_STATE_SAVE").status, StatusCode::BAD_REQUEST);
        // first-write without etag: insert-if-absent; existing -> 500 Conflict class.
        s.state_apply("st", &[op("fw", "a", None, true)]).unwrap();
        let e = s
            .state_apply("st", &[op("fw", "b", None, true)])
            .unwrap_err()
            .into_api("ERR_STATE_SAVE");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.class, super::super::error::Class::Conflict);
        // All or nothing.
        let e = s.state_apply(
            "st",
            &[op("k", "3", None, false), op("fw", "c", None, true)],
        );
        assert!(e.is_err());
        assert_eq!(s.state_get("st", "k").unwrap(), Some((2, b"2".to_vec())));
        // Stores are separate namespaces.
        assert_eq!(s.state_get("other", "k").unwrap(), None);
    }

    #[test]
    fn delete_with_and_without_etag() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        s.state_apply("st", &[del("missing", None)]).unwrap();
        assert!(matches!(
            s.state_apply("st", &[del("missing", Some("1"))]),
            Err(StateError::EtagMismatch { .. })
        ));
        s.state_apply("st", &[op("k", "v", None, false)]).unwrap();
        assert!(s.state_apply("st", &[del("k", Some("2"))]).is_err());
        s.state_apply("st", &[del("k", Some("1"))]).unwrap();
        assert_eq!(s.state_get("st", "k").unwrap(), None);
        // A re-created key starts again at etag 1.
        s.state_apply("st", &[op("k", "v", None, false)]).unwrap();
        assert_eq!(s.state_get("st", "k").unwrap().unwrap().0, 1);
    }
}
