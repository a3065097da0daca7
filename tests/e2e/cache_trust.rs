//! The compile cache runs only code the host wrote: with the same `--cache-key-file` a restart
//! is a cache hit; a planted entry (here: another plugin's genuine entry under this plugin's
//! name, the strongest forgery a writer of the data directory can make without the key) is
//! logged, deleted and recompiled, and the host serves the plugin it was given; without the key
//! file, entries of an earlier process are not trusted either.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::HOSTILE_WASM;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|dir| dir.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    entries.sort();
    entries
}

/// Runs the host until healthy, returns its log and the topics it subscribes to, and stops it.
async fn run_once(dir: &Path, args: &[&str]) -> (String, Vec<String>) {
    let mut host = HostProcess::embedded(HOST, dir, args, &[("NO_COLOR", "1")]).await;
    let subscriptions: Value = reqwest::get(format!("{}/dapr/subscribe", host.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let topics = subscriptions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["topic"].as_str().unwrap().to_string())
        .collect();
    host.terminate(Duration::from_secs(30)).await;
    (host.log(), topics)
}

#[tokio::test]
async fn a_planted_cache_entry_is_deleted_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let key = secrets.join("cache.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = key.to_str().unwrap();
    let cache = dir.path().join("data").join("cache");

    // The hostile plugin's genuine entry, made by the host with the real key.
    let (_, topics) = run_once(
        dir.path(),
        &["--guest", HOSTILE_WASM, "--cache-key-file", key],
    )
    .await;
    assert_eq!(topics, ["hostile"]);
    let hostile_entry = entries(&cache);
    assert_eq!(hostile_entry.len(), 1);
    let hostile_code = std::fs::read(&hostile_entry[0]).unwrap();

    // The task plugin's entry; a restart with the same key is a hit (warm start-up).
    let keyed = ["--cache-key-file", key];
    let (log, _) = run_once(dir.path(), &keyed).await;
    assert!(log.contains("compile_cache=\"miss\""), "{log}");
    let task_entry: Vec<PathBuf> = entries(&cache)
        .into_iter()
        .filter(|p| *p != hostile_entry[0])
        .collect();
    assert_eq!(task_entry.len(), 1);
    let (log, _) = run_once(dir.path(), &keyed).await;
    assert!(log.contains("compile_cache=\"hit\""), "{log}");

    // Plant the hostile code under the task plugin's name.
    std::fs::write(&task_entry[0], &hostile_code).unwrap();
    let (log, topics) = run_once(dir.path(), &keyed).await;
    assert!(
        log.contains("compile-cache entry not trusted: its authentication tag does not match"),
        "{log}"
    );
    assert!(log.contains("compile_cache=\"miss\""), "{log}");
    assert_eq!(
        topics,
        ["task-events", "reminders", "task-updates"],
        "the task plugin serves"
    );
    assert_ne!(
        std::fs::read(&task_entry[0]).unwrap(),
        hostile_code,
        "replaced by a fresh entry"
    );

    // Without the key file, a new process does not trust what an earlier one wrote.
    let (log, _) = run_once(dir.path(), &[]).await;
    assert!(log.contains("compile-cache entry not trusted"), "{log}");
    assert!(log.contains("--cache-key-file"), "{log}");
}
