//! Chaos, bounded: a few thousand task events over many users through the real host while
//! things break, in both sidecar modes. Dapr mode: the sidecar proxy injects 5xx, slow answers
//! and dropped connections into the host's publish and state calls; both modes: the host is
//! `kill -9`ed and restarted three times and the plugin is swapped twice, all mid-run.
//!
//! Afterwards: every valid completion produced its next task (no id missing), an id published
//! twice has identical bytes, each user's tasks came out in the order of its completions, every
//! invalid event is in the dead-letter topic with reason `rejected`, and nothing else was
//! published or dead-lettered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::dapr_mode::{APP_ID, DaprMode};
use task_events_tests::embedded_api::{SidecarApi, publish, topic_events};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, free_port};
use task_events_tests::plugins::{replace_file, task_plugin_bytes, task_plugin_variant};
use task_events_tests::wait::until;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const VALID: u32 = 1500;
const INVALID: u32 = 30;
const USERS: u32 = 50;
const TOKEN: &str = "chaos-admin";

fn completion(i: u32) -> Value {
    let mut e = daily_completion(i);
    e["user_id"] = json!(format!("user-{}", i % USERS));
    // Event ids a state store could not hold as keys are valid too.
    if i % 100 == 7 {
        e["event_id"] = json!(format!("odd||id-{i}"));
    }
    e
}

fn invalid(i: u32) -> Value {
    json!({"event_id": format!("bad-{i}"), "event_type": "task.completed", "event_version": "1.0",
           "task_id": i, "user_id": format!("user-{}", i % USERS), "timestamp": "not a time", "payload": {}})
}

/// The plugin file the host watches, and the two builds swapped in mid-run.
fn plugin_file(dir: &Path) -> std::path::PathBuf {
    let guest = dir.join("plugin.wasm");
    std::fs::write(&guest, task_plugin_bytes()).unwrap();
    guest
}

/// What happens at step `i` of the publishing loop: a kill and restart, or a swap.
enum Disruption {
    Kill,
    Swap(u32),
    None,
}

fn disruption(i: u32) -> Disruption {
    match i {
        300 | 800 | 1300 => Disruption::Kill,
        500 => Disruption::Swap(1),
        1100 => Disruption::Swap(2),
        _ => Disruption::None,
    }
}

