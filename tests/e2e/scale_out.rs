//! Scale-out: two host replicas in Dapr mode beside one sidecar whose subscription is consumed
//! by both, like a Kafka consumer group (partition p goes to replica p % 2, and to the other
//! when it does not answer). The hosts keep no state of their own: idempotency and outcome
//! records live in the shared state store. One replica is `kill -9`ed mid-run and restarted.
//! Afterwards every completion produced its next task, no id was published with two different
//! bodies, and each user's tasks came out in the order of that user's completions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::dapr_mode::APP_ID;
use task_events_tests::embedded_api::{publish, topic_events};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, free_port};
use task_events_tests::sidecar_process::SidecarProcess;
use task_events_tests::wait::until;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const EVENTS: u32 = 1200;
const USERS: u32 = 40;

async fn replica(port: u16, dir: &std::path::Path, sidecar: &SidecarProcess) -> HostProcess {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("data");
    let sidecar_port = sidecar.port.to_string();
    HostProcess::start_on(
        port,
        HOST,
        dir,
        &["--sidecar", "dapr", "--data-dir", data.to_str().unwrap()],
        &[("DAPR_HTTP_PORT", sidecar_port.as_str())],
    )
    .await
}

fn completion(i: u32) -> Value {
    let mut event = daily_completion(i);
    event["user_id"] = json!(format!("user-{}", i % USERS));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_killed_lose_nothing_and_keep_each_users_order() {
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let mut sidecar = SidecarProcess::start(
        HOST,
        dir.path(),
        port_a,
        APP_ID,
        &[
            "--app-url",
            &url_a,
            "--app-url",
            &url_b,
            "--redelivery-backoff-ms",
            "200",
        ],
        &[],
    )
    .await;
    let mut a = replica(port_a, &dir.path().join("a"), &sidecar).await;
    let b = replica(port_b, &dir.path().join("b"), &sidecar).await;
    sidecar.wait_ready(Duration::from_secs(30)).await;

    for i in 0..EVENTS {
        if i == EVENTS / 3 {
            a.kill9();
        }
        if i == 2 * EVENTS / 3 {
            a = replica(port_a, &dir.path().join("a-restarted"), &sidecar).await;
        }
        publish(&sidecar, &completion(i)).await;
    }

    let logs = || format!("sidecar:\n{}\nhost b:\n{}", sidecar.log(), b.log());
    let every = Duration::from_millis(200);
    let created = until(Duration::from_secs(180), every, logs, async || {
        let created: Vec<Value> = topic_events(&sidecar, "task-events")
            .await
            .into_iter()
            .filter(|e| e["type"] == "task.created")
            .collect();
        let unique: std::collections::HashSet<&str> =
            created.iter().filter_map(|e| e["id"].as_str()).collect();
        match unique.len() {
            n if n >= EVENTS as usize => Ok(created),
            n => Err(format!("{n} of {EVENTS} next tasks")),
        }
    })
    .await;

    // No id with two bodies; a repeat (the kill's at-least-once window) has identical bytes.
    let mut by_id: HashMap<String, Value> = HashMap::new();
    let mut repeats = 0;
    for event in &created {
        let id = event["id"].as_str().unwrap().to_string();
        match by_id.get(&id) {
            Some(first) => {
                repeats += 1;
                assert_eq!(
                    first["data"], event["data"],
                    "id {id} published with two bodies"
                );
            }
            None => {
                by_id.insert(id, event.clone());
            }
        }
    }
    assert_eq!(
        by_id.len(),
        EVENTS as usize,
        "every completion made exactly one task"
    );
    // Per user, first appearances follow that user's completions in publish order.
    let mut per_user: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for event in &created {
        if seen.insert(event["id"].as_str().unwrap().to_string()) {
            let data = &event["data"];
            per_user
                .entry(data["user_id"].as_str().unwrap().to_string())
                .or_default()
                .push(data["payload"]["parent_task_id"].as_i64().unwrap());
        }
    }
    for (user, parents) in &per_user {
        let mut sorted = parents.clone();
        sorted.sort_unstable();
        assert_eq!(parents, &sorted, "{user}'s tasks out of order");
    }
    let dead = topic_events(&sidecar, "task-events-dlq").await;
    assert!(dead.is_empty(), "nothing dead-lettered: {dead:#?}");
    println!(
        "scale-out: {EVENTS} completions over {USERS} users, 2 replicas, one kill -9 and restart: \
         {} next tasks, {repeats} repeated publishes (identical bytes), 0 lost",
        by_id.len()
    );
    drop(a);
}
