//! Swap benchmark: how long a new plugin file takes to serve, and what a swap costs deliveries.
//!
//! Starts the real host (`host-under-test`, the host's `main` built by this package; embedded
//! sidecar, `--guest` watched, admin token) on loopback, drives a steady stream of task
//! completions at it, and while the load runs replaces the `--guest` file (temp file + rename,
//! as an operator or a ConfigMap update would):
//! - `BENCH_COLD` times (default 5) with a build never seen before (compile-cache miss);
//! - `BENCH_SWAPS` times (default 20) alternating between two builds already in the cache;
//! - then `BENCH_ADMIN` times (default 10) through `POST /admin/plugin` (no file, no debounce).
//!
//! `BENCH_DEBOUNCE_MS` (default 100, the host's default) sets `--watch-debounce-ms`.
//!
//! For each swap it measures the time from the rename to the first delivery served by the new
//! generation (polling `GET /admin/plugin` every 2 ms: current sha256 is the new one and it has
//! made at least one plugin call). Afterwards it stops the load, waits for every accepted
//! completion's `task.created`, and counts failed deliveries (RETRY/DROP answers, plugin
//! failures, dead letters) and lost ones (accepted but never processed). Bounded: at most
//! `BENCH_MAX_EVENTS` events and a few minutes; it stops by itself and prints a table.
//!
//! Run: `cargo bench -p task-events-tests --bench swap --profile dev` (see
//! docs/swap-benchmark.md). The builds are the bundled plugin with a custom section appended
//! (`task_plugin_variant`): identical behaviour, different sha256. The host, the plugins, the
//! events and the admin calls are the end-to-end harness's (`task_events_tests`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use task_events_tests::admin::{Admin, sha256_hex};
use task_events_tests::embedded_api::{created_parents, publish_until, topic_events};
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::{replace_file, task_plugin_file, task_plugin_variant};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const TOKEN: &str = "bench-token";
/// Bound on one swap (a cold compile on a loaded 2-core machine takes seconds, not minutes).
const SWAP_WAIT: Duration = Duration::from_secs(120);

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `POST /admin/plugin`: the time until the response (the new build serves when it comes).
async fn swap_admin(admin: &Admin, bytes: &[u8]) -> Duration {
    let started = Instant::now();
    let (status, body) = admin.swap(bytes.to_vec()).await;
    assert_eq!(body["result"], "swapped", "HTTP {status}: {body:#}");
    started.elapsed()
}

/// Replaces the file and returns the time until the new build served a delivery.
async fn swap_file(admin: &Admin, guest: &Path, bytes: &[u8]) -> Duration {
    let sha = sha256_hex(bytes);
    let serving = |s: &Value| {
        s["current"]["sha256"] == sha.as_str() && s["current"]["deliveries"].as_u64() >= Some(1)
    };
    let rejected = |s: &Value| s["last_rejection"]["sha256"] == sha.as_str();
    let started = Instant::now();
    replace_file(guest, bytes);
    let every = Duration::from_millis(2);
    let status = admin
        .wait_status_every(SWAP_WAIT, every, "the swap", |s| serving(s) || rejected(s))
        .await;
    let elapsed = started.elapsed();
    assert!(
        serving(&status),
        "the build {sha} was rejected: {}",
        status["last_rejection"]
    );
    elapsed
}

