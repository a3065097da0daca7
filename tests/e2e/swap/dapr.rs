//! Dapr mode: a swap under load with the standalone sidecar delivering to the host and
//! receiving what it publishes (tests/src/dapr_mode.rs).

use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::dapr_mode::{DaprMode, TASK_ROUTE};
use task_events_tests::embedded_api::{publish, topic_events, wait_created};
use task_events_tests::events::daily_completion;
use task_events_tests::plugins::{replace_file, task_plugin_bytes, task_plugin_variant};

use super::{HOST, TOKEN, WAIT};

/// Dapr mode: the same swap under load, with the sidecar delivering and receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dapr_mode_swaps_under_load_fail_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = plugins.join("plugin.wasm");
    std::fs::write(&guest, task_plugin_bytes()).unwrap();
    let p = DaprMode::start(
        HOST,
        dir.path(),
        None,
        &["--guest", guest.to_str().unwrap(), "--admin-token", TOKEN],
        &[],
    )
    .await;
    let admin = Admin::new(&p.host.base, Some(TOKEN));

    let mut published = 0u32;
    for build in 1..=4u32 {
        for _ in 0..10 {
            publish(&p.sidecar, &daily_completion(published)).await;
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

    let created = wait_created(&p.sidecar, published as usize, WAIT).await;
    assert_eq!(
        created.len(),
        published as usize,
        "no completion produced two"
    );
    // Every completion and every created task's own delivery, all answered SUCCESS.
    p.wait_answers(TASK_ROUTE, "every delivery answered", |a| {
        a.len() >= 2 * published as usize
    })
    .await;
    let answers = p.answers(TASK_ROUTE);
    assert!(
        answers.iter().all(|a| a == "SUCCESS"),
        "deliveries not answered SUCCESS: {answers:?}"
    );
    assert!(
        topic_events(&p.sidecar, "task-events-dlq").await.is_empty(),
        "nothing was dead-lettered"
    );
    let status = admin.status().await;
    assert_eq!(status["swaps"], 4);
    assert_eq!(
        status["current"]["sha256"],
        sha256_hex(&task_plugin_variant(4))
    );
}
