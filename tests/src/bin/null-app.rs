//! The ceiling for load tests: an app with the host's HTTP stack (axum on tokio, reqwest to the
//! sidecar) that makes the host's sidecar calls for each delivery but runs no plugin.
//!
//! Per delivery, like the host's pipeline (host/src/pipeline/outcome.rs) for an event whose
//! outcome has a dedupe key: parse the CloudEvent, read the user's retry queue, the outcome
//! record and a completion's reminder in one bulk read (`POST state/bulk`,
//! pipeline/prefetch.rs), save
//! a pending record first-write (`POST state`), publish each emit (`POST publish`), mark the
//! record done (`POST state`), answer `{"status":"SUCCESS"}`. The emits are canned CloudEvents
//! of the size the task plugin produces; how many per event type is set on the command line so
//! the load script can match the host's counts (the sidecar reports both).
//!
//! A bulk batch (`{"entries": [...]}`) gets the host's bulk fast path (host/src/pipeline/bulk.rs):
//! one bulk state read of every user's retry queue, every record and every completion's
//! reminder timer, one bulk save of the pending records, one bulk publish of every emit, one bulk
//! save of the done marks, and a status per entry.
//!
//! Usage: `null-app <app port> <sidecar port> [--emits-completed N] [--emits-other N]`.
//! Loopback only; it stops after `--seconds` (default 600).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};

struct App {
    http: reqwest::Client,
    sidecar: String,
    emits_completed: usize,
    emits_other: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: null-app <app port> <sidecar port> [--emits-completed N] [--emits-other N] [--seconds N]";
    let app_port: u16 = args.next().and_then(|p| p.parse().ok()).expect(usage);
    let sidecar_port: u16 = args.next().and_then(|p| p.parse().ok()).expect(usage);
    let (mut emits_completed, mut emits_other, mut seconds) = (1, 0, 600);
    while let Some(flag) = args.next() {
        let value: usize = args.next().and_then(|v| v.parse().ok()).expect(usage);
        match flag.as_str() {
            "--emits-completed" => emits_completed = value,
            "--emits-other" => emits_other = value,
            "--seconds" => seconds = value as u64,
            _ => panic!("{usage}"),
        }
    }
    // The host's runtime: tokio's multi-threaded default (one worker per core).
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let app = Arc::new(App {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
            sidecar: format!("http://127.0.0.1:{sidecar_port}"),
            emits_completed,
            emits_other,
        });
        let router = Router::new()
            .route("/dapr/subscribe", get(subscribe))
            .route("/healthz", get(|| async { "ok" }))
            .route("/events/task-events", post(deliver))
            .with_state(app);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
            .await
            .expect("binding the app port");
        tokio::select! {
            r = axum::serve(listener, router) => r.expect("serving"),
            _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        }
    });
}

async fn subscribe() -> Json<Value> {
    Json(
        json!([{"pubsubname": "kafka-pubsub", "topic": "task-events", "route": "/events/task-events"}]),
    )
}

async fn deliver(State(app): State<Arc<App>>, body: Bytes) -> Json<Value> {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(entries) = event.get("entries").and_then(Value::as_array) {
        let status = match handle_batch(&app, entries).await {
            Ok(()) => "SUCCESS",
            Err(_) => "RETRY",
        };
        let statuses: Vec<Value> = entries
            .iter()
            .map(|e| json!({"entryId": e["entryId"], "status": status}))
            .collect();
        return Json(json!({ "statuses": statuses }));
    }
    let status = match handle(&app, &body).await {
        Ok(()) => "SUCCESS",
        Err(_) => "RETRY",
    };
    Json(json!({ "status": status }))
}

