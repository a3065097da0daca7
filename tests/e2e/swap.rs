//! Swapping the plugin while the host runs, end to end: the real host binary, the real task
//! plugin (and builds of it that differ only by a custom section), the hostile fixture, driven
//! through the admin endpoints, the watched `--guest` file and SIGHUP; in embedded mode and
//! against the daprd stand-in. No timing assertions: every wait is a bounded poll.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_events_host::config::Limits;
use task_events_host::plugin::bindings::{Delivery, GoldenCase};
use task_events_host::plugin::{Plugin, Runtime, canary};
use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::daprd::{DaprdConfig, FakeDaprd, Outcome};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, free_port};
use task_events_tests::plugins::{hostile_bytes, task_plugin_bytes, task_plugin_variant};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const TOKEN: &str = "admin-secret";
/// Bound on every wait for a swap, a delivery or a rollback (a loaded 2-core machine is slow).
const WAIT: Duration = Duration::from_secs(90);

/// Writes `bytes` to `path` the safe way: a temporary file in the same directory, renamed over.
fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("tmp-upload");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A host in embedded mode whose `--guest` is `plugins/plugin.wasm` under `dir` (the task plugin).
async fn start(dir: &Path, extra: &[&str]) -> (HostProcess, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = plugins.join("plugin.wasm");
    if !guest.exists() {
        std::fs::write(&guest, task_plugin_bytes()).unwrap();
    }
    let data = dir.join("data");
    let mut args = vec![
        "--sidecar",
        "embedded",
        "--data-dir",
        data.to_str().unwrap(),
        "--guest",
        guest.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (
        HostProcess::start(HOST, dir, &args, &[("NO_COLOR", "1")]).await,
        guest,
    )
}

async fn publish(host: &HostProcess, event: &Value) {
    let status = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/publish/kafka-pubsub/task-events",
            host.base
        ))
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .expect("publishing")
        .status();
    assert_eq!(status, 204, "publish refused; host log:\n{}", host.log());
}

/// Every CloudEvent on an embedded topic (all pages).
async fn topic_events(host: &HostProcess, topic: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from = 0;
    loop {
        let url = format!(
            "{}/v1.0-embedded/topics/{topic}?from={from}&limit=1000",
            host.base
        );
        let page: Value = reqwest::get(url)
            .await
            .expect("reading a topic")
            .json()
            .await
            .expect("topic JSON");
        let records = page["records"].as_array().cloned().unwrap_or_default();
        if records.is_empty() {
            return events;
        }
        events.extend(records.into_iter().map(|r| r["event"].clone()));
        from = page["next"].as_u64().expect("a next offset");
    }
}

/// The `parent_task_id`s of the task.created events on task-events, once there are `n`.
async fn wait_created(host: &HostProcess, n: usize) -> Vec<i64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let created: Vec<i64> = topic_events(host, "task-events")
            .await
            .iter()
            .filter(|e| e["type"] == "task.created")
            .map(|e| {
                e["data"]["payload"]["parent_task_id"]
                    .as_i64()
                    .expect("parent_task_id")
            })
            .collect();
        if created.len() >= n {
            return created;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} task.created; host log:\n{}",
            created.len(),
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes daily completions `first..` every `every` until `stop` is set (at most `max`);
/// returns how many were accepted.
fn publish_until(
    host_base: String,
    first: u32,
    max: u32,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut n = 0;
        while n < max && !stop.load(Ordering::Relaxed) {
            let status = client
                .post(format!("{host_base}/v1.0/publish/kafka-pubsub/task-events"))
                .header("content-type", "application/json")
                .body(daily_completion(first + n).to_string())
                .send()
                .await
                .expect("publishing")
                .status();
            assert_eq!(status, 204);
            n += 1;
            tokio::time::sleep(every).await;
        }
        n
    })
}

