//! Hostile input against the real host in embedded mode (issue 8, bullets 5 and 6): a 1 GB
//! body, 100k bulk entries, 100k-deep nesting, oversized headers and slowloris clients each get
//! a clear answer (413, 431, DROP or 400, 408, a closed connection) on the app routes and on
//! the sidecar API, while a normal completion published alongside still creates its next task.
//! And the tokens: an empty token is no token, `/healthz` says only that the host lives, and
//! `/metrics` (which names the plugin) can require its own token.
//!
//! Hostile requests are written on raw sockets: an HTTP client library would refuse to send
//! most of them. Every wait is bounded; nothing asserts how long anything took.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use task_events_tests::admin::sha256_hex;
use task_events_tests::embedded_api;
use task_events_tests::events::daily_completion;
use task_events_tests::host::HostProcess;
use task_events_tests::http::{json, send, status};
use task_events_tests::plugins::task_plugin_bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const APP_ROUTE: &str = "/events/task-events";
const PUBLISH: &str = "/v1.0/publish/kafka-pubsub/task-events";
const JSON: &str = "application/json";

/// Sends `head` (request line and headers, without the blank line) and `body` on a fresh
/// connection, then reads the answer until the server closes or 30 s pass. Write errors are
/// ignored: a server may answer and close before it has read everything.
async fn raw(port: u16, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = stream.write_all(format!("{head}\r\n\r\n").as_bytes()).await;
    let _ = stream.write_all(body).await;
    read_answer(&mut stream).await
}

/// POSTs all of `body` to `path` on a raw socket (see [`raw`]).
async fn raw_post(port: u16, path: &str, content_type: &str, body: &[u8]) -> String {
    raw(port, &post(path, content_type, body.len()), body).await
}

async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            // An answer with a body length is complete once it has arrived.
            Err(_) if complete(&answer) => break,
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| body.len() >= len)
}

fn post(path: &str, content_type: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ncontent-length: {len}\r\nconnection: close"
    )
}

fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("<no answer>")
}

/// A client that sends a request head one byte at a time and never finishes it: the host must
/// hang up on it (the header-read timeout). Returns whether it did within 30 s.
async fn slowloris(port: u16) -> bool {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!("POST {APP_ROUTE} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ");
    let _ = stream.write_all(head.as_bytes()).await;
    let mut buf = [0u8; 1024];
    for _ in 0..300 {
        if stream.write_all(b"a").await.is_err() {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // hyper may write a 408 before closing; either way the client is let go.
            Ok(Ok(_)) => return true,
            Err(_) => {}
        }
    }
    false
}

