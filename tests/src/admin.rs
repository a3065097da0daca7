//! A client for the host's admin endpoints (`/admin/plugin`, `/admin/rollback`) and `/metrics`,
//! with bounded waits on the plugin status.

use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Admin {
    pub base: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Admin {
    pub fn new(base: &str, token: Option<&str>) -> Admin {
        Admin {
            base: base.to_string(),
            token: token.map(str::to_string),
            client: reqwest::Client::new(),
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET /admin/plugin` (panics unless 200).
    pub async fn status(&self) -> Value {
        let resp = self
            .authorized(self.client.get(format!("{}/admin/plugin", self.base)))
            .send()
            .await
            .expect("GET /admin/plugin");
        assert_eq!(resp.status(), 200, "GET /admin/plugin");
        resp.json().await.expect("status JSON")
    }

    /// `POST /admin/plugin` with `bytes`: (HTTP status, JSON body).
    pub async fn swap(&self, bytes: Vec<u8>) -> (u16, Value) {
        let request = self
            .client
            .post(format!("{}/admin/plugin", self.base))
            .body(bytes)
            .timeout(Duration::from_secs(120));
        let resp = self
            .authorized(request)
            .send()
            .await
            .expect("POST /admin/plugin");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /admin/rollback`: (HTTP status, JSON body).
    pub async fn rollback(&self) -> (u16, Value) {
        let resp = self
            .authorized(self.client.post(format!("{}/admin/rollback", self.base)))
            .send()
            .await
            .expect("POST /admin/rollback");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the status until `done` holds (at most `timeout`); returns the last status.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_status_every(timeout, Duration::from_millis(50), what, done)
            .await
    }

    /// Like `wait_status`, polling every `every` (the swap benchmark times swaps this way).
    pub async fn wait_status_every(
        &self,
        timeout: Duration,
        every: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last status:\n{status:#}"
            );
            tokio::time::sleep(every).await;
        }
    }

    /// Polls until the serving plugin has this sha256.
    pub async fn wait_serving(&self, sha256: &str, timeout: Duration) -> Value {
        self.wait_status(timeout, &format!("serving {sha256}"), |s| {
            s["current"]["sha256"] == sha256
        })
        .await
    }

    /// One sample of `/metrics`, e.g. `metric("task_events_deliveries_total{status=\"RETRY\"}")`;
    /// 0 when the series is absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|value| value.trim().parse().expect("a metric value"))
            .unwrap_or(0.0)
    }
}

/// Hex sha256, as the host reports plugins.
pub fn sha256_hex(bytes: &[u8]) -> String {
    task_events_host::plugin::loaded::sha256_hex(bytes)
}