/// A canary case for the task plugin: `data` delivered to it, with the outcome the task plugin
/// gives (computed here, in-process, by the host library itself).
async fn task_plugin_case(name: &str, data: &str) -> String {
    let (name, data) = (name.to_string(), data.to_string());
    tokio::task::spawn_blocking(move || {
        let runtime = Runtime::new(Limits::default()).expect("a wasm runtime");
        let plugin = Plugin::load(&runtime, task_plugin_bytes()).expect("the task plugin loads");
        let delivery = Delivery {
            id: "canary-1".into(),
            pubsub: "kafka-pubsub".into(),
            topic: "task-events".into(),
            kind: "com.dapr.event.sent".into(),
            source: "operator".into(),
            data,
            attempt: 1,
        };
        let expected = plugin
            .handle(&delivery)
            .expect("the task plugin handles the case");
        canary::case_to_json(&GoldenCase {
            name,
            delivery,
            expected,
        })
        .to_string()
            + "\n"
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_continuous_load_fail_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = publish_until(
        host.base.clone(),
        0,
        2_000,
        Duration::from_millis(20),
        stop.clone(),
    );

    // Six swaps between different builds, alternating the admin endpoint and the watched file.
    for build in 1..=6u32 {
        let bytes = task_plugin_variant(build);
        let sha = sha256_hex(&bytes);
        if build % 2 == 1 {
            let (status, body) = admin.swap(bytes).await;
            assert_eq!(
                (status, body["result"].as_str()),
                (200, Some("swapped")),
                "{body:#}"
            );
            assert_eq!(body["current"]["sha256"], sha);
        } else {
            replace_file(&guest, &bytes);
            admin.wait_serving(&sha, WAIT).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let accepted = publisher.await.unwrap();

    let mut parents = wait_created(&host, accepted as usize).await;
    let total = parents.len();
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(
        parents.len(),
        accepted as usize,
        "every completion produced its next task"
    );
    assert_eq!(total, accepted as usize, "no completion produced two");
    assert!(
        topic_events(&host, "task-events-dlq").await.is_empty(),
        "nothing was dead-lettered"
    );
    for series in [
        "task_events_deliveries_total{status=\"RETRY\"}",
        "task_events_deliveries_total{status=\"DROP\"}",
        "task_events_plugin_failures_total{kind=\"trap\"}",
        "task_events_plugin_failures_total{kind=\"deadline\"}",
        "task_events_plugin_failures_total{kind=\"memory\"}",
    ] {
        assert_eq!(
            admin.metric(series).await,
            0.0,
            "{series}; host log:\n{}",
            host.log()
        );
    }
    let status = admin.status().await;
    assert_eq!(status["swaps"], 6);
    assert_eq!(status["rejections"], 0);
    assert_eq!(status["current"]["generation"], 7);
    assert_eq!(status["previous"]["generation"], 6);
    assert_eq!(admin.metric("task_events_plugin_swaps_total").await, 6.0);
}

#[tokio::test]
async fn broken_plugins_are_rejected_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let serving = sha256_hex(task_plugin_bytes());

    let truncated = task_plugin_bytes()[..task_plugin_bytes().len() / 2].to_vec();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    for (bytes, kind, says) in [
        (truncated.clone(), "not-a-component", "truncated"),
        (core_module, "not-a-component", "core wasm module"),
        (empty_component, "world-mismatch", "missing exports"),
    ] {
        let (status, body) = admin.swap(bytes).await;
        assert_eq!(status, 422, "{body:#}");
        assert_eq!(body["kind"], kind, "{body:#}");
        assert!(body["reason"].as_str().unwrap().contains(says), "{body:#}");
        assert_eq!(body["current"]["sha256"], serving);
    }
    // The same through the watched file: reported, and the next change is picked up.
    replace_file(&guest, &truncated);
    let status = admin
        .wait_status(WAIT, "the truncated file is rejected", |s| {
            s["last_rejection"]["origin"]
                .as_str()
                .is_some_and(|o| o.starts_with("file "))
        })
        .await;
    assert_eq!(status["current"]["sha256"], serving);
    assert_eq!(status["rejections"], 4);
    publish(&host, &daily_completion(1)).await;
    wait_created(&host, 1).await;

    let fixed = task_plugin_variant(1);
    replace_file(&guest, &fixed);
    admin.wait_serving(&sha256_hex(&fixed), WAIT).await;
    assert_eq!(
        admin
            .metric("task_events_plugin_rejections_total{reason=\"not-a-component\"}")
            .await,
        3.0
    );
    assert_eq!(
        admin
            .metric("task_events_plugin_rejections_total{reason=\"world-mismatch\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_plugin_whose_canary_traps_or_disagrees_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let canary_file = dir.path().join("canary.jsonl");
    let echo = daily_completion(5).to_string();
    std::fs::write(
        &canary_file,
        task_plugin_case("a daily completion", &echo).await,
    )
    .unwrap();
    let (host, _) = start(
        dir.path(),
        &[
            "--admin-token",
            TOKEN,
            "--canary-file",
            canary_file.to_str().unwrap(),
        ],
    )
    .await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let serving = sha256_hex(task_plugin_bytes());

    // The hostile plugin echoes the event instead of creating the next task.
    let (status, body) = admin.swap(hostile_bytes()).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("canary-mismatch")),
        "{body:#}"
    );
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"a daily completion\"")
            && reason.contains("expected:")
            && reason.contains("got:"),
        "{reason}"
    );

    // The canary file is read for every load: now a case that makes the hostile plugin trap.
    std::fs::write(
        &canary_file,
        task_plugin_case("the trap case", r#"{"do":"trap"}"#).await,
    )
    .unwrap();
    let (status, body) = admin.swap(hostile_bytes()).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("canary-trap")),
        "{body:#}"
    );
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("\"the trap case\""),
        "{body:#}"
    );

    let status = admin.status().await;
    assert_eq!(status["current"]["sha256"], serving);
    assert_eq!(status["last_rejection"]["kind"], "canary-trap");
    assert_eq!(status["swaps"], 0);
    // A build that passes the operator's cases still swaps in.
    let (status, body) = admin.swap(task_plugin_variant(2)).await;
    assert_eq!(
        (status, body["canary"]["operator_cases"].as_u64()),
        (200, Some(1)),
        "{body:#}"
    );
}

