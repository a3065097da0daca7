//! The proxy against a tiny upstream that counts and echoes: forwarding, each fault, refusing,
//! and an unreachable upstream.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;

use super::*;

/// An upstream that counts its calls and echoes what it got as JSON.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().fallback(any(
        move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let echo = serde_json::json!({
                    "method": method.as_str(),
                    "path": uri.to_string(),
                    "x-test": headers.get("x-test").and_then(|v| v.to_str().ok()),
                    "body": String::from_utf8_lossy(&body),
                });
                (
                    axum::http::StatusCode::CREATED,
                    [("x-upstream", "yes")],
                    echo.to_string(),
                )
            }
        },
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn forwards_requests_and_answers_and_journals_them() {
    let (up, calls) = upstream().await;
    let proxy = Proxy::start(&up).await;
    let resp = client()
        .put(format!("{}/v1.0/state/s?a=1&b=2", proxy.base))
        .header("x-test", "t")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/v1.0/state/s?a=1&b=2");
    assert_eq!(echo["x-test"], "t");
    assert_eq!(echo["body"], "hello");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let journal = proxy.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].method, "PUT");
    assert_eq!(journal[0].path, "/v1.0/state/s?a=1&b=2");
    assert_eq!(journal[0].request_body, "hello");
    assert_eq!(journal[0].request_headers["x-test"], "t");
    assert_eq!(journal[0].status(), Some(201));
    assert_eq!(journal[0].response_json()["body"], "hello");
    assert_eq!(journal[0].fault, None);
}

#[tokio::test]
async fn failed_requests_do_not_reach_the_upstream_and_only_their_route_is_hit() {
    let (up, calls) = upstream().await;
    let proxy = Proxy::start(&up).await;
    proxy.fail_next("/v1.0/state", 2, 500);
    let c = client();
    let other = c
        .get(format!("{}/v1.0/publish/x", proxy.base))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201, "another route is not affected");
    for expected in [500, 500, 201] {
        let resp = c
            .get(format!("{}/v1.0/state/s/k", proxy.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the failed two never reached the upstream"
    );
    let statuses: Vec<_> = proxy
        .journal_for("/v1.0/state")
        .iter()
        .map(|x| x.status())
        .collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(201)]);
}

#[tokio::test]
async fn dropped_requests_get_no_answer() {
    let (up, calls) = upstream().await;
    let proxy = Proxy::start(&up).await;
    proxy.drop_next("/", 1);
    let c = client();
    let first = c.post(format!("{}/a", proxy.base)).body("x").send().await;
    assert!(
        first.is_err(),
        "a dropped connection is a transport error: {first:?}"
    );
    let second = c
        .post(format!("{}/a", proxy.base))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let journal = proxy.journal();
    assert_eq!(journal[0].outcome, Outcome::Dropped);
    assert_eq!(journal[0].fault, Some(Fault::Drop));
}

#[tokio::test]
async fn delayed_requests_arrive_late() {
    let (up, _) = upstream().await;
    let proxy = Proxy::start(&up).await;
    proxy.delay_next("/slow", 1, Duration::from_millis(300));
    let started = Instant::now();
    let resp = client()
        .get(format!("{}/slow", proxy.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn refusing_closes_the_port_until_turned_off() {
    let (up, _) = upstream().await;
    let proxy = Proxy::start(&up).await;
    let c = client();
    assert_eq!(
        c.get(format!("{}/a", proxy.base))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    proxy.refuse(true).await;
    let refused = c.get(format!("{}/a", proxy.base)).send().await;
    assert!(refused.is_err(), "refused: {refused:?}");
    proxy.refuse(false).await;
    assert_eq!(
        c.get(format!("{}/a", proxy.base))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_dropped_connection() {
    let port = crate::host::free_port();
    let proxy = Proxy::start(&format!("http://127.0.0.1:{port}")).await;
    let resp = client().get(format!("{}/a", proxy.base)).send().await;
    assert!(resp.is_err());
    assert_eq!(proxy.journal()[0].outcome, Outcome::Dropped);
}
