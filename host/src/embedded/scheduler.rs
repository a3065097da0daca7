//! Fires due jobs (`jobs.rs`) at the app, as daprd's scheduler does: `POST /job/{name}` with the
//! job's data as the body (`application/json`) and the app token.
//!
//! A job is removed (or moved to its next `@every` tick) only after the app answered 2xx, so a
//! firing interrupted by a crash happens again after the restart: at least once. A failure is
//! retried every second, three times, then given up with an error log. The loop sleeps until the
//! next due job, at most [`MAX_SLEEP`], and wakes at once when a job is scheduled, so a job fires
//! within milliseconds of its due time.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use tokio_util::sync::CancellationToken;

use super::Embedded;
use super::app_channel::AppChannel;
use super::jobs::Job;
use super::state::now_ms;

const MAX_SLEEP: Duration = Duration::from_secs(1);
const BATCH: usize = 64;
const RETRY_EVERY_MS: i64 = 1_000;
const MAX_FAILURES: u32 = 3;

impl Embedded {
    /// Runs until `shutdown`; starts firing once the app's subscriptions were read (the app
    /// is up).
    pub(super) async fn run_scheduler(&self, app: AppChannel, shutdown: CancellationToken) {
        while !self.is_ready() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = shutdown.cancelled() => return,
            }
        }
        loop {
            let now = now_ms();
            let (due, next) = match self.blocking(move |s| s.due_jobs(now, BATCH)).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!("embedded sidecar: reading due jobs failed: {e}");
                    (Vec::new(), None)
                }
            };
            let fired = due.len();
            let mut firings = tokio::task::JoinSet::new();
            for job in due {
                let (e, app) = (self.clone(), app.clone());
                firings.spawn(async move { e.fire(&app, job).await });
            }
            while firings.join_next().await.is_some() {}
            if fired == BATCH {
                continue;
            }
            let sleep = next
                .map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.inner.scheduler.notified() => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn fire(&self, app: &AppChannel, job: Job) {
        let name = job.name.trim_start_matches('/').to_string();
        let req = Request::post(format!("/job/{}", super::tail::encode_path(&name)))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(job.data.clone()));
        let partition = super::envelope::partition_for_key(&job.name, u32::MAX);
        let answered = match req {
            Ok(req) => match app.call(req, partition).await {
                Ok((status, _)) if status.is_success() => Ok(()),
                Ok((status, _)) => Err(format!("the app answered {status}")),
                Err(e) => Err(e),
            },
            Err(e) => Err(format!("job name {name:?} is not a valid path: {e}")),
        };
        let now = now_ms();
        let next = match answered {
            Ok(()) => next_tick(&job, now),
            Err(why) if job.failures < MAX_FAILURES => {
                tracing::warn!(job = %job.name, failures = job.failures + 1, "embedded sidecar: job callback failed ({why}); retrying in 1 s");
                Some(Job {
                    due_at_ms: now + RETRY_EVERY_MS,
                    failures: job.failures + 1,
                    ..job.clone()
                })
            }
            Err(why) => {
                tracing::error!(job = %job.name, "embedded sidecar: job callback failed {} times ({why}); giving this firing up", MAX_FAILURES + 1);
                next_tick(&job, now)
            }
        };
        let old = job.clone();
        if let Err(e) = self
            .blocking(move |s| s.settle_job(&old, next.as_ref()))
            .await
        {
            tracing::error!(job = %job.name, "embedded sidecar: recording a job firing failed ({e}); it fires again");
        }
    }
}

/// The job after a firing: its next `@every` tick (never in the past), or `None` when spent.
fn next_tick(job: &Job, now: i64) -> Option<Job> {
    let every = job.every_ms?;
    let remaining = match job.remaining {
        Some(n) if n <= 1 => return None,
        Some(n) => Some(n - 1),
        None => None,
    };
    let mut due = job.due_at_ms.saturating_add(every);
    if due <= now {
        due = now.saturating_add(every);
    }
    Some(Job {
        due_at_ms: due,
        remaining,
        failures: 0,
        ..job.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(every: Option<i64>, remaining: Option<u64>) -> Job {
        Job {
            name: "j".into(),
            data: "null".into(),
            due_at_ms: 1_000,
            every_ms: every,
            remaining,
            failures: 2,
            due_time: None,
            schedule: None,
        }
    }

    #[test]
    fn one_shots_end_and_schedules_move_on() {
        assert_eq!(next_tick(&job(None, Some(1)), 1_000), None);
        let next = next_tick(&job(Some(500), Some(3)), 1_000).unwrap();
        assert_eq!(
            (next.due_at_ms, next.remaining, next.failures),
            (1_500, Some(2), 0)
        );
        assert_eq!(next_tick(&job(Some(500), Some(1)), 1_000), None);
        let late = next_tick(&job(Some(500), None), 9_000).unwrap();
        assert_eq!(
            late.due_at_ms, 9_500,
            "a missed tick is not fired in a burst"
        );
    }
}
