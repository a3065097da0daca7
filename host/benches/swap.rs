//! Swap benchmark: how long a new plugin file takes to serve, and what a swap costs deliveries.
//!
//! Starts the real host binary (embedded sidecar, `--guest` watched, admin token) on loopback,
//! drives a steady stream of task completions at it, and while the load runs replaces the
//! `--guest` file (temp file + rename, as an operator or a ConfigMap update would):
//! - `BENCH_COLD` times (default 5) with a build never seen before (compile-cache miss);
//! - `BENCH_SWAPS` times (default 20) alternating between two builds already in the cache;
//! - then `BENCH_ADMIN` times (default 10) through `POST /admin/plugin` (no file, no debounce).
//! `BENCH_DEBOUNCE_MS` (default 100, the host's default) sets `--watch-debounce-ms`.
//!
//! For each swap it measures the time from the rename to the first delivery served by the new
//! generation (polling `GET /admin/plugin` every 2 ms: current sha256 is the new one and it has
//! made at least one plugin call). Afterwards it stops the load, waits for every accepted
//! completion's `task.created`, and counts failed deliveries (RETRY/DROP answers, plugin
//! failures, dead letters) and lost ones (accepted but never processed). Bounded: at most
//! `BENCH_MAX_EVENTS` events and a few minutes; it stops by itself and prints a table.
//!
//! Run: `cargo bench -p task-events-host --bench swap` (see docs/swap-benchmark.md).
//! The two builds are the bundled plugin and the same bytes with a custom section appended:
//! identical behaviour, different sha256.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const TOKEN: &str = "bench-token";

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `bytes` with a custom section (id 0, name, payload) appended: same plugin, new sha256.
fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("uploading");
    std::fs::write(&temp, bytes).expect("writing the new plugin");
    std::fs::rename(&temp, path).expect("renaming the new plugin into place");
}

fn completion(n: u32) -> Value {
    json!({
        "event_id": format!("bench-{n}"),
        "event_type": "task.completed",
        "event_version": "1.0",
        "task_id": 1_000_000 + i64::from(n),
        "user_id": format!("user-{}", n % 16),
        "timestamp": "2025-12-29T10:00:00Z",
        "payload": {"recurring_pattern": "DAILY", "due_date": "2025-12-29T09:00:00Z",
                    "completed_at": "2025-12-29T10:00:00Z", "title": "bench"},
    })
}

