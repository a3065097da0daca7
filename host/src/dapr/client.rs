//! The daprd HTTP API as the pipeline uses it: publish and one-key state (docs/dapr-contract.md §5).
//!
//! Every call carries `dapr-api-token` when configured and has a timeout. Answers are mapped to
//! `SidecarError` by what the caller must do: transport errors, timeouts and 5xx are
//! `Unavailable` (retry later, nothing lost); an ETag/first-write conflict is `Conflict` (on Redis
//! and Postgres a first-write save of an existing key answers **500**, so a 500 on a first-write
//! save is reported as `Unavailable` and the caller re-reads the key to tell the two apart);
//! other 4xx are `Rejected` (misconfiguration; the message carries daprd's error code).

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::json;

use crate::sidecar::{Concurrency, PublishRequest, SidecarError, StateEntry};

#[derive(Clone)]
pub struct DaprClient {
    http: reqwest::Client,
    /// e.g. `http://127.0.0.1:3500`, no trailing slash.
    endpoint: String,
    token: Option<String>,
}

impl DaprClient {
    pub fn new(endpoint: String, token: Option<String>, timeout: Duration) -> DaprClient {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()
            .expect("a plain-HTTP reqwest client always builds");
        DaprClient {
            http,
            endpoint,
            token,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.endpoint));
        if let Some(token) = &self.token {
            req = req.header("dapr-api-token", token);
        }
        req
    }

    pub async fn publish(&self, req: PublishRequest) -> Result<(), SidecarError> {
        let path = format!(
            "/v1.0/publish/{}/{}",
            segment(&req.pubsub),
            req.topic
                .split('/')
                .map(segment)
                .collect::<Vec<_>>()
                .join("/")
        );
        let query: Vec<(String, String)> = req
            .metadata
            .iter()
            .map(|(k, v)| (format!("metadata.{k}"), v.clone()))
            .collect();
        let mut request = self
            .request(reqwest::Method::POST, &path)
            .query(&query)
            .header("content-type", &req.content_type);
        // daprd overwrites the trace fields of an app's CloudEvent with the context of this
        // request (docs/dapr-contract.md §2.1), so the event's context travels as W3C headers too.
        for (key, header) in [
            ("cloudevent.traceparent", "traceparent"),
            ("cloudevent.tracestate", "tracestate"),
        ] {
            if let Some((_, value)) = req.metadata.iter().find(|(k, _)| k == key) {
                request = request.header(header, value);
            }
        }
        let resp = request.body(req.body).send().await.map_err(transport)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(status_error(
                s,
                "publish",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }

    pub async fn get_state(
        &self,
        store: &str,
        key: &str,
    ) -> Result<Option<StateEntry>, SidecarError> {
        let path = format!("/v1.0/state/{}/{}", segment(store), segment(key));
        let resp = self
            .request(reqwest::Method::GET, &path)
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => {
                let etag = resp
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let value = resp.bytes().await.map_err(transport)?;
                Ok(Some(StateEntry { value, etag }))
            }
            s => Err(status_error(
                s,
                "state get",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }

    pub async fn save_state(
        &self,
        store: &str,
        key: &str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<Duration>,
    ) -> Result<(), SidecarError> {
        let value: serde_json::Value = serde_json::from_slice(&value).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&value).into_owned())
        });
        let mut item = json!({"key": key, "value": value});
        match &concurrency {
            Concurrency::LastWrite => {}
            Concurrency::FirstWrite => item["options"] = json!({"concurrency": "first-write"}),
            Concurrency::IfMatch(etag) => {
                item["etag"] = json!(etag);
                item["options"] = json!({"concurrency": "first-write"});
            }
        }
        if let Some(ttl) = ttl {
            item["metadata"] = json!({"ttlInSeconds": ttl.as_secs().max(1).to_string()});
        }
        let path = format!("/v1.0/state/{}", segment(store));
        let resp = self
            .request(reqwest::Method::POST, &path)
            .json(&json!([item]))
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(SidecarError::Conflict(
                resp.text().await.unwrap_or_default(),
            )),
            s => Err(status_error(
                s,
                "state save",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }
}

impl DaprClient {
    pub async fn delete_state(
        &self,
        store: &str,
        key: &str,
        etag: Option<String>,
    ) -> Result<(), SidecarError> {
        let path = format!("/v1.0/state/{}/{}", segment(store), segment(key));
        let mut req = self.request(reqwest::Method::DELETE, &path);
        if let Some(etag) = etag {
            req = req
                .header("if-match", etag)
                .query(&[("concurrency", "first-write")]);
        }
        let resp = req.send().await.map_err(transport)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(status_error(
                s,
                "state delete",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }

    /// `POST /v1.0-alpha1/jobs/{name}`: the path every daprd with the Jobs API serves (1.14 and
    /// later; 1.16 adds `/v1.0/jobs`, and keeps this one).
    pub async fn schedule_job(
        &self,
        name: &str,
        due_in: Duration,
        data: Bytes,
    ) -> Result<(), SidecarError> {
        let data: serde_json::Value =
            serde_json::from_slice(&data).unwrap_or(serde_json::Value::Null);
        let body = json!({
            "dueTime": format!("{}ms", due_in.as_millis().max(1)),
            "data": data,
            "overwrite": true,
        });
        let path = format!("/v1.0-alpha1/jobs/{}", segment(name));
        let resp = self
            .request(reqwest::Method::POST, &path)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(status_error(
                s,
                "job schedule",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }

    pub async fn delete_job(&self, name: &str) -> Result<(), SidecarError> {
        let path = format!("/v1.0-alpha1/jobs/{}", segment(name));
        let resp = self
            .request(reqwest::Method::DELETE, &path)
            .send()
            .await
            .map_err(transport)?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(status_error(
                s,
                "job delete",
                resp.text().await.unwrap_or_default(),
            )),
        }
    }
}

/// One URL path segment, percent-encoded (keys and names may hold `/`, `?`, spaces).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn transport(e: reqwest::Error) -> SidecarError {
    SidecarError::Unavailable(format!("daprd did not answer: {e}"))
}

fn status_error(status: StatusCode, what: &str, body: String) -> SidecarError {
    let body: String = body.chars().take(512).collect();
    SidecarError::from_status(
        status.as_u16(),
        format!("{what}: daprd answered {status}: {body}"),
    )
}

impl crate::sidecar::SidecarApi for DaprClient {
    fn publish(
        &self,
        req: PublishRequest,
    ) -> crate::sidecar::BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(DaprClient::publish(self, req))
    }

    fn get_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> crate::sidecar::BoxFuture<'a, Result<Option<StateEntry>, SidecarError>> {
        Box::pin(DaprClient::get_state(self, store, key))
    }

    fn save_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<Duration>,
    ) -> crate::sidecar::BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(DaprClient::save_state(
            self,
            store,
            key,
            value,
            concurrency,
            ttl,
        ))
    }

    fn delete_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        etag: Option<String>,
    ) -> crate::sidecar::BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(DaprClient::delete_state(self, store, key, etag))
    }

    fn schedule_job<'a>(
        &'a self,
        name: &'a str,
        due_in: Duration,
        data: Bytes,
    ) -> crate::sidecar::BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(DaprClient::schedule_job(self, name, due_in, data))
    }

    fn delete_job<'a>(
        &'a self,
        name: &'a str,
    ) -> crate::sidecar::BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(DaprClient::delete_job(self, name))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(super::segment("processed-a/b c"), "processed-a%2Fb%20c");
    }
}