async fn verify(sidecar: &impl SidecarApi, mode: &str) {
    let every = Duration::from_millis(250);
    let log = || sidecar.log();
    let created = until(Duration::from_secs(240), every, log, async || {
        let created: Vec<Value> = topic_events(sidecar, "task-events")
            .await
            .into_iter()
            .filter(|e| e["type"] == "task.created")
            .collect();
        let unique: HashSet<&str> = created.iter().filter_map(|e| e["id"].as_str()).collect();
        let dead = topic_events(sidecar, "task-events-dlq").await.len();
        if unique.len() >= VALID as usize && dead >= INVALID as usize {
            return Ok(created);
        }
        let found = unique.len();
        Err(format!(
            "{mode}: {found} of {VALID} next tasks and {dead} of {INVALID} dead letters"
        ))
    })
    .await;
    let mut first: HashMap<String, Value> = HashMap::new();
    let mut repeats = 0;
    let mut per_user: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for event in &created {
        let id = event["id"].as_str().unwrap().to_string();
        match first.get(&id) {
            Some(seen) => {
                repeats += 1;
                assert_eq!(
                    seen["data"], event["data"],
                    "{mode}: id {id} with two bodies"
                );
            }
            None => {
                let data = &event["data"];
                per_user
                    .entry(data["user_id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(data["payload"]["parent_task_id"].as_i64().unwrap());
                first.insert(id, event.clone());
            }
        }
    }
    assert_eq!(
        first.len(),
        VALID as usize,
        "{mode}: one next task per completion"
    );
    let parents: HashSet<i64> = first
        .values()
        .map(|e| e["data"]["payload"]["parent_task_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        parents.len(),
        VALID as usize,
        "{mode}: every completion, none twice"
    );
    for (user, order) in &per_user {
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{mode}: {user} out of order: {order:?}"
        );
    }
    let dead = topic_events(sidecar, "task-events-dlq").await;
    let mut dead_ids: HashSet<String> = HashSet::new();
    for record in &dead {
        assert_eq!(record["data"]["reason"], "rejected", "{mode}: {record:#}");
        dead_ids.insert(
            record["data"]["original"]["data"]["event_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let expected: HashSet<String> = (0..INVALID).map(|i| format!("bad-{i}")).collect();
    assert_eq!(
        dead_ids, expected,
        "{mode}: exactly the invalid events were dead-lettered"
    );
    for other in [
        "reminders",
        "task-updates",
        "reminders-dlq",
        "task-updates-dlq",
    ] {
        let published = topic_events(sidecar, other).await;
        assert!(
            published.is_empty(),
            "{mode}: nothing on {other}: {published:#?}"
        );
    }
    println!(
        "chaos ({mode}): {VALID} completions + {INVALID} invalid over {USERS} users, 3 kill -9, 2 swaps: \
         {} next tasks, {repeats} repeated publishes (identical bytes), {} dead letters, 0 lost",
        first.len(),
        dead.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dapr_mode_survives_faults_kills_and_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let guest = plugin_file(dir.path());
    let host_args = ["--guest", guest.to_str().unwrap(), "--admin-token", TOKEN];
    let mut p = DaprMode::start(HOST, dir.path(), None, &host_args, &[]).await;
    let proxy_port = p.sidecar_proxy.port.to_string();
    for i in 0..VALID {
        if i % 150 == 0 {
            // Transient trouble the host must absorb or hand back as RETRY: nothing is lost.
            p.sidecar_proxy.fail_next("/v1.0/state", 4, 500);
            p.sidecar_proxy.fail_next("/v1.0/publish", 4, 503);
            p.sidecar_proxy
                .delay_next("/v1.0/state", 3, Duration::from_millis(300));
            p.sidecar_proxy.drop_next("/v1.0/publish", 2);
        }
        match disruption(i) {
            Disruption::Kill => {
                p.host.kill9();
                let env = [("DAPR_HTTP_PORT", proxy_port.as_str())];
                let data = dir.path().join(format!("host-data-{i}"));
                let mut args = vec!["--sidecar", "dapr", "--data-dir", data.to_str().unwrap()];
                args.extend_from_slice(&host_args);
                let logs = dir.path().join(format!("restart-{i}"));
                std::fs::create_dir_all(&logs).unwrap();
                p.host = HostProcess::start_on(p.host.port, HOST, &logs, &args, &env).await;
            }
            Disruption::Swap(build) => {
                let bytes = task_plugin_variant(build);
                replace_file(&guest, &bytes);
                Admin::new(&p.host.base, Some(TOKEN))
                    .wait_serving(&sha256_hex(&bytes), Duration::from_secs(60))
                    .await;
            }
            Disruption::None => {}
        }
        publish(&p.sidecar, &completion(i)).await;
        if i < INVALID {
            publish(&p.sidecar, &invalid(i)).await;
        }
    }
    verify(&p.sidecar, "dapr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_survives_kills_and_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let guest = plugin_file(dir.path());
    let data = dir.path().join("data");
    let port = free_port();
    let args = [
        "--sidecar",
        "embedded",
        "--data-dir",
        data.to_str().unwrap(),
        "--guest",
        guest.to_str().unwrap(),
        "--admin-token",
        TOKEN,
        "--app-id",
        APP_ID,
    ];
    let mut host = HostProcess::start_on(port, HOST, dir.path(), &args, &[]).await;
    for i in 0..VALID {
        match disruption(i) {
            Disruption::Kill => {
                host.kill9();
                let logs = dir.path().join(format!("restart-{i}"));
                std::fs::create_dir_all(&logs).unwrap();
                host = HostProcess::start_on(port, HOST, &logs, &args, &[]).await;
            }
            Disruption::Swap(build) => {
                let bytes = task_plugin_variant(build);
                replace_file(&guest, &bytes);
                Admin::new(&host.base, Some(TOKEN))
                    .wait_serving(&sha256_hex(&bytes), Duration::from_secs(60))
                    .await;
            }
            Disruption::None => {}
        }
        publish(&host, &completion(i)).await;
        if i < INVALID {
            publish(&host, &invalid(i)).await;
        }
    }
    verify(&host, "embedded").await;
}
