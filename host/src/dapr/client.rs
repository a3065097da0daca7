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
use serde_json::value::RawValue;

use crate::sidecar::{
    BoxFuture, Concurrency, PublishRequest, SaveItem, SidecarApi, SidecarError, StateEntry,
    by_topic,
};

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
}

impl SidecarApi for DaprClient {
    fn publish(&self, req: PublishRequest) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(async move {
            let path = format!(
                "/v1.0/publish/{}/{}",
                segment(&req.pubsub),
                topic_path(&req.topic)
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
            send(request.body(req.body), "publish").await.map(drop)
        })
    }

    fn get_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StateEntry>, SidecarError>> {
        Box::pin(async move {
            let path = format!("/v1.0/state/{}/{}", segment(store), segment(key));
            let resp = send(self.request(reqwest::Method::GET, &path), "state get").await?;
            if resp.status() == StatusCode::NO_CONTENT {
                return Ok(None);
            }
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let value = resp.bytes().await.map_err(transport)?;
            Ok(Some(StateEntry { value, etag }))
        })
    }

    fn save_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let item = save_item(key, &value, &concurrency, ttl);
            let path = format!("/v1.0/state/{}", segment(store));
            let req = self.request(reqwest::Method::POST, &path).json(&[item]);
            send(req, "state save").await.map(drop)
        })
    }

    fn delete_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        etag: Option<String>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let path = format!("/v1.0/state/{}/{}", segment(store), segment(key));
            let mut req = self.request(reqwest::Method::DELETE, &path);
            if let Some(etag) = etag {
                req = req
                    .header("if-match", etag)
                    .query(&[("concurrency", "first-write")]);
            }
            send(req, "state delete").await.map(drop)
        })
    }

    /// `POST /v1.0-alpha1/jobs/{name}`: the path every daprd with the Jobs API serves (1.14 and
    /// later; 1.16 adds `/v1.0/jobs`, and keeps this one).
    fn schedule_job<'a>(
        &'a self,
        name: &'a str,
        due_in: Duration,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let body = crate::sidecar::one_shot_job(due_in, &data);
            let path = format!("/v1.0-alpha1/jobs/{}", segment(name));
            let req = self.request(reqwest::Method::POST, &path).json(&body);
            send(req, "job schedule").await.map(drop)
        })
    }

    fn delete_job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let path = format!("/v1.0-alpha1/jobs/{}", segment(name));
            let req = self.request(reqwest::Method::DELETE, &path);
            let resp = req.send().await.map_err(transport)?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(());
            }
            answered(resp, "job delete").await.map(drop)
        })
    }

    /// `POST /v1.0/state/{store}/bulk`: daprd answers every key, `data` and `etag` when found,
    /// `error` when the store failed on it (which fails the call: absent is not the same).
    fn get_bulk_state<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<StateEntry>>, SidecarError>> {
        Box::pin(async move {
            let path = format!("/v1.0/state/{}/bulk", segment(store));
            let req = self
                .request(reqwest::Method::POST, &path)
                .json(&json!({"keys": keys, "parallelism": 10}));
            let resp = send(req, "state bulk get").await?;
            let body = resp.bytes().await.map_err(transport)?;
            let items: Vec<BulkItem> = serde_json::from_slice(&body).map_err(|e| {
                SidecarError::Unavailable(format!("state bulk get: unreadable answer: {e}"))
            })?;
            let mut by_key: std::collections::HashMap<String, BulkItem> =
                items.into_iter().map(|i| (i.key.clone(), i)).collect();
            keys.iter()
                .map(|key| match by_key.remove(key) {
                    Some(BulkItem { error: Some(e), .. }) => Err(SidecarError::Unavailable(
                        format!("state bulk get: key {key:?}: {e}"),
                    )),
                    Some(BulkItem {
                        data: Some(data),
                        etag,
                        ..
                    }) => Ok(Some(StateEntry {
                        value: Bytes::from(data.get().as_bytes().to_vec()),
                        etag,
                    })),
                    Some(_) => Ok(None),
                    None => Err(SidecarError::Unavailable(format!(
                        "state bulk get: daprd did not answer key {key:?}"
                    ))),
                })
                .collect()
        })
    }

    fn save_bulk_state<'a>(
        &'a self,
        store: &'a str,
        items: Vec<SaveItem>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(async move {
            let body: Vec<SaveBody> = items
                .iter()
                .map(|i| save_item(&i.key, &i.value, &i.concurrency, i.ttl))
                .collect();
            let path = format!("/v1.0/state/{}", segment(store));
            let req = self.request(reqwest::Method::POST, &path).json(&body);
            send(req, "state bulk save").await.map(drop)
        })
    }

    /// One `POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}` per topic. daprd answers 204 when
    /// the broker has every entry, else an error naming the failed ones: any error means "some
    /// may be published", which the caller's records make safe to repeat.
    fn publish_bulk(
        &self,
        messages: Vec<PublishRequest>,
    ) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(async move {
            #[derive(serde::Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Entry {
                entry_id: String,
                event: Box<RawValue>,
                content_type: String,
                metadata: std::collections::BTreeMap<String, String>,
            }
            for ((pubsub, topic), messages) in by_topic(messages) {
                let entries: Vec<Entry> = messages
                    .into_iter()
                    .enumerate()
                    .map(|(n, m)| Entry {
                        entry_id: n.to_string(),
                        event: raw_json(&m.body),
                        content_type: m.content_type,
                        metadata: m.metadata.into_iter().collect(),
                    })
                    .collect();
                let path = format!(
                    "/v1.0-alpha1/publish/bulk/{}/{}",
                    segment(&pubsub),
                    topic_path(&topic)
                );
                let req = self.request(reqwest::Method::POST, &path).json(&entries);
                send(req, "bulk publish").await?;
            }
            Ok(())
        })
    }
}

