//! Swapping the plugin while the host runs, end to end: the real host binary, the real task
//! plugin (and builds of it that differ only by a custom section), the hostile fixture, driven
//! through the admin endpoints, the watched `--guest` file and SIGHUP; in embedded mode and
//! against the daprd stand-in. No timing assertions: every wait is a bounded poll.
//!
//! Here: swaps under load, rejections, canary, rollback, the compile cache. The triggers (file
//! watch, SIGHUP, admin access) are in `swap/triggers.rs`; Dapr mode in `swap/dapr.rs`.

#[path = "swap/dapr.rs"]
mod dapr;
#[path = "swap/triggers.rs"]
mod triggers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::embedded_api::{publish, publish_until, topic_events, wait_created};
use task_events_tests::events::daily_completion;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::{
    hostile_bytes, replace_file, task_plugin_bytes, task_plugin_case, task_plugin_variant,
};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const TOKEN: &str = "admin-secret";
/// Bound on every wait for a swap, a delivery or a rollback (a loaded 2-core machine is slow).
const WAIT: Duration = Duration::from_secs(90);

/// A host in embedded mode whose `--guest` is `plugins/plugin.wasm` under `dir` (the task plugin).
async fn start(dir: &Path, extra: &[&str]) -> (HostProcess, PathBuf) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = plugins.join("plugin.wasm");
    if !guest.exists() {
        std::fs::write(&guest, task_plugin_bytes()).unwrap();
    }
    let guest_path = guest.to_str().unwrap().to_string();
    let mut args = vec!["--guest", guest_path.as_str()];
    args.extend_from_slice(extra);
    (
        HostProcess::embedded(HOST, dir, &args, &[("NO_COLOR", "1")]).await,
        guest,
    )
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

    let mut parents = wait_created(&host, accepted as usize, WAIT).await;
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
    wait_created(&host, 1, WAIT).await;

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
    wait_created(&host, 1, WAIT).await;
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
async fn a_restart_takes_the_compiled_plugin_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    // Entries are trusted across restarts only under a key kept outside the data directory
    // (host/src/plugin/cache_trust.rs); tests/e2e/cache_trust.rs covers the refusals.
    let key = dir.path().join("cache.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let keyed = ["--cache-key-file", key.to_str().unwrap()];
    let (mut host, _) = start(dir.path(), &keyed).await;
    let first = host.log();
    assert!(first.contains("compile_cache=\"miss\""), "{first}");
    host.terminate(WAIT).await;
    let (host, _) = start(dir.path(), &keyed).await;
    let second = host.log();
    assert!(second.contains("compile_cache=\"hit\""), "{second}");
}