#[tokio::test]
async fn a_failing_plugin_is_rolled_back_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let task = sha256_hex(task_plugin_bytes());

    let (status, body) = admin.swap(hostile_bytes()).await;
    assert_eq!(status, 200, "{body:#}");
    // It subscribes to other topics than daprd was told about: swapped, with a warning.
    assert_eq!(body["restart_required"], true, "{body:#}");
    let added = body["subscription_changes"]["added"].as_array().unwrap();
    assert!(
        added.iter().any(|a| a
            .as_str()
            .unwrap()
            .starts_with("kafka-pubsub/hostile -> /events/hostile")),
        "{body:#}"
    );

    // Deliveries on the start-up routes now reach the hostile plugin, which traps.
    for _ in 0..4 {
        publish(&host, &json!({"do": "trap"})).await;
    }
    let status = admin
        .wait_status(WAIT, "an automatic rollback", |s| {
            s["last_rollback"]["trigger"] == "auto"
        })
        .await;
    assert_eq!(status["current"]["sha256"], task, "{status:#}");
    assert_eq!(status["previous"], Value::Null);
    assert_eq!(status["restart_required"], false);
    assert!(
        status["last_rollback"]["reason"]
            .as_str()
            .unwrap()
            .contains("above the rollback threshold"),
        "{status:#}"
    );
    assert!(
        status["last_rollback"]["from"]["failures"]
            .as_u64()
            .unwrap()
            >= 5,
        "{status:#}"
    );
    assert_eq!(
        admin
            .metric("task_events_plugin_rollbacks_total{trigger=\"auto\"}")
            .await,
        1.0
    );

    publish(&host, &daily_completion(1)).await;
    wait_created(&host, 1).await;
}