/// One key of daprd's bulk state answer.
#[derive(serde::Deserialize)]
struct BulkItem {
    key: String,
    data: Option<Box<serde_json::value::RawValue>>,
    etag: Option<String>,
    error: Option<String>,
}

/// One item of daprd's state save body (`POST /v1.0/state/{store}`). The value is embedded as
/// it is when it is JSON (the host's records are), else as a JSON string; it is never parsed
/// into a tree and written back.
#[derive(serde::Serialize)]
struct SaveBody<'a> {
    key: &'a str,
    value: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<serde_json::Value>,
}

fn save_item<'a>(
    key: &'a str,
    value: &[u8],
    concurrency: &'a Concurrency,
    ttl: Option<Duration>,
) -> SaveBody<'a> {
    let first_write = || Some(json!({"concurrency": "first-write"}));
    let (etag, options) = match concurrency {
        Concurrency::LastWrite => (None, None),
        Concurrency::FirstWrite => (None, first_write()),
        Concurrency::IfMatch(etag) => (Some(etag.as_str()), first_write()),
    };
    SaveBody {
        key,
        value: raw_json(value),
        etag,
        options,
        metadata: ttl.map(|ttl| json!({"ttlInSeconds": ttl.as_secs().max(1).to_string()})),
    }
}

/// `bytes` as a JSON value: themselves when they are JSON, else a JSON string of them.
fn raw_json(bytes: &[u8]) -> Box<RawValue> {
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(raw) => raw.to_owned(),
        Err(_) => serde_json::value::to_raw_value(&String::from_utf8_lossy(bytes))
            .expect("a string serializes"),
    }
}

/// A topic as the rest of a publish path: each `/`-separated part percent-encoded.
fn topic_path(topic: &str) -> String {
    topic.split('/').map(segment).collect::<Vec<_>>().join("/")
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

/// Sends `req`; a 2xx answer is returned, any other is classed by [`SidecarError::from_status`].
async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, SidecarError> {
    answered(req.send().await.map_err(transport)?, what).await
}

async fn answered(resp: reqwest::Response, what: &str) -> Result<reqwest::Response, SidecarError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    Err(SidecarError::from_status(
        status.as_u16(),
        format!("{what}: daprd answered {status}: {body}"),
    ))
}

fn transport(e: reqwest::Error) -> SidecarError {
    SidecarError::Unavailable(format!("daprd did not answer: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(super::segment("processed-a/b c"), "processed-a%2Fb%20c");
    }
}
