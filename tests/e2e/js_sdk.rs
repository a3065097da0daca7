//! The official Dapr JavaScript SDK (`@dapr/dapr`, pinned in tests/js/package.json) against the
//! standalone sidecar: as a client (DaprClient over HTTP: metadata, publish, bulk publish,
//! state) and as an app (DaprServer subscribing, answering SUCCESS and RETRY).
//!
//! Needs node and npm on PATH; without them the tests fail saying so. The SDK is installed
//! with `npm ci` into tests/js/node_modules when that is missing or older than the lock file;
//! an exclusive file lock makes concurrent test binaries install once, not race.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use task_events_tests::host::free_port;
use task_events_tests::proxy::{Exchange, Proxy};
use task_events_tests::sidecar_process::SidecarProcess;
use task_events_tests::test_app::TestApp;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const EXE: &str = env!("CARGO_BIN_EXE_host-under-test");
const WAIT: Duration = Duration::from_secs(60);
/// Written into node_modules after a successful install: the lock file it was installed from.
const MARKER: &str = "node_modules/.task-events-lock";

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Fails the test (not skips it) when a tool is missing: CI must have node and npm.
fn require_tool(tool: &str) {
    let out = std::process::Command::new(tool).arg("--version").output();
    match out {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "`{tool} --version` failed ({other:?}): the JS SDK tests need Node.js 20+ and npm on PATH"
        ),
    }
}

/// Installs the pinned SDK if node_modules is missing or was installed from another lock file.
/// Holds an exclusive lock on tests/js/.install.lock while checking and installing.
fn ensure_sdk() {
    require_tool("node");
    require_tool("npm");
    let dir = js_dir();
    let lock_path = dir.join(".install.lock");
    let lock = std::fs::File::create(&lock_path).expect("creating tests/js/.install.lock");
    let deadline = Instant::now() + Duration::from_secs(600);
    while lock.try_lock().is_err() {
        assert!(
            Instant::now() < deadline,
            "another test held {lock_path:?} for 10 min"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let wanted = std::fs::read(dir.join("package-lock.json")).expect("reading package-lock.json");
    if std::fs::read(dir.join(MARKER)).is_ok_and(|have| have == wanted) {
        return;
    }
    let mut child = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting npm ci");
    let deadline = Instant::now() + Duration::from_secs(480);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for npm ci") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("npm ci in {dir:?} took more than 8 min");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = child.wait_with_output().expect("npm ci output");
    assert!(
        status.success(),
        "npm ci in {dir:?} failed ({status}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut marker = std::fs::File::create(dir.join(MARKER)).expect("writing the install marker");
    marker
        .write_all(&wanted)
        .expect("writing the install marker");
    // The lock is released when `lock` is dropped.
}

/// A node script from tests/js, with only the given environment (plus PATH to find node).
fn node(script: &str, envs: &[(&str, String)]) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(js_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let lines = BufReader::new(child.stdout.take().expect("node's stdout")).lines();
    (child, lines)
}

/// The next JSON line the script prints (bounded); non-JSON lines (SDK logs) are skipped.
async fn next_json(
    lines: &mut Lines<BufReader<ChildStdout>>,
    what: &str,
    sidecar: &SidecarProcess,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) => match serde_json::from_str::<Value>(&l) {
                Ok(v @ Value::Object(_)) => {
                    assert!(
                        v.get("error").is_none(),
                        "{what}: the script failed: {}\nsidecar log:\n{}",
                        v["error"],
                        sidecar.log()
                    );
                    return v;
                }
                _ => continue,
            },
            Ok(Ok(None)) => panic!(
                "{what}: the script exited early; sidecar log:\n{}",
                sidecar.log()
            ),
            Ok(Err(e)) => panic!("{what}: reading the script's output: {e}"),
            Err(_) => panic!(
                "{what}: nothing within {WAIT:?}; sidecar log:\n{}",
                sidecar.log()
            ),
        }
    }
}