#[tokio::test]
async fn rollback_on_command_and_unchanged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let task = sha256_hex(task_plugin_bytes());

    let (status, body) = admin.swap(task_plugin_bytes().to_vec()).await;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("unchanged")),
        "{body:#}"
    );
    let (status, body) = admin.rollback().await;
    assert_eq!(status, 409, "nothing to roll back to yet: {body:#}");

    let build = task_plugin_variant(1);
    let (status, _) = admin.swap(build.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = admin.rollback().await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["from"]["sha256"], sha256_hex(&build));
    assert_eq!(body["to"]["sha256"], task);
    let status = admin.status().await;
    assert_eq!(status["current"]["sha256"], task);
    assert_eq!(status["current"]["generation"], 1);
    assert_eq!(status["last_rollback"]["trigger"], "command");
    assert_eq!(
        admin.rollback().await.0,
        409,
        "the rolled-back plugin is not a rollback target"
    );

    // Swapping the same build again is allowed, and comes from the compile cache.
    let (status, body) = admin.swap(build).await;
    assert_eq!(
        (status, body["compile_cache"].as_str()),
        (200, Some("hit")),
        "{body:#}"
    );
}

#[tokio::test]
async fn the_watch_follows_a_configmap_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    // What the kubelet lays out for a ConfigMap volume.
    let volume = dir.path().join("volume");
    std::fs::create_dir_all(volume.join("..2025_01_01")).unwrap();
    std::fs::write(volume.join("..2025_01_01/plugin.wasm"), task_plugin_bytes()).unwrap();
    std::os::unix::fs::symlink("..2025_01_01", volume.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/plugin.wasm", volume.join("plugin.wasm")).unwrap();
    let guest = volume.join("plugin.wasm");
    let data = dir.path().join("data");
    let host = HostProcess::start(
        HOST,
        dir.path(),
        &[
            "--sidecar",
            "embedded",
            "--data-dir",
            data.to_str().unwrap(),
            "--guest",
            guest.to_str().unwrap(),
            "--admin-token",
            TOKEN,
        ],
        &[],
    )
    .await;
    let admin = Admin::new(&host.base, Some(TOKEN));

    // The kubelet's update: a new timestamped dir, a new `..data` symlink renamed into place.
    for (n, stamp) in [(1u32, "..2025_01_02"), (2, "..2025_01_03")] {
        let bytes = task_plugin_variant(n);
        std::fs::create_dir_all(volume.join(stamp)).unwrap();
        std::fs::write(volume.join(stamp).join("plugin.wasm"), &bytes).unwrap();
        std::os::unix::fs::symlink(stamp, volume.join("..data_tmp")).unwrap();
        std::fs::rename(volume.join("..data_tmp"), volume.join("..data")).unwrap();
        let status = admin.wait_serving(&sha256_hex(&bytes), WAIT).await;
        assert!(
            status["current"]["origin"]
                .as_str()
                .unwrap()
                .starts_with("file "),
            "{status:#}"
        );
    }
}

#[tokio::test]
async fn the_watch_follows_rename_and_in_place_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));

    let renamed = task_plugin_variant(1);
    replace_file(&guest, &renamed);
    admin.wait_serving(&sha256_hex(&renamed), WAIT).await;

    // `cp` over the file: truncated, then written in pieces.
    let copied = task_plugin_variant(2);
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&guest).unwrap();
        for chunk in copied.chunks(512 * 1024) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    admin.wait_serving(&sha256_hex(&copied), WAIT).await;
}

#[tokio::test]
async fn sighup_reloads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (host, guest) = start(dir.path(), &["--admin-token", TOKEN, "--watch", "false"]).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    let build = task_plugin_variant(1);
    replace_file(&guest, &build);
    host.signal("HUP");
    let status = admin.wait_serving(&sha256_hex(&build), WAIT).await;
    assert!(
        status["current"]["origin"]
            .as_str()
            .unwrap()
            .starts_with("SIGHUP"),
        "{status:#}"
    );
}

