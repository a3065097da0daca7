//! The delivery loop: what daprd + `pubsub.kafka` do between the broker and the app.
//!
//! [`run`] waits for the app, fetches `GET /dapr/subscribe` once (with `dapr-app-id`), then runs one
//! consumer per (subscription, partition). A consumer reads its partition after the committed
//! position, in order, waking on publishes (a `watch` per topic, no polling), and for each
//! record loops until the app's verdict can be made durable:
//! - Ack: commit the position.
//! - Drop: append to the dead-letter topic (if any) and commit, in one transaction.
//! - Retry: wait (exponential from 100 ms, capped at `redelivery_backoff`, unlimited) and
//!   deliver the same record again; the partition waits meanwhile, so per-key order holds.
//!
//! At-least-once: the commit happens after the outcome, so a crash in between redelivers.
//! A new consumer group starts at offset 0 (`initialOffset: oldest`), so events published
//! before the first start are delivered. Shutdown: no new record is started, the in-flight
//! delivery finishes (a backoff wait is cut short: that message is redelivered on restart).

use std::sync::Arc;
use std::time::Duration;

use super::app_channel::AppChannel;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Embedded;
use super::deliver::{self, Verdict};
use super::error::StoreError;
use super::staging::Staging;
use super::store::Record;
use super::subscribe::{self, Subscription};

/// Records read from the store at a time by one consumer.
const BATCH: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

pub(super) async fn run(e: Embedded, app: AppChannel, shutdown: CancellationToken) {
    {
        // daprd waits for the app's port before it reads the subscriptions, however long.
        let mut waited = 0u32;
        while !app.is_listening().await {
            if waited % 100 == 20 {
                tracing::info!("embedded sidecar: waiting for the app to listen");
            }
            waited += 1;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
    let subs = fetch_subscriptions(&e, &app).await;
    e.set_subscriptions(&subs);
    let partitions = e.config().partitions;
    let mut tasks = JoinSet::new();
    for sub in subs {
        tracing::info!(topic = %sub.topic, routes = ?sub.routes, dead_letter_topic = ?sub.dead_letter_topic,
            raw_payload = sub.raw_payload, bulk = ?sub.bulk, "embedded sidecar: subscribed");
        let sub = Arc::new(sub);
        for partition in 0..partitions {
            let c = Consumer {
                e: e.clone(),
                app: app.clone(),
                sub: sub.clone(),
                partition,
                shutdown: shutdown.clone(),
            };
            tasks.spawn(c.run());
        }
    }
    shutdown.cancelled().await;
    while let Some(r) = tasks.join_next().await {
        if let Err(err) = r {
            tracing::error!("embedded sidecar: a consumer task failed: {err}");
        }
    }
}

/// `GET /dapr/subscribe`, once, read as daprd does: 200 + array, else no subscriptions.
async fn fetch_subscriptions(e: &Embedded, app: &AppChannel) -> Vec<Subscription> {
    let cfg = e.config();
    let req = Request::get("/dapr/subscribe")
        .header(header::CONTENT_TYPE, "application/json")
        .header("dapr-app-id", cfg.app_id.as_str())
        .body(Body::empty());
    let req = match req {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(
                "embedded sidecar: app id {:?} is not a valid header: {err}; no subscriptions",
                cfg.app_id
            );
            return Vec::new();
        }
    };
    let (status, body) = match app.call(req, 0).await {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(
                "embedded sidecar: GET /dapr/subscribe failed: {err}; no subscriptions"
            );
            return Vec::new();
        }
    };
    if status == StatusCode::NOT_FOUND {
        tracing::debug!("embedded sidecar: the app has no /dapr/subscribe (404)");
        return Vec::new();
    }
    if status != StatusCode::OK {
        tracing::error!(
            "embedded sidecar: app returned http status code {status} from subscription endpoint; no subscriptions"
        );
        return Vec::new();
    }
    match subscribe::parse(&body, &cfg.pubsub_name) {
        Ok(subs) => subs,
        Err(err) => {
            tracing::error!(
                "embedded sidecar: error decoding the app's subscriptions: {err}; no subscriptions started"
            );
            Vec::new()
        }
    }
}

pub(super) struct Consumer {
    pub e: Embedded,
    pub app: AppChannel,
    pub sub: Arc<Subscription>,
    pub partition: u32,
    pub shutdown: CancellationToken,
}

/// Why a delivery's staged writes did not commit.
enum Uncommitted {
    /// A key it read or wrote changed meanwhile: deliver again at once.
    Raced,
    /// Storage failed: deliver again after this wait.
    Failed(Duration),
}