fn summary(name: &str, samples: &[Duration]) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
        ms.len(),
        pick(0.0),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let cold_swaps = env_u32("BENCH_COLD", 5);
    let warm_swaps = env_u32("BENCH_SWAPS", 20);
    let max_events = env_u32("BENCH_MAX_EVENTS", 20_000);
    let every = Duration::from_millis(u64::from(env_u32("BENCH_EVERY_MS", 5)));
    let admin_swaps = env_u32("BENCH_ADMIN", 10);
    let debounce_ms = env_u32("BENCH_DEBOUNCE_MS", 100);

    // A fresh data directory, so a fresh compile cache: every variant is a miss the first time.
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = task_plugin_file(&plugins);
    let debounce = debounce_ms.to_string();
    let args = [
        "--guest",
        guest.to_str().unwrap(),
        "--admin-token",
        TOKEN,
        "--watch-debounce-ms",
        &debounce,
    ];
    let quiet = [("RUST_LOG", "warn"), ("NO_COLOR", "1")];
    let host = HostProcess::embedded(HOST, dir.path(), &args, &quiet).await;
    let admin = Admin::new(&host.base, Some(TOKEN));
    println!(
        "host up at {} (data in {})",
        host.base,
        dir.path().display()
    );

    // Continuous load: one completion every `every`, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let load = publish_until(host.base.clone(), 0, max_events, every, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut cold = Vec::new();
    for i in 0..cold_swaps {
        cold.push(swap_file(&admin, &guest, &task_plugin_variant(i)).await);
    }
    // Two builds, compiled (and cached) once, then swapped back and forth.
    let a = task_plugin_variant(cold_swaps);
    let b = task_plugin_variant(cold_swaps + 1);
    swap_file(&admin, &guest, &a).await;
    swap_file(&admin, &guest, &b).await;
    let mut warm = Vec::new();
    for i in 0..warm_swaps {
        let build = if i % 2 == 0 { &a } else { &b };
        warm.push(swap_file(&admin, &guest, build).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut admin_times = Vec::new();
    for i in 0..admin_swaps {
        admin_times.push(swap_admin(&admin, if i % 2 == 0 { &a } else { &b }).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let accepted = load.await.unwrap() as usize;

    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut unique, mut created) = (0, 0);
    while Instant::now() < deadline {
        let mut parents = created_parents(&host).await;
        created = parents.len();
        parents.sort_unstable();
        parents.dedup();
        unique = parents.len();
        if unique >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead_letters = topic_events(&host, "task-events-dlq").await.len();
    let retry = admin
        .metric("task_events_deliveries_total{status=\"RETRY\"}")
        .await;
    let dropped = admin
        .metric("task_events_deliveries_total{status=\"DROP\"}")
        .await;
    let mut plugin_failures = 0.0;
    for kind in ["trap", "deadline", "memory"] {
        plugin_failures += admin
            .metric(&format!(
                "task_events_plugin_failures_total{{kind=\"{kind}\"}}"
            ))
            .await;
    }
    let status = admin.status().await;

    println!();
    println!(
        "| swap (file rename -> first delivery on the new build) | n | min ms | median ms | p90 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|");
    summary("cold (compile-cache miss)", &cold);
    summary("warm (compile-cache hit)", &warm);
    if !admin_times.is_empty() {
        println!();
        println!(
            "| swap via POST /admin/plugin (request -> response; serving when it returns) | n | min ms | median ms | p90 ms | max ms |"
        );
        println!("|---|---|---|---|---|---|");
        summary("warm (compile-cache hit)", &admin_times);
    }
    println!();
    println!(
        "(watch debounce {debounce_ms} ms; load: one completion every {} ms)",
        every.as_millis()
    );
    println!();
    println!("| under continuous load | value |");
    println!("|---|---|");
    println!("| swaps done (all kinds) | {} |", status["swaps"]);
    println!("| rejections | {} |", status["rejections"]);
    println!("| completions accepted | {accepted} |");
    println!("| completions processed (unique task.created) | {unique} |");
    println!("| duplicate task.created | {} |", created - unique);
    println!(
        "| lost (accepted, never processed) | {} |",
        accepted.saturating_sub(unique)
    );
    println!("| deliveries answered RETRY | {retry} |");
    println!("| deliveries answered DROP | {dropped} |");
    println!("| plugin failures (trap/deadline/memory) | {plugin_failures} |");
    println!("| dead letters | {dead_letters} |");
}