struct Host {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    async fn start(dir: &Path, guest: &Path, debounce_ms: u32) -> Host {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("host.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_task-events-host"))
            .args([
                "serve",
                "--sidecar",
                "embedded",
                "--app-port",
                &port.to_string(),
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--guest")
            .arg(guest)
            .args([
                "--admin-token",
                TOKEN,
                "--watch-debounce-ms",
                &debounce_ms.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("DAPR_HTTP_PORT")
            .env_remove("DAPR_HTTP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the host");
        let host = Host {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while host
            .client
            .get(format!("{}/healthz", host.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the host did not start; see {}",
                dir.join("host.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        host
    }

    async fn status(&self) -> Value {
        let resp = self
            .client
            .get(format!("{}/admin/plugin", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await;
        resp.expect("GET /admin/plugin")
            .json()
            .await
            .expect("status JSON")
    }

    async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    async fn topic(&self, topic: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut from = 0;
        loop {
            let url = format!(
                "{}/v1.0-embedded/topics/{topic}?from={from}&limit=1000",
                self.base
            );
            let page: Value = self
                .client
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let records = page["records"].as_array().cloned().unwrap_or_default();
            if records.is_empty() {
                return events;
            }
            events.extend(records.into_iter().map(|r| r["event"].clone()));
            from = page["next"].as_u64().unwrap();
        }
    }

    /// `POST /admin/plugin`: the time until the response (the new build serves when it comes).
    async fn swap_admin(&self, bytes: &[u8]) -> Duration {
        let started = Instant::now();
        let resp = self
            .client
            .post(format!("{}/admin/plugin", self.base))
            .bearer_auth(TOKEN)
            .body(bytes.to_vec())
            .send()
            .await;
        let body: Value = resp
            .expect("POST /admin/plugin")
            .json()
            .await
            .expect("swap JSON");
        assert_eq!(body["result"], "swapped", "{body:#}");
        started.elapsed()
    }

    /// Replaces the file and returns the time until the new build served a delivery.
    async fn swap_file(&self, guest: &Path, bytes: &[u8]) -> Duration {
        let sha = sha256_hex(bytes);
        let started = Instant::now();
        replace_file(guest, bytes);
        loop {
            let status = self.status().await;
            if status["current"]["sha256"] == sha.as_str()
                && status["current"]["deliveries"].as_u64() >= Some(1)
            {
                return started.elapsed();
            }
            if let Some(rejection) = status["last_rejection"]["sha256"]
                .as_str()
                .filter(|s| *s == sha)
            {
                panic!(
                    "the build {rejection} was rejected: {}",
                    status["last_rejection"]
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the swap did not happen: {status:#}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
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

    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let guest = plugins.join("plugin.wasm");
    let bundled = task_events_host::BUNDLED_PLUGIN;
    std::fs::write(&guest, bundled).unwrap();
    let host = Arc::new(Host::start(dir.path(), &guest, debounce_ms).await);
    println!(
        "host up at {} (data in {})",
        host.base,
        dir.path().display()
    );

    // Continuous load: one completion every `every`, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU32::new(0));
    let load = {
        let (host, stop, accepted) = (host.clone(), stop.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while n < max_events && !stop.load(Ordering::Relaxed) {
                let resp = host
                    .client
                    .post(format!(
                        "{}/v1.0/publish/kafka-pubsub/task-events",
                        host.base
                    ))
                    .header("content-type", "application/json")
                    .body(completion(n).to_string())
                    .send()
                    .await;
                if resp.is_ok_and(|r| r.status() == 204) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                tokio::time::sleep(every).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut cold = Vec::new();
    for i in 0..cold_swaps {
        let build = with_custom_section(
            bundled,
            "bench-build",
            format!("cold-{i}-{}", std::process::id()).as_bytes(),
        );
        cold.push(host.swap_file(&guest, &build).await);
    }
    // Two builds, compiled (and cached) once, then swapped back and forth.
    let a = with_custom_section(bundled, "bench-build", b"warm-a");
    let b = with_custom_section(bundled, "bench-build", b"warm-b");
    host.swap_file(&guest, &a).await;
    host.swap_file(&guest, &b).await;
    let mut warm = Vec::new();
    for i in 0..warm_swaps {
        let build = if i % 2 == 0 { &a } else { &b };
        warm.push(host.swap_file(&guest, build).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut admin = Vec::new();
    for i in 0..admin_swaps {
        admin.push(host.swap_admin(if i % 2 == 0 { &a } else { &b }).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let accepted = accepted.load(Ordering::Relaxed) as usize;

    let deadline = Instant::now() + Duration::from_secs(180);
    let (mut unique, mut created) = (0, 0);
    while Instant::now() < deadline {
        let mut parents: Vec<i64> = host
            .topic("task-events")
            .await
            .iter()
            .filter(|e| e["type"] == "task.created")
            .filter_map(|e| e["data"]["payload"]["parent_task_id"].as_i64())
            .collect();
        created = parents.len();
        parents.sort_unstable();
        parents.dedup();
        unique = parents.len();
        if unique >= accepted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead_letters = host.topic("task-events-dlq").await.len();
    let retry = host
        .metric("task_events_deliveries_total{status=\"RETRY\"}")
        .await;
    let dropped = host
        .metric("task_events_deliveries_total{status=\"DROP\"}")
        .await;
    let mut plugin_failures = 0.0;
    for kind in ["trap", "deadline", "memory"] {
        plugin_failures += host
            .metric(&format!(
                "task_events_plugin_failures_total{{kind=\"{kind}\"}}"
            ))
            .await;
    }
    let status = host.status().await;

    println!();
    println!(
        "| swap (file rename -> first delivery on the new build) | n | min ms | median ms | p90 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|");
    summary("cold (compile-cache miss)", &cold);
    summary("warm (compile-cache hit)", &warm);
    if !admin.is_empty() {
        println!();
        println!(
            "| swap via POST /admin/plugin (request -> response; serving when it returns) | n | min ms | median ms | p90 ms | max ms |"
        );
        println!("|---|---|---|---|---|---|");
        summary("warm (compile-cache hit)", &admin);
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
