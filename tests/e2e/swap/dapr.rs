//! Dapr mode: a swap under load with the daprd stand-in (tests/src/daprd) delivering to the
//! host and receiving what it publishes.

use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::daprd::{DaprdConfig, FakeDaprd, Outcome};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, free_port};
use task_events_tests::plugins::{replace_file, task_plugin_bytes, task_plugin_variant};

use super::{HOST, TOKEN, WAIT};

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
