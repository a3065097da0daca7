//! Backpressure that holds under cancellation: a delivery whose HTTP request is cancelled while
//! its wasm call runs keeps its instance slot until the call ends, so live instances never pass
//! the pool size, nothing traps for want of an instance, and a healthy plugin on probation is not
//! rolled back.

use std::time::Duration;

use serde_json::json;
use task_events_tests::admin::Admin;
use task_events_tests::host::HostProcess;
use task_events_tests::plugins::hostile_bytes;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const POOL: usize = 2;

async fn deliver(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    action: &str,
) -> reqwest::Result<u16> {
    let body = json!({"specversion": "1.0", "id": id, "type": "t", "source": "s",
                      "datacontenttype": "application/json", "data": {"do": action}});
    let resp = client
        .post(format!("{base}/events/task-events"))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_requests_do_not_exhaust_the_pool_or_roll_back_a_healthy_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let pool = POOL.to_string();
    let args = [
        "--admin-token",
        "t",
        "--max-instances",
        &pool,
        "--call-deadline-ms",
        "60000",
        "--rollback-min-deliveries",
        "1",
    ];
    let host = HostProcess::embedded(HOST, dir.path(), &args, &[]).await;
    let admin = Admin::new(&host.base, Some("t"));
    // The hostile plugin serves the start-up routes, on probation.
    let (status, body) = admin.swap(hostile_bytes()).await;
    assert_eq!(status, 200, "{body:#}");

    // Load: many slow deliveries whose requests are all cancelled mid-call.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let cancelled = (0..4 * POOL).map(|n| {
        let (client, base) = (impatient.clone(), host.base.clone());
        tokio::spawn(async move { deliver(&client, &base, &format!("spin-{n}"), "spin").await })
    });
    let mut timed_out = 0;
    for task in cancelled {
        if task.await.unwrap().is_err_and(|e| e.is_timeout()) {
            timed_out += 1;
        }
    }
    assert!(timed_out > 0, "no request was cancelled mid-call");

    // Deliveries after the cancellations wait for a slot and succeed.
    let patient = reqwest::Client::new();
    let after = (0..2 * POOL).map(|n| {
        let (client, base) = (patient.clone(), host.base.clone());
        tokio::spawn(async move { deliver(&client, &base, &format!("echo-{n}"), "echo").await })
    });
    for task in after {
        assert_eq!(task.await.unwrap().unwrap(), 200, "log:\n{}", host.log());
    }

    let status = admin.status().await;
    let instances = &status["instances"];
    let peak = instances["peak"].as_u64().unwrap();
    assert!((1..=POOL as u64).contains(&peak), "{status:#}");
    assert_eq!(instances["max"], POOL as u64);
    assert_eq!(status["rollbacks"], 0, "{status:#}");
    assert_eq!(status["current"]["generation"], 2, "{status:#}");
    assert_eq!(status["current"]["failures"], 0, "{status:#}");
    assert_eq!(
        admin
            .metric("task_events_plugin_failures_total{kind=\"trap\"}")
            .await,
        0.0
    );
}
