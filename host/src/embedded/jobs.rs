//! The Jobs API, as daprd serves it (`POST|GET|DELETE /v1.0/jobs/{name}`, and the deprecated
//! `/v1.0-alpha1/jobs/{name}`), durable in the sidecar's redb file: a job survives `kill -9`
//! and fires after a restart. `scheduler.rs` fires due jobs at the app's `POST /job/{name}`.
//!
//! What is supported, of daprd's request (decoded as Go decodes it, any field-name case):
//! `data` (any JSON, handed back to the app as the callback body), `dueTime` (RFC 3339, or a Go
//! duration such as `30s` or `1h30m`, counted from now), `schedule` only in the form
//! `@every <Go duration>`, `repeats` (how many times a schedule fires; absent = forever),
//! `overwrite`. A name already taken is refused (409) unless `overwrite` is true, as daprd's
//! scheduler does. Cron schedules, `ttl` and `failurePolicy` are refused with a clear 400
//! rather than silently ignored. A failed callback (not 2xx, or unreachable) is retried every
//! second, three times, daprd's default failure policy; then the job is dropped with an error
//! log (a repeating job goes on to its next tick).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Embedded;
use super::error::{ApiError, StoreError};
use super::go_decode::{field, go_duration};
use super::store::{JOBS, JOBS_DUE, Store};

/// One stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Job {
    pub name: String,
    /// The callback body, JSON text (`null` when none was given).
    pub data: String,
    pub due_at_ms: i64,
    /// `@every` interval, for a repeating job.
    pub every_ms: Option<i64>,
    /// Firings left (`None`: unlimited).
    pub remaining: Option<u64>,
    /// Failed callbacks of the current firing.
    pub failures: u32,
    /// As given, for `GET`.
    pub due_time: Option<String>,
    pub schedule: Option<String>,
}

pub(super) fn routes() -> Router<Embedded> {
    Router::new()
        .route(
            "/v1.0/jobs/{name}",
            post(schedule).get(get_job).delete(delete_job),
        )
        .route(
            "/v1.0-alpha1/jobs/{name}",
            post(schedule).get(get_job).delete(delete_job),
        )
}

fn bad(message: String) -> ApiError {
    ApiError::rejected(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
}

/// Reads a schedule request into a job due after `now`.
pub(super) fn parse_request(
    name: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(Job, bool), ApiError> {
    if name.trim().is_empty() {
        return Err(bad("the job name is empty".into()));
    }
    let req: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the job request is not JSON: {e}")))?;
    if !req.is_object() {
        return Err(bad("the job request must be a JSON object".into()));
    }
    for unsupported in ["ttl", "failurePolicy"] {
        if field(&req, unsupported).is_some_and(|v| !v.is_null()) {
            return Err(bad(format!(
                "{unsupported} is not supported by this sidecar; leave it out"
            )));
        }
    }
    if field(&req, "name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
    {
        return Err(bad("give the job's name in the URL, not in the body".into()));
    }
    let text = |k: &str| field(&req, k).and_then(Value::as_str).map(str::to_string);
    let due_time = text("dueTime");
    let schedule = text("schedule");
    let every = match &schedule {
        None => None,
        Some(s) => {
            let every = s
                .strip_prefix("@every ")
                .and_then(go_duration)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    bad(format!(
                        "schedule {s:?} is not supported: this sidecar takes \"@every <duration>\" (e.g. \"@every 30s\"); cron expressions need daprd's scheduler"
                    ))
                })?;
            Some(i64::try_from(every.as_millis()).unwrap_or(i64::MAX))
        }
    };
    let now_ms = now.timestamp_millis();
    let due_at_ms = match (&due_time, every) {
        (None, None) => return Err(bad("give dueTime or schedule (or both)".into())),
        (Some(d), _) => match DateTime::parse_from_rfc3339(d) {
            Ok(at) => at.timestamp_millis(),
            Err(_) => {
                let after = go_duration(d).ok_or_else(|| {
                    bad(format!(
                        "dueTime {d:?} is neither an RFC 3339 time nor a duration such as \"30s\""
                    ))
                })?;
                now_ms.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX))
            }
        },
        (None, Some(every)) => now_ms.saturating_add(every),
    };
    let remaining = match field(&req, "repeats") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("repeats must be a positive whole number".into()))?,
        ),
    };
    let remaining = if every.is_none() { Some(1) } else { remaining };
    let data = field(&req, "data")
        .cloned()
        .unwrap_or(Value::Null)
        .to_string();
    let overwrite = field(&req, "overwrite")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let job = Job {
        name: name.to_string(),
        data,
        due_at_ms,
        every_ms: every,
        remaining,
        failures: 0,
        due_time,
        schedule,
    };
    Ok((job, overwrite))
}

