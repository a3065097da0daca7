//! Operators acting on dead letters: `task-events-host dead-letters list|show|replay` against a
//! running host, in Dapr mode (where the host cannot read Kafka back, so it keeps a log of the
//! dead letters it writes) and in embedded mode.

use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::dapr_mode::{DaprMode, TASK_ROUTE};
use task_events_tests::embedded_api::{publish, wait_topic};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, run_command};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const TOKEN: &str = "dl-admin";
const WAIT: Duration = Duration::from_secs(30);

/// Runs `dead-letters <args>` against `url`; (exit code, stdout, stderr). Off the test's
/// runtime: the proxies the host talks through run on it.
async fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.splice(0..0, ["dead-letters".to_string()]);
    args.extend(["--url", url, "--admin-token", TOKEN].map(String::from));
    tokio::task::spawn_blocking(move || {
        run_command(HOST, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_refused_event_is_listed_shown_and_replayed_once_the_cause_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &["--admin-token", TOKEN], &[]).await;
    // The broker refuses the new task for good (too large, say): dead-lettered, not retried.
    p.sidecar_proxy.fail_next("/v1.0/publish", 1, 413);
    let mut event = daily_completion(51);
    event["event_id"] = json!("evt-refused");
    publish(&p.sidecar, &event).await;
    publish(
        &p.sidecar,
        &json!({"event_id": "bad", "event_type": "task.completed", "event_version": "1.0",
        "task_id": 1, "user_id": "u9", "timestamp": "x", "payload": {}}),
    )
    .await;
    wait_topic(&p.sidecar, "task-events-dlq", 2, WAIT).await;

    let (code, out, err) = cli(&p.host.base, &["list", "--reason", "sidecar-refused"]).await;
    assert_eq!(code, 0, "{err}");
    let listed = lines(&out);
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["from_topic"], "task-events");
    assert_eq!(listed[0]["user"], event["user_id"]);
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let (_, all, _) = cli(&p.host.base, &["list"]).await;
    assert_eq!(lines(&all).len(), 2, "{all}");

    let (code, out, err) = cli(&p.host.base, &["show", &id]).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["record"]["data"]["original"]["data"]["event_id"],
        "evt-refused"
    );
    assert!(
        shown["record"]["data"]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("413")
    );

    // The broker takes it now: the replay goes through the current plugin and publishes.
    let (code, out, err) = cli(&p.host.base, &["replay", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "SUCCESS"
    );
    assert_eq!(
        p.created().await.len(),
        1,
        "the replay published the next task"
    );
    let (_, out, _) = cli(&p.host.base, &["show", &id]).await;
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["replays"][0]["status"], "SUCCESS",
        "the replay is recorded"
    );

    let (code, _, err) = cli(&p.host.base, &["show", "no-such:dead-letter"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("404") && err.contains("no dead letter"),
        "{err}"
    );
    let _ = p.answers(TASK_ROUTE);
}

#[tokio::test]
async fn embedded_mode_lists_and_replays_too_and_the_api_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &["--admin-token", TOKEN], &[]).await;
    publish(
        &host,
        &json!({"event_id": "bad-e", "event_type": "task.completed", "event_version": "1.0",
        "task_id": 1, "user_id": "u1", "timestamp": "x", "payload": {}}),
    )
    .await;
    wait_topic(&host, "task-events-dlq", 1, WAIT).await;
    let (code, out, err) = cli(
        &host.base,
        &["list", "--topic", "task-events", "--user", "u1"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let listed = lines(&out);
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["reason"], "rejected");
    // Still invalid: the replay dead-letters it again, and says so.
    let id = listed[0]["id"].as_str().unwrap();
    let (code, out, _) = cli(&host.base, &["replay", id]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "SUCCESS"
    );
    let (_, out, _) = cli(&host.base, &["list"]).await;
    assert_eq!(
        lines(&out).len(),
        1,
        "one entry per dead letter, however often it recurs"
    );
    let anonymous = reqwest::get(format!("{}/admin/dead-letters", host.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
