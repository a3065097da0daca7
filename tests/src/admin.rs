//! A client for the host's admin endpoints (`/admin/plugin`, `/admin/rollback`) and `/metrics`,
//! with bounded waits on the plugin status.

use std::time::Duration;

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
        crate::wait::until(timeout, every, String::new, async || {
            let status = self.status().await;
            match done(&status) {
                true => Ok(status),
                false => Err(format!("{what}; last status:\n{status:#}")),
            }
        })
        .await
    }

    /// Polls until the serving plugin has this sha256.
    pub async fn wait_serving(&self, sha256: &str, timeout: Duration) -> Value {
        self.wait_status(timeout, &format!("serving {sha256}"), |s| {
            s["current"]["sha256"] == sha256
        })
        .await
    }

    /// One series of `/metrics`, e.g. `metric("task_events_deliveries_total{status=\"RETRY\"}")`:
    /// the sum of every sample of that name whose labels include the given ones (so the query
    /// above adds up every topic); 0 when there is none.
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
        let (name, wanted) = parse_series(series);
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(sample, _)| {
                let (n, labels) = parse_series(sample);
                n == name && wanted.iter().all(|w| labels.contains(w))
            })
            .map(|(_, value)| value.trim().parse::<f64>().expect("a metric value"))
            .sum()
    }
}

/// `name{a="x",b="y"}` as its name and label pairs (values unescaped).
pub fn parse_series(series: &str) -> (String, Vec<(String, String)>) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series.trim().to_string(), Vec::new());
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_string();
        if key.is_empty() || key == "}" || chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key, value));
    }
    (name.to_string(), labels)
}

/// Hex sha256, as the host reports plugins.
pub fn sha256_hex(bytes: &[u8]) -> String {
    task_events_host::plugin::loaded::sha256_hex(bytes)
}