impl Store {
    /// Stores `job`; `Ok(false)` when the name is taken and `overwrite` is false.
    pub(super) fn put_job(&self, job: &Job, overwrite: bool) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let stored = put_job_in(&tx, job, overwrite)?;
        tx.commit()?;
        Ok(stored)
    }

    pub(super) fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        let tx = self.db.begin_read()?;
        let jobs = tx.open_table(JOBS)?;
        Ok(jobs
            .get(name)?
            .and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Removes `name`; whether it existed.
    pub(super) fn delete_job(&self, name: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write()?;
        let existed = delete_job_in(&tx, name)?;
        tx.commit()?;
        Ok(existed)
    }

    /// Jobs due at `now_ms`, earliest first, at most `limit`; and the next due time after them.
    pub(super) fn due_jobs(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<(Vec<Job>, Option<i64>), StoreError> {
        let tx = self.db.begin_read()?;
        let jobs = tx.open_table(JOBS)?;
        let due = tx.open_table(JOBS_DUE)?;
        let mut out = Vec::new();
        for entry in due.iter()? {
            let (k, _) = entry?;
            let (at, name) = k.value();
            if at > now_ms || out.len() >= limit {
                return Ok((out, Some(at)));
            }
            if let Some(v) = jobs.get(name)?
                && let Ok(job) = serde_json::from_slice::<Job>(v.value())
            {
                out.push(job);
            }
        }
        Ok((out, None))
    }

    /// Replaces the stored `old` (if it is still the stored one) with `next`, or removes it.
    pub(super) fn settle_job(&self, old: &Job, next: Option<&Job>) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut jobs = tx.open_table(JOBS)?;
            let mut due = tx.open_table(JOBS_DUE)?;
            let current: Option<Job> = jobs
                .get(old.name.as_str())?
                .and_then(|v| serde_json::from_slice(v.value()).ok());
            // Rescheduled or deleted through the API meanwhile: theirs wins.
            if current.as_ref() != Some(old) {
                return Ok(());
            }
            due.remove((old.due_at_ms, old.name.as_str()))?;
            match next {
                Some(job) => {
                    let bytes = serde_json::to_vec(job).expect("a job serializes");
                    jobs.insert(job.name.as_str(), bytes.as_slice())?;
                    due.insert((job.due_at_ms, job.name.as_str()), ())?;
                }
                None => {
                    jobs.remove(old.name.as_str())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

async fn schedule(State(e): State<Embedded>, Path(name): Path<String>, body: Bytes) -> Response {
    let (job, overwrite) = match parse_request(&name, &body, Utc::now()) {
        Ok(j) => j,
        Err(err) => return err.into_response(),
    };
    let stored = job.clone();
    match e.blocking(move |s| s.put_job(&stored, overwrite)).await {
        Ok(true) => {
            e.wake_scheduler();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => ApiError::rejected(
            StatusCode::CONFLICT,
            "ERR_SCHEDULE_JOB",
            format!("job {name} already exists; set \"overwrite\": true to replace it"),
        )
        .into_response(),
        Err(err) => ApiError::storage("ERR_SCHEDULE_JOB", err).into_response(),
    }
}

async fn get_job(State(e): State<Embedded>, Path(name): Path<String>) -> Response {
    let lookup = name.clone();
    match e.blocking(move |s| s.get_job(&lookup)).await {
        Ok(Some(job)) => {
            let data: Value = serde_json::from_str(&job.data).unwrap_or(Value::Null);
            let mut out = json!({"name": job.name, "data": data});
            if let Some(d) = &job.due_time {
                out["dueTime"] = json!(d);
            }
            if let Some(s) = &job.schedule {
                out["schedule"] = json!(s);
            }
            if let (Some(n), Some(_)) = (job.remaining, job.every_ms) {
                out["repeats"] = json!(n);
            }
            axum::Json(out).into_response()
        }
        Ok(None) => ApiError::rejected(
            StatusCode::NOT_FOUND,
            "ERR_GET_JOB",
            format!("job {name} not found"),
        )
        .into_response(),
        Err(err) => ApiError::storage("ERR_GET_JOB", err).into_response(),
    }
}

async fn delete_job(State(e): State<Embedded>, Path(name): Path<String>) -> Response {
    match e.blocking(move |s| s.delete_job(&name)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => ApiError::storage("ERR_DELETE_JOB", err).into_response(),
    }
}

/// Stores `job` inside `tx`; `Ok(false)` when the name is taken and `overwrite` is false.
pub(super) fn put_job_in(
    tx: &redb::WriteTransaction,
    job: &Job,
    overwrite: bool,
) -> Result<bool, StoreError> {
    let mut jobs = tx.open_table(JOBS)?;
    let mut due = tx.open_table(JOBS_DUE)?;
    let old: Option<Job> = jobs
        .get(job.name.as_str())?
        .and_then(|v| serde_json::from_slice(v.value()).ok());
    if let Some(old) = old {
        if !overwrite {
            return Ok(false);
        }
        due.remove((old.due_at_ms, old.name.as_str()))?;
    }
    let bytes = serde_json::to_vec(job).expect("a job serializes");
    jobs.insert(job.name.as_str(), bytes.as_slice())?;
    due.insert((job.due_at_ms, job.name.as_str()), ())?;
    Ok(true)
}

/// Removes `name` inside `tx`; whether it existed.
pub(super) fn delete_job_in(tx: &redb::WriteTransaction, name: &str) -> Result<bool, StoreError> {
    let mut jobs = tx.open_table(JOBS)?;
    let mut due = tx.open_table(JOBS_DUE)?;
    let old: Option<Job> = jobs
        .remove(name)?
        .and_then(|v| serde_json::from_slice(v.value()).ok());
    if let Some(old) = &old {
        due.remove((old.due_at_ms, old.name.as_str()))?;
    }
    Ok(old.is_some())
}

#[cfg(test)]
#[path = "tests_jobs.rs"]
mod tests;
