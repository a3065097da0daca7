//! Reminders that fire (host/src/pipeline/timers.rs, guest/src/plugin/reminders.rs), in
//! embedded mode: a task with `remind_before` gets its `reminder.due` on `reminders` no earlier
//! than the reminder time and within seconds after it, once, across a `kill -9` of the host; a
//! deleted task's reminder never fires; an update that moves the due date moves the reminder.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use task_events_tests::admin::Admin;
use task_events_tests::embedded_api::{publish, topic_records, wait_topic};
use task_events_tests::host::HostProcess;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(30);
/// How late after its time a reminder may be published.
const LATE: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

fn at(from_now: Duration) -> String {
    let t = Utc::now() + chrono::TimeDelta::from_std(from_now).unwrap();
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A 2.0 task event of `user`'s task `task_id`, due `due`, reminded 1 s before.
fn task(event_type: &str, id: &str, user: &str, task_id: &str, due: &str) -> Value {
    json!({"event_id": id, "event_type": event_type, "event_version": "2.0",
           "task_id": task_id, "user_id": user, "timestamp": at(Duration::ZERO),
           "payload": {"title": "Gym", "due_date": due, "remind_before": "PT1S"}})
}

/// The reminder.due records on `reminders`, as (task_id, published_at, remind_at).
async fn reminders(host: &HostProcess) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let parse = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    topic_records(host, "reminders")
        .await
        .iter()
        .filter(|r| r["event"]["type"] == "reminder.due")
        .map(|r| {
            let data = &r["event"]["data"];
            let task = data["task_id"].as_str().unwrap().to_string();
            (
                task,
                parse(&r["published_at"]),
                parse(&data["payload"]["remind_at"]),
            )
        })
        .collect()
}

async fn timers_set(host: &HostProcess) -> f64 {
    Admin::new(&host.base, None)
        .metric("task_events_timers_total{action=\"set\"}")
        .await
}

#[tokio::test]
async fn a_reminder_fires_once_at_its_time_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    let due = at(Duration::from_secs(6));
    publish(&host, &task("task.created", "c-1", "u1", "t-1", &due)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while timers_set(&host).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the timer was never set"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // kill -9 before the reminder is due: the timer survives in the sidecar's store.
    host.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    wait_topic(&host, "reminders", 1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired = reminders(&host).await;
    assert_eq!(fired.len(), 1, "exactly once: {fired:?}");
    let (task_id, published, remind_at) = &fired[0];
    assert_eq!(task_id, "t-1");
    assert!(
        published >= remind_at,
        "not before its time: {published} < {remind_at}"
    );
    assert!(
        *published - *remind_at < LATE,
        "within seconds: {published} vs {remind_at}"
    );
    // Renamed after its reminder went out, same time: the reminder does not go out again.
    let mut renamed = task("task.updated", "m-1", "u1", "t-1", &due);
    renamed["payload"]["title"] = json!("Gym, legs");
    publish(&host, &renamed).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reminders(&host).await.len(), 1, "still once");
}

#[tokio::test]
async fn deleting_cancels_and_updating_reschedules() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    let soon = at(Duration::from_secs(4));
    publish(&host, &task("task.created", "c-1", "u1", "t-del", &soon)).await;
    publish(&host, &task("task.deleted", "d-1", "u1", "t-del", &soon)).await;
    publish(&host, &task("task.created", "c-2", "u2", "t-move", &soon)).await;
    let later = at(Duration::from_secs(8));
    publish(&host, &task("task.updated", "m-2", "u2", "t-move", &later)).await;
    // The same task id under another user is another task: its reminder is untouched.
    publish(&host, &task("task.created", "c-3", "u3", "t-del", &soon)).await;

    wait_topic(&host, "reminders", 2, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired = reminders(&host).await;
    let tasks: Vec<&str> = fired.iter().map(|(t, ..)| t.as_str()).collect();
    assert_eq!(
        tasks,
        ["t-del", "t-move"],
        "u3's t-del, then u2's moved t-move: {fired:?}"
    );
    let records = topic_records(&host, "reminders").await;
    assert_eq!(records[0]["key"], "u3", "partitioned by user");
    let (_, published, remind_at) = &fired[1];
    let expected =
        DateTime::parse_from_rfc3339(&later).unwrap().to_utc() - chrono::TimeDelta::seconds(1);
    assert_eq!(*remind_at, expected, "the moved reminder");
    assert!(
        published >= remind_at && *published - *remind_at < LATE,
        "{published} vs {remind_at}"
    );
}

/// Dapr mode: the host keeps the timer through daprd's Jobs API (here the standalone sidecar
/// behind a recording proxy) and publishes the reminder when daprd calls `POST /job/{name}`.
#[tokio::test]
async fn in_dapr_mode_the_reminder_is_a_job_called_back_at_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = task_events_tests::dapr_mode::DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    let due = at(Duration::from_secs(4));
    publish(&p.sidecar, &task("task.created", "c-1", "u1", "t-1", &due)).await;
    let fired = wait_topic(&p.sidecar, "reminders", 1, WAIT).await;
    assert_eq!(fired[0]["type"], "reminder.due");
    assert_eq!(fired[0]["data"]["task_id"], "t-1");
    let scheduled = p
        .sidecar_proxy
        .journal_for("/v1.0-alpha1/jobs/timer-sha256-");
    assert!(!scheduled.is_empty(), "scheduled through daprd's Jobs API");
    p.app_proxy
        .wait_journal(WAIT, "the job callback answered 200", |j| {
            j.iter()
                .any(|x| x.path.starts_with("/job/timer-sha256-") && x.status() == Some(200))
        })
        .await;
}

/// A plugin's timers are checked like its emits: a timer on another user's partition, on a
/// topic the plugin did not declare, or at no readable time dead-letters the delivery with the
/// reason and sets nothing; a valid one fires; a cancelled one does not.
#[tokio::test]
async fn a_hostile_plugins_timers_are_refused_with_the_reason() {
    use task_events_tests::embedded_api::publish_to;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--guest", task_events_tests::plugins::HOSTILE_WASM];
    let host = HostProcess::embedded(HOST, dir.path(), &args, &[]).await;
    let soon = at(Duration::from_secs(2));
    let send = |id: &str, extra: Value| {
        let mut e = json!({"user_id": "u1", "event_id": id, "do": "timer", "at": soon});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    for e in [
        send("foreign", json!({"key": "u2"})),
        send("undeclared", json!({"topic": "elsewhere"})),
        send("no-time", json!({"at": "soon"})),
        send("kept", json!({"name": "kept"})),
        send("dropped", json!({"name": "dropped"})),
        json!({"user_id": "u1", "event_id": "cancel", "do": "cancel", "name": "dropped"}),
    ] {
        publish_to(&host, "hostile", &e).await;
    }
    let dead = wait_topic(&host, "hostile-dlq", 3, WAIT).await;
    let codes: Vec<&str> = dead
        .iter()
        .map(|d| d["data"]["problems"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "effect-refused:foreign-partition-key",
            "effect-refused:undeclared-topic",
            "effect-refused:bad-timer-time"
        ],
        "{dead:#?}"
    );
    wait_topic(&host, "hostile-out", 1, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = task_events_tests::embedded_api::topic_events(&host, "hostile-out").await;
    let ids: Vec<&str> = out
        .iter()
        .map(|e| e["data"]["event_id"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        ids,
        ["kept"],
        "only the timer that was neither refused nor cancelled: {out:#?}"
    );
}