/// Whether a consumer goes on.
pub(super) enum Flow {
    Continue,
    Stop,
}

impl Consumer {
    async fn run(self) {
        let topic = self.sub.topic.clone();
        let mut rx = self.e.watch(&topic);
        let mut next = None;
        let mut backoff = self.backoff();
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            rx.borrow_and_update(); // what we read below covers every publish seen so far
            let (group, p) = (self.e.config().app_id.clone(), self.partition);
            let (t, from) = (topic.clone(), next);
            let read = self
                .e
                .blocking(move |s| {
                    let from = match from {
                        Some(n) => n,
                        None => s.position(&group, &t, p)?,
                    };
                    Ok((from, s.read_partition(&t, p, from, BATCH)?))
                })
                .await;
            let (from, batch) = match read {
                Ok(r) => r,
                Err(err) => {
                    tracing::error!(
                        topic,
                        partition = p,
                        "embedded sidecar: reading the topic failed: {err}"
                    );
                    if let Flow::Stop = self.sleep(backoff.next()).await {
                        return;
                    }
                    continue;
                }
            };
            next = Some(from);
            if batch.is_empty() {
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = self.shutdown.cancelled() => return,
                }
                continue;
            }
            let flow = match self.sub.bulk {
                Some(cfg) => self.bulk(batch, cfg).await,
                None => self.singles(batch).await,
            };
            match flow {
                (Flow::Continue, n) => next = Some(n),
                (Flow::Stop, _) => return,
            }
        }
    }

    /// Delivers `batch` one record at a time; returns the next offset to read.
    async fn singles(&self, batch: Vec<(u64, Record)>) -> (Flow, u64) {
        let mut next = batch.first().map_or(0, |(o, _)| *o);
        for (offset, rec) in batch {
            if self.shutdown.is_cancelled() {
                return (Flow::Stop, next);
            }
            if let Flow::Stop = self.one(offset, &rec).await {
                return (Flow::Stop, next);
            }
            next = offset + 1;
        }
        (Flow::Continue, next)
    }

    /// Delivers one record until its verdict is durable (or shutdown).
    async fn one(&self, offset: u64, rec: &Record) -> Flow {
        let topic = &self.sub.topic;
        let headers = deliver::broker_metadata(topic, offset, rec);
        let mut backoff = self.backoff();
        let mut attempt = 1u32;
        loop {
            // The in-process host's writes for this delivery commit with its position
            // (staging.rs); an app over HTTP writes through the API, as daprd's apps do.
            let staging = matches!(self.app, AppChannel::InProcess(_)).then(Staging::default);
            let verdict = match deliver::prepare(&self.sub, rec, chrono::Utc::now()) {
                Ok(p) => {
                    let delivery =
                        deliver::deliver(&self.app, &self.sub, &p, &headers, self.partition);
                    Staging::scope(staging.clone(), delivery).await
                }
                Err(v) => v,
            };
            // A commit that lost a race is not the app's failure: deliver again at once, and do
            // not count it against the redelivery limit.
            let mut raced = false;
            let settled = match verdict {
                Verdict::Ack => match staging {
                    Some(staging) => match self.commit_staged(offset + 1, staging).await {
                        Err(Uncommitted::Raced) => {
                            raced = true;
                            Err(Duration::ZERO)
                        }
                        Err(Uncommitted::Failed(wait)) => Err(wait),
                        Ok(()) => Ok(()),
                    },
                    None => self.settle(offset + 1, Vec::new()).await,
                },
                Verdict::Drop(why) => {
                    self.settle(offset + 1, vec![(offset, rec.clone(), why)])
                        .await
                }
                Verdict::Retry(why) if self.redeliveries_spent(attempt) => {
                    // daprd's resiliency `maxRetries`: then the record goes to the dead-letter
                    // topic, so one message can never hold its partition for good.
                    let why = format!("{why}; given up after {attempt} deliveries");
                    self.settle(offset + 1, vec![(offset, rec.clone(), why)])
                        .await
                }
                Verdict::Retry(why) => {
                    let wait = backoff.next();
                    tracing::warn!(
                        topic,
                        partition = self.partition,
                        offset,
                        attempt,
                        "embedded sidecar: delivery failed ({why}); redelivering in {wait:?}"
                    );
                    Err(wait)
                }
            };
            match settled {
                Ok(()) => return Flow::Continue,
                Err(wait) => {
                    if let Flow::Stop = self.sleep(wait).await {
                        return Flow::Stop;
                    }
                }
            }
            if !raced {
                attempt += 1;
            }
        }
    }

    /// Commits `next` after forwarding `dropped` to the dead-letter topic (if the subscription
    /// has one; else they are only logged), in one transaction. `Err(wait)`: storage failed,
    /// deliver again after `wait` (at-least-once).
    pub(super) async fn settle(
        &self,
        next: u64,
        dropped: Vec<(u64, Record, String)>,
    ) -> Result<(), Duration> {
        let sub = &self.sub;
        for (offset, _, why) in &dropped {
            match &sub.dead_letter_topic {
                Some(dlq) => tracing::warn!(topic = %sub.topic, partition = self.partition, offset,
                    "embedded sidecar: message dropped ({why}); forwarded to dead-letter topic {dlq}"),
                None => tracing::warn!(topic = %sub.topic, partition = self.partition, offset,
                    "embedded sidecar: message dropped ({why}); no deadLetterTopic, so it is gone"),
            }
        }
        let (group, topic, p) = (
            self.e.config().app_id.clone(),
            sub.topic.clone(),
            self.partition,
        );
        let dlq = sub.dead_letter_topic.clone();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let result: Result<Vec<u64>, StoreError> = self
            .e
            .blocking(move |s| match &dlq {
                Some(dlq) if !dropped.is_empty() => {
                    // Original bytes, key, metadata and partition; republished now.
                    let recs: Vec<Record> = dropped
                        .into_iter()
                        .map(|(_, r, _)| Record {
                            published_at_ms: now_ms,
                            ..r
                        })
                        .collect();
                    s.commit_with_dead_letters(&group, &topic, p, next, dlq, &recs)
                }
                _ => s.commit(&group, &topic, p, next).map(|()| Vec::new()),
            })
            .await;
        match result {
            Ok(offsets) => {
                if let (Some(dlq), Some(last)) = (&sub.dead_letter_topic, offsets.last()) {
                    self.e.notify(dlq, *last);
                }
                Ok(())
            }
            Err(err) => {
                let wait = self.e.config().redelivery_backoff.max(FIRST_BACKOFF);
                tracing::error!(topic = %sub.topic, partition = self.partition,
                    "embedded sidecar: could not commit a delivery outcome ({err}); redelivering in {wait:?}");
                Err(wait)
            }
        }
    }

    /// Commits what the delivery staged together with `next` (staging.rs); when it did not
    /// commit, the message is delivered again.
    async fn commit_staged(&self, next: u64, staging: Staging) -> Result<(), Uncommitted> {
        let staged = staging.take();
        let (group, topic, p) = (
            self.e.config().app_id.clone(),
            self.sub.topic.clone(),
            self.partition,
        );
        let has_jobs = !staged.jobs.is_empty();
        let result = self
            .e
            .blocking(move |s| s.commit_delivery((&group, &topic, p, next), &staged))
            .await;
        match result {
            Ok(appended) => {
                for (topic, offset) in appended {
                    self.e.notify(&topic, offset);
                }
                if has_jobs {
                    self.e.wake_scheduler();
                }
                Ok(())
            }
            Err(err @ StoreError::Raced { .. }) => {
                tracing::debug!(topic = %self.sub.topic, partition = self.partition,
                    "embedded sidecar: {err}");
                Err(Uncommitted::Raced)
            }
            Err(err) => {
                let wait = self.e.config().redelivery_backoff.max(FIRST_BACKOFF);
                tracing::warn!(topic = %self.sub.topic, partition = self.partition,
                    "embedded sidecar: the delivery's writes did not commit ({err}); redelivering in {wait:?}");
                Err(Uncommitted::Failed(wait))
            }
        }
    }

    /// Whether a record delivered `attempt` times may not be delivered again.
    pub(super) fn redeliveries_spent(&self, attempt: u32) -> bool {
        let max = self.e.config().max_redeliveries;
        max != 0 && attempt > max
    }

    pub(super) fn backoff(&self) -> Backoff {
        Backoff::new(self.e.config().redelivery_backoff)
    }

    /// Sleeps unless shutdown comes first.
    pub(super) async fn sleep(&self, d: Duration) -> Flow {
        tokio::select! {
            () = tokio::time::sleep(d) => Flow::Continue,
            () = self.shutdown.cancelled() => Flow::Stop,
        }
    }
}

/// Exponential backoff from 100 ms (or `max`, if smaller), doubling up to `max`.
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        let max = max.max(Duration::from_millis(1));
        Backoff {
            next: FIRST_BACKOFF.min(max),
            max,
        }
    }

    pub fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(self.max);
        d
    }
}