#[tokio::test]
async fn admin_endpoints_refuse_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let (host, _) = start(&dir.path().join("no-token"), &[]).await;
    for request in [
        client.get(format!("{}/admin/plugin", host.base)),
        // (A small body: a server that refuses early may close the connection mid-upload.)
        client
            .post(format!("{}/admin/plugin", host.base))
            .body(b"\0asm".to_vec()),
        client
            .post(format!("{}/admin/rollback", host.base))
            .bearer_auth("guess"),
    ] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("--admin-token"),
            "{body}"
        );
    }
    drop(host);

    let (host, _) = start(&dir.path().join("token"), &["--admin-token", TOKEN]).await;
    let url = format!("{}/admin/plugin", host.base);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        client
            .get(&url)
            .bearer_auth("admin-secreT")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .basic_auth("admin", Some(TOKEN))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .post(&url)
            .body(b"\0asm".to_vec())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = Admin::new(&host.base, Some(TOKEN)).status().await;
    assert_eq!(status["swaps"], 0, "the refused swap did nothing");
}

#[tokio::test]
async fn a_restart_takes_the_compiled_plugin_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _) = start(dir.path(), &[]).await;
    let first = host.log();
    assert!(first.contains("compile_cache=\"miss\""), "{first}");
    host.terminate(WAIT).await;
    let (host, _) = start(dir.path(), &[]).await;
    let second = host.log();
    assert!(second.contains("compile_cache=\"hit\""), "{second}");
}

/// Dapr mode: the same swap under load, with the daprd stand-in delivering and receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dapr_mode_swaps_under_load_fail_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    let daprd = FakeDaprd::start(DaprdConfig {
        app_port,
        app_id: "recurring-task-service".into(),
        ..DaprdConfig::default()
    })
    .await;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = plugins.join("plugin.wasm");
    std::fs::write(&guest, task_plugin_bytes()).unwrap();
    let data = dir.path().join("data");
    let dapr_port = daprd.http_port().to_string();
    let host = HostProcess::start_on(
        app_port,
        HOST,
        dir.path(),
        &[
            "--sidecar",
            "dapr",
            "--data-dir",
            data.to_str().unwrap(),
            "--guest",
            guest.to_str().unwrap(),
            "--admin-token",
            TOKEN,
        ],
        &[("DAPR_HTTP_PORT", dapr_port.as_str())],
    )
    .await;
    daprd
        .connect_app()
        .await
        .expect("daprd reads the subscriptions");
    let admin = Admin::new(&host.base, Some(TOKEN));

    let mut published = 0u32;
    for build in 1..=4u32 {
        for _ in 0..10 {
            let event = daily_completion(published);
            let key = event["user_id"].as_str().unwrap().to_string();
            let status = daprd
                .publish_json(
                    "kafka-pubsub",
                    "task-events",
                    "application/json",
                    event.to_string().as_bytes(),
                    Some(&key),
                )
                .await;
            assert!(status.is_success(), "publish: {status}");
            published += 1;
        }
        let bytes = task_plugin_variant(build);
        if build % 2 == 1 {
            let (status, body) = admin.swap(bytes).await;
            assert_eq!(status, 200, "{body:#}");
        } else {
            replace_file(&guest, &bytes);
            admin.wait_serving(&sha256_hex(&bytes), WAIT).await;
        }
    }

    let created = |d: &FakeDaprd| {
        d.topic("task-events")
            .iter()
            .filter_map(|r| r.json())
            .filter(|e| e["type"] == "task.created")
            .count()
    };
    let waited = daprd
        .wait_until(WAIT, "every completion's next task", |d| {
            created(d) >= published as usize
        })
        .await;
    assert!(
        waited.is_ok(),
        "{}\nhost log:\n{}",
        waited.unwrap_err(),
        host.log()
    );
    assert_eq!(
        created(&daprd),
        published as usize,
        "no completion produced two"
    );
    let failed: Vec<_> = daprd
        .deliveries()
        .into_iter()
        .filter(|a| a.outcome != Outcome::Success)
        .collect();
    assert!(
        failed.is_empty(),
        "deliveries not answered SUCCESS: {failed:#?}"
    );
    assert!(
        daprd.topic("task-events-dlq").is_empty(),
        "nothing was dead-lettered"
    );
    let status = admin.status().await;
    assert_eq!(status["swaps"], 4);
    assert_eq!(
        status["current"]["sha256"],
        sha256_hex(&task_plugin_variant(4))
    );
    daprd.stop().await;
}
