//! Group commit of appends: publishes that arrive while a commit is running are appended
//! together in the next transaction, one fsync for all of them.
//!
//! Contract: `append` answers only after the transaction holding its records is committed with
//! redb's `Durability::Immediate`, so a power cut loses nothing that was acknowledged, exactly
//! as with one transaction per publish. One committer runs at a time, on the blocking pool;
//! it starts when the first append finds none running and stops when it finds the queue empty,
//! so an idle sidecar holds no thread. A failed transaction fails every append in it (none of
//! their records is stored); an append's own records are all stored or none (bulk publish).
//! Order: appends are committed in arrival order, so offsets follow it.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::oneshot;

use super::error::StoreError;
use super::store::{Record, Store};

/// Appends waiting for the next commit, and whether a committer is running.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Append>,
    committing: bool,
}

struct Append {
    topic: String,
    recs: Vec<Record>,
    done: oneshot::Sender<Result<Vec<u64>, StoreError>>,
}

impl GroupCommit {
    /// Appends `recs` to `topic` in the next group transaction; their offsets once durable.
    pub async fn append(
        self: &Arc<Self>,
        store: Arc<impl AsRef<Store> + Send + Sync + 'static>,
        topic: &str,
        recs: Vec<Record>,
    ) -> Result<Vec<u64>, StoreError> {
        let (done, committed) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().expect("group commit lock");
            queue.waiting.push(Append {
                topic: topic.to_string(),
                recs,
                done,
            });
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            let group = self.clone();
            // Weak: once every append is answered, the committer must not be what keeps the
            // store (and its database file) open; a close followed by a reopen in the same
            // process would find the file still locked.
            let store = Arc::downgrade(&store);
            tokio::task::spawn_blocking(move || group.commit_until_idle(&store));
        }
        committed
            .await
            .unwrap_or_else(|_| Err(StoreError::Task("the group commit stopped".into())))
    }

    /// Commits what is waiting, again and again, until nothing is; holds the store only while
    /// a transaction runs.
    fn commit_until_idle<S: AsRef<Store>>(&self, store: &Weak<S>) {
        // If a commit panics, the next append starts a new committer; the waiting ones see
        // their sender dropped and fail.
        struct Idle<'a>(&'a GroupCommit);
        impl Drop for Idle<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut queue = self.0.queue.lock().unwrap_or_else(|p| p.into_inner());
                    queue.committing = false;
                    queue.waiting.clear();
                }
            }
        }
        let _idle = Idle(self);
        loop {
            let group = {
                let mut queue = self.queue.lock().expect("group commit lock");
                if queue.waiting.is_empty() {
                    queue.committing = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let batches: Vec<(&str, &[Record])> = group
                .iter()
                .map(|a| (a.topic.as_str(), a.recs.as_slice()))
                .collect();
            let committed = match store.upgrade() {
                Some(store) => (*store).as_ref().append_groups(&batches),
                None => Err(StoreError::Task("the store is closed".into())),
            };
            match committed {
                Ok(offsets) => {
                    for (append, offsets) in group.into_iter().zip(offsets) {
                        let _ = append.done.send(Ok(offsets));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for append in group {
                        let _ = append.done.send(Err(StoreError::Task(why.clone())));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Held(Store);
    impl AsRef<Store> for Held {
        fn as_ref(&self) -> &Store {
            &self.0
        }
    }

    fn rec(body: String) -> Record {
        Record {
            partition: 0,
            key: None,
            published_at_ms: 1,
            metadata: Vec::new(),
            body: body.into_bytes(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_are_each_stored_whole_and_durable_before_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Held(Store::open(dir.path(), 1).unwrap()));
        let group = Arc::new(GroupCommit::default());
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let (store, group) = (store.clone(), group.clone());
                tokio::spawn(async move {
                    let recs = (0..3).map(|i| rec(format!("{n}-{i}"))).collect();
                    (n, group.append(store, "t", recs).await.unwrap())
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            let (n, offsets) = task.await.unwrap();
            assert_eq!(offsets.len(), 3);
            assert_eq!(
                offsets[1],
                offsets[0] + 1,
                "an append's records are adjacent"
            );
            assert_eq!(offsets[2], offsets[0] + 2);
            // Answered only once stored: every record reads back at its offset.
            let read = store.0.read_topic("t", offsets[0], 3).unwrap();
            let bodies: Vec<String> = read
                .iter()
                .map(|(_, r)| String::from_utf8(r.body.clone()).unwrap())
                .collect();
            assert_eq!(bodies, [0, 1, 2].map(|i| format!("{n}-{i}")));
            all.extend(offsets);
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..192).collect::<Vec<u64>>(),
            "no offset lost or shared"
        );
    }
}