#[tokio::test]
async fn hostile_requests_get_clear_answers_while_deliveries_flow() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--header-read-timeout-ms",
        "1000",
        "--body-read-timeout-ms",
        "1000",
        "--max-bulk-entries",
        "100",
    ];
    let host = HostProcess::embedded(HOST, dir.path(), &flags, &[]).await;
    let port = host.port;

    // Slow clients first, held open while everything else happens.
    let slow: Vec<_> = (0..8).map(|_| tokio::spawn(slowloris(port))).collect();
    embedded_api::publish(&host, &daily_completion(1)).await;

    // A 1 GB body, announced: 413 on both surfaces, after reading at most what was sent.
    for path in [APP_ROUTE, PUBLISH] {
        let answer = raw(port, &post(path, JSON, 1 << 30), &[b' '; 64 << 10]).await;
        assert_eq!(status_of(&answer), "413", "{path}: {answer}");
        assert!(answer.contains("--max-body-bytes"), "{answer}");
    }
    // A body that trickles in: 408.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = post(APP_ROUTE, JSON, 100);
    stream
        .write_all(format!("{head}\r\n\r\n{{").as_bytes())
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status_of(&answer), "408", "{answer}");

    // 100k bulk entries: 413 naming the limit, none processed.
    let entries: Vec<Value> = (0..100_000)
        .map(|i| json!({"entryId": i.to_string()}))
        .collect();
    let batch = json!({"entries": entries}).to_string();
    let answer = raw_post(port, APP_ROUTE, JSON, batch.as_bytes()).await;
    assert_eq!(status_of(&answer), "413", "{answer}");
    assert!(answer.contains("--max-bulk-entries"), "{answer}");
    let bulk = Value::Array(entries).to_string();
    let path = "/v1.0-alpha1/publish/bulk/kafka-pubsub/task-events";
    let answer = raw_post(port, path, JSON, bulk.as_bytes()).await;
    assert_eq!(status_of(&answer), "413", "{answer}");

    // 100k-deep nesting: a parse error, answered, never a crash or a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let answer = raw_post(port, APP_ROUTE, JSON, deep.as_bytes()).await;
    assert_eq!(status_of(&answer), "200", "{answer}");
    assert!(answer.contains(r#"{"status":"DROP"}"#), "{answer}");
    let ce = format!(r#"{{"specversion":"1.0","id":"deep","data":{deep}}}"#);
    let answer = raw_post(port, PUBLISH, "application/cloudevents+json", ce.as_bytes()).await;
    assert_eq!(status_of(&answer), "400", "{answer}");
    let answer = raw_post(port, "/v1.0/state/statestore", JSON, deep.as_bytes()).await;
    assert_eq!(status_of(&answer), "400", "{answer}");

    // A 100 KiB header: 431.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: {}",
        "a".repeat(100 << 10)
    );
    let answer = raw(port, &head, b"").await;
    assert_eq!(status_of(&answer), "431", "{answer}");

    // Through all of it the normal completion was delivered and created its next task.
    let created = embedded_api::wait_topic(&host, "task-events", 2, Duration::from_secs(30)).await;
    assert!(
        created.iter().any(|e| e["type"] == "task.created"),
        "{created:#?}"
    );
    for client in slow {
        assert!(client.await.unwrap(), "a slowloris client was never let go");
    }
    // And the host still serves.
    let health = reqwest::get(format!("{}/healthz", host.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "{}", host.log());
}

#[tokio::test]
async fn empty_tokens_are_no_tokens_and_only_metrics_names_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("APP_API_TOKEN", ""), ("DAPR_API_TOKEN", "")];
    let flags = ["--metrics-token", "scrape-me"];
    let host = HostProcess::embedded(HOST, dir.path(), &flags, &envs).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", host.base);

    // APP_API_TOKEN="" is unset: daprd sends no token header then, and must be let in.
    assert_eq!(status(client.get(url("/dapr/subscribe"))).await, 200);
    // DAPR_API_TOKEN="" is unset too: the sidecar API is open, as daprd's would be.
    embedded_api::publish(&host, &daily_completion(2)).await;
    let log = host.log();
    assert!(log.contains("APP_API_TOKEN is set but empty"), "{log}");
    assert!(log.contains("DAPR_API_TOKEN is set but empty"), "{log}");

    // /healthz: liveness, nothing about the plugin.
    assert_eq!(
        json(client.get(url("/healthz"))).await,
        json!({"status": "ok"})
    );

    // /metrics names the plugin, behind its token.
    assert_eq!(status(client.get(url("/metrics"))).await, 401);
    let wrong = client.get(url("/metrics")).bearer_auth("nope");
    assert_eq!(status(wrong).await, 401);
    let metrics = send(client.get(url("/metrics")).bearer_auth("scrape-me")).await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let sha = sha256_hex(task_plugin_bytes());
    assert!(
        text.contains(&sha),
        "the plugin's sha256 is on /metrics:\n{text}"
    );
}

#[tokio::test]
async fn the_in_process_sidecar_api_takes_dapr_api_token_like_daprd() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [("DAPR_API_TOKEN", "api-secret")];
    let host = HostProcess::embedded(HOST, dir.path(), &[], &envs).await;
    let client = reqwest::Client::new();
    let event = daily_completion(3);
    let publish = |token: Option<&str>| {
        let req = client.post(format!("{}{PUBLISH}", host.base)).json(&event);
        status(match token {
            Some(t) => req.header("dapr-api-token", t),
            None => req,
        })
    };
    assert_eq!(publish(None).await, 401);
    let wrong = publish(Some("")).await;
    assert_eq!(wrong, 401, "an empty header is not the token");
    assert_eq!(publish(Some("api-secret")).await, 204);
    // daprd's own health endpoints stay open, as daprd's do.
    let health = client.get(format!("{}/v1.0/healthz/outbound", host.base));
    assert_eq!(status(health).await, 204);
}