#[tokio::test]
async fn the_sdk_client_uses_metadata_publish_bulk_publish_and_state() {
    tokio::task::spawn_blocking(ensure_sdk).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(json!([])).await;
    let token = [("DAPR_API_TOKEN", "sdk-token")];
    let mut sidecar =
        SidecarProcess::start(EXE, dir.path(), app.port, "js-client", &[], &token).await;
    sidecar.wait_ready(WAIT).await;
    // The SDK talks to the sidecar through the proxy, so the journal shows each of its calls.
    // Its first two start-up polls fail: it must keep waiting for the sidecar, as it does for
    // a daprd still starting.
    let proxy = Proxy::start(&sidecar.base).await;
    proxy.fail_next("/v1.0/metadata", 2, 500);
    let envs = [
        ("DAPR_PORT", proxy.port.to_string()),
        ("DAPR_API_TOKEN", "sdk-token".to_string()),
        ("TOPIC", "sdk-single".to_string()),
        ("BULK_TOPIC", "sdk-bulk".to_string()),
    ];
    let (mut child, mut lines) = node("client.js", &envs);
    let out = next_json(&mut lines, "client.js", &sidecar).await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("client.js exits")
        .unwrap();
    assert!(status.success(), "client.js: {status}");
    let r = &out["result"];
    assert_eq!(r["metadata"]["id"], "js-client", "{r:#}");
    let components: Vec<&str> = r["metadata"]["components"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        components.contains(&"kafka-pubsub") && components.contains(&"statestore"),
        "{r:#}"
    );
    assert_eq!(
        r["published"],
        json!({}),
        "publish answered an error: {r:#}"
    );
    assert_eq!(r["failed"], json!([]), "bulk publish failed: {r:#}");
    assert_eq!(r["saved"], json!({}), "state save answered an error: {r:#}");
    assert_eq!(r["got"], json!({"owner": "js-sdk", "n": 7}));
    assert_eq!(r["missing"], json!(""), "a missing key is 204, empty");
    check_sdk_calls(&proxy.journal());
    // What the sidecar made of them.
    let single = task_events_tests::embedded_api::wait_topic(&sidecar, "sdk-single", 1, WAIT).await;
    assert_eq!(single[0]["data"], json!({"kind": "single", "n": 1}));
    assert_eq!(single[0]["datacontenttype"], "application/json");
    let bulk = task_events_tests::embedded_api::wait_topic(&sidecar, "sdk-bulk", 3, WAIT).await;
    let mut ns: Vec<i64> = bulk
        .iter()
        .map(|e| e["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, [1, 2, 3]);
}

/// The SDK's calls, in order, exactly as the sidecar must take them.
fn check_sdk_calls(journal: &[Exchange]) {
    let calls: Vec<(String, String, Option<u16>)> = journal
        .iter()
        .map(|x| (x.method.clone(), x.path.clone(), x.status()))
        .collect();
    let expected = [
        // DaprClient.start(): polls GET /v1.0/metadata (every 500 ms) until a 2xx with a body.
        ("GET", "/v1.0/metadata", 500),
        ("GET", "/v1.0/metadata", 500),
        ("GET", "/v1.0/metadata", 200),
        ("GET", "/v1.0/metadata", 200),
        // The SDK always appends `?`, even with no metadata.
        ("POST", "/v1.0/publish/kafka-pubsub/sdk-single?", 204),
        (
            "POST",
            "/v1.0-alpha1/publish/bulk/kafka-pubsub/sdk-bulk?",
            204,
        ),
        ("POST", "/v1.0/state/statestore?", 204),
        ("GET", "/v1.0/state/statestore/sdk-key?", 200),
        ("GET", "/v1.0/state/statestore/no-such-key?", 204),
    ];
    let expected: Vec<(String, String, Option<u16>)> = expected
        .iter()
        .map(|(m, p, s)| (m.to_string(), p.to_string(), Some(*s)))
        .collect();
    assert_eq!(calls, expected);
    assert!(
        journal.iter().all(
            |x| x.request_headers.get("dapr-api-token").map(String::as_str) == Some("sdk-token")
        ),
        "every call carries the API token"
    );
    let publish = &journal[4];
    assert_eq!(publish.request_headers["content-type"], "application/json");
    // Bulk entries carry `entryID` (Go's decoder matches it to `entryId`).
    let bulk = journal[5].request_json();
    let entries = bulk.as_array().expect("a JSON array of entries");
    assert_eq!(entries.len(), 3);
    assert!(
        entries
            .iter()
            .all(|e| e["entryID"].is_string() && e.get("entryId").is_none()),
        "{bulk:#}"
    );
    assert_eq!(entries[2]["entryID"], "chosen-id");
    assert_eq!(entries[0]["contentType"], "application/json");
    let save = journal[6].request_json();
    assert_eq!(
        save,
        json!([{"key": "sdk-key", "value": {"owner": "js-sdk", "n": 7}, "options": {}}])
    );
}

#[tokio::test]
async fn the_sdk_server_receives_deliveries_and_gets_its_retry_redelivered() {
    tokio::task::spawn_blocking(ensure_sdk).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app_port = free_port();
    // The sidecar reaches the SDK app through the proxy (journal: what the app served and
    // answered). It starts first and waits for the app's port, as daprd does.
    let proxy = Proxy::start(&format!("http://127.0.0.1:{app_port}")).await;
    let mut sidecar =
        SidecarProcess::start(EXE, dir.path(), proxy.port, "js-server", &[], &[]).await;
    let envs = [
        ("APP_PORT", app_port.to_string()),
        ("DAPR_PORT", sidecar.port.to_string()),
        ("TOPIC", "sdk-orders".to_string()),
    ];
    let (_child, mut lines) = node("server.js", &envs);
    let ready = next_json(&mut lines, "server.js start", &sidecar).await;
    assert_eq!(ready, json!({"ready": true}));
    sidecar.wait_ready(WAIT).await;
    for (n, retry) in [(1, false), (2, true)] {
        let resp = sidecar
            .api(Method::POST, "/v1.0/publish/kafka-pubsub/sdk-orders")
            .header("content-type", "application/json")
            .body(json!({"n": n, "retry": retry}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "publish; log:\n{}", sidecar.log());
    }
    let mut calls = Vec::new();
    while calls.len() < 3 {
        let line = next_json(&mut lines, "server.js deliveries", &sidecar).await;
        calls.push((line["delivery"]["n"].as_i64(), line["status"].clone()));
    }
    calls.sort_by_key(|(n, s)| (*n, s.as_str() == Some("SUCCESS")));
    assert_eq!(
        calls,
        [
            (Some(1), json!("SUCCESS")),
            (Some(2), json!("RETRY")),
            (Some(2), json!("SUCCESS")),
        ]
    );
    // The SDK app served its subscription once, and its answers were daprd's JSON statuses.
    let route = "/kafka-pubsub--sdk-orders--default";
    let subscribe = proxy.journal_for("/dapr/subscribe");
    assert_eq!(subscribe.len(), 1);
    assert_eq!(
        subscribe[0].response_json(),
        json!([{"pubsubname": "kafka-pubsub", "topic": "sdk-orders", "route": route}])
    );
    // The node app prints before its answer is back through the proxy: wait for the journal.
    let on_route = |j: &[Exchange]| j.iter().filter(|x| x.path == route).count();
    proxy
        .wait_journal(WAIT, "three answers", |j| on_route(j) >= 3)
        .await;
    let answers: Vec<Value> = proxy
        .journal_for(route)
        .iter()
        .map(|x| json!([x.request_json()["data"]["n"], x.status(), x.response_json()]))
        .collect();
    assert_eq!(
        answers,
        [
            json!([1, 200, {"status": "SUCCESS"}]),
            json!([2, 200, {"status": "RETRY"}]),
            json!([2, 200, {"status": "SUCCESS"}]),
        ]
    );
    // Nothing else arrives: the SUCCESS was taken as an ack. (SDK log lines may.)
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(quiet_until, lines.next_line()).await {
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        assert!(
            v.get("delivery").is_none(),
            "an unexpected extra delivery: {line}"
        );
    }
}