async fn handle(app: &App, body: &[u8]) -> Result<(), reqwest::Error> {
    let event: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let id = data["event_id"].as_str().unwrap_or("none").to_string();
    let emits = if data["event_type"] == "task.completed" {
        app.emits_completed
    } else {
        app.emits_other
    };
    let key = format!("processed-{id}");
    let bodies: Vec<String> = (0..emits).map(|n| canned_emit(&id, n, &data)).collect();

    let url = |path: &str| format!("{}{path}", app.sidecar);
    // The host first checks whether the user has parked (delayed) events to queue behind.
    let user = data["user_id"].as_str().unwrap_or("none");
    // One read for every key the delivery depends on (host/src/pipeline/prefetch.rs): the
    // user's retry queue, the outcome record, and for a completion its task's reminder.
    let mut keys = vec![format!("waiting-{user}"), key.clone()];
    if data["event_type"] == "task.completed" {
        keys.push(format!("timer-{}", data["task_id"]));
    }
    app.http
        .post(url("/v1.0/state/statestore/bulk"))
        .json(&json!({"keys": keys, "parallelism": 10}))
        .send()
        .await?
        .error_for_status()?;
    let record = |state: &str| {
        json!([{ "key": key, "value": {"state": state, "plugin": "task-plugin@x",
            "at": "2025-12-29T10:00:00Z", "emits": bodies}, "options": {"concurrency": "first-write"}}])
    };
    app.http
        .post(url("/v1.0/state/statestore"))
        .json(&record("pending"))
        .send()
        .await?
        .error_for_status()?;
    for body in &bodies {
        app.http
            .post(url("/v1.0/publish/kafka-pubsub/task-events"))
            .query(&[("metadata.partitionKey", "user-1")])
            .header("content-type", "application/cloudevents+json")
            .body(body.clone())
            .send()
            .await?
            .error_for_status()?;
    }
    app.http
        .post(url("/v1.0/state/statestore"))
        .json(&record("done"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

async fn handle_batch(app: &App, entries: &[Value]) -> Result<(), reqwest::Error> {
    let url = |path: &str| format!("{}{path}", app.sidecar);
    let mut keys: Vec<String> = Vec::new();
    let mut pending = Vec::new();
    let mut done = Vec::new();
    let mut publish = Vec::new();
    for entry in entries {
        let data = &entry["event"]["data"];
        let id = data["event_id"].as_str().unwrap_or("none");
        let completed = data["event_type"] == "task.completed";
        let emits = if completed {
            app.emits_completed
        } else {
            app.emits_other
        };
        let bodies: Vec<String> = (0..emits).map(|n| canned_emit(id, n, data)).collect();
        let waiting = format!("waiting-{}", data["user_id"].as_str().unwrap_or("none"));
        if !keys.contains(&waiting) {
            keys.push(waiting);
        }
        keys.push(format!("processed-{id}"));
        if completed {
            keys.push(format!("timer-{}", data["task_id"]));
        }
        let record = |state: &str| {
            json!({ "key": format!("processed-{id}"), "value": {"state": state,
                "plugin": "task-plugin@x", "at": "2025-12-29T10:00:00Z", "emits": bodies},
                "options": {"concurrency": "first-write"}})
        };
        pending.push(record("pending"));
        done.push(record("done"));
        for body in &bodies {
            let event: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            publish.push(json!({"entryId": publish.len().to_string(), "event": event,
                "contentType": "application/cloudevents+json",
                "metadata": {"partitionKey": data["user_id"]}}));
        }
    }
    let read = json!({"keys": keys, "parallelism": 10});
    let found = app
        .http
        .post(url("/v1.0/state/statestore/bulk"))
        .json(&read);
    let _: Value = found.send().await?.error_for_status()?.json().await?;
    let save = app.http.post(url("/v1.0/state/statestore")).json(&pending);
    save.send().await?.error_for_status()?;
    if !publish.is_empty() {
        let path = "/v1.0-alpha1/publish/bulk/kafka-pubsub/task-events";
        let publish = app.http.post(url(path)).json(&publish);
        publish.send().await?.error_for_status()?;
    }
    let save = app.http.post(url("/v1.0/state/statestore")).json(&done);
    save.send().await?.error_for_status()?;
    Ok(())
}

/// A CloudEvent about the size of the task plugin's `task.created` for the next occurrence.
fn canned_emit(id: &str, n: usize, data: &Value) -> String {
    json!({
        "specversion": "1.0", "id": format!("{id}-next-{n}"), "source": "recurring-task-service",
        "type": "com.dapr.event.sent", "datacontenttype": "application/json",
        "data": {"event_id": format!("{id}-next-{n}"), "event_type": "task.created",
            "event_version": "2.0", "task_id": data["task_id"], "user_id": data["user_id"],
            "timestamp": "2025-12-29T10:00:00Z",
            "payload": {"title": "Water the plants", "due_date": "2025-12-30T09:00:00Z",
                "recurrence": {"rule": "FREQ=DAILY", "dtstart": "2025-12-29T09:00:00"}}}
    })
    .to_string()
}
