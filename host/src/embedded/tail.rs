//! `task-events-host topics tail TOPIC`: prints a topic of a running host, one JSON line per
//! record, by paging `GET /v1.0-embedded/topics/{topic}?from=..` (see `topics.rs`).
//!
//! Without `follow` it stops at the end of the topic; with `follow` it long-polls for new
//! records (no busy polling) until the host goes away or the caller drops the future (Ctrl-C).
//! Fails with a message naming the URL, and how to point `--url` (TASK_EVENTS_URL) elsewhere,
//! when the host is unreachable or is not serving the embedded sidecar.

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

const PAGE: usize = 500;
/// Long-poll wait per request; well under common proxy idle timeouts.
const WAIT_MS: u64 = 25_000;

#[derive(Deserialize)]
struct Page {
    records: Vec<Value>,
    next: u64,
}

/// Prints the records of `topic` from offset `from`, following new ones when `follow`.
pub async fn tail(
    base_url: &str,
    topic: &str,
    from: u64,
    follow: bool,
    out: &mut (impl std::io::Write + Send),
) -> anyhow::Result<()> {
    if topic.is_empty() {
        bail!("the topic name is empty");
    }
    let client = reqwest::Client::new();
    let base = base_url.trim_end_matches('/');
    let mut from = from;
    loop {
        let mut url = format!(
            "{base}/v1.0-embedded/topics/{}?from={from}&limit={PAGE}",
            encode_path(topic)
        );
        if follow {
            url.push_str(&format!("&wait_ms={WAIT_MS}"));
        }
        let resp = client.get(&url).send().await.with_context(|| {
            format!(
                "cannot reach the task-events host at {base}: is `task-events-host serve` running \
                 there? Point --url (or TASK_EVENTS_URL) at the host's app port, e.g. \
                 --url http://127.0.0.1:8080"
            )
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            bail!(
                "{url} answered 404: the host at {base} does not serve the embedded sidecar \
                 (in Dapr mode, read the topic from the broker instead; or point --url / \
                 TASK_EVENTS_URL at a host in embedded mode)"
            );
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            bail!("{url} answered {status}: {body}");
        }
        let page: Page = resp
            .json()
            .await
            .with_context(|| format!("{url} did not answer a topic page"))?;
        for record in &page.records {
            serde_json::to_writer(&mut *out, record)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        if page.records.is_empty() && !follow {
            return Ok(());
        }
        from = page.next.max(from);
    }
}

/// Percent-encodes a topic for the URL path, keeping `/` (the route takes the rest of the path).
pub(crate) fn encode_path(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len());
    for b in topic.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_topics_for_the_path() {
        assert_eq!(super::encode_path("a/b c+d%"), "a/b%20c%2Bd%25");
        assert_eq!(
            super::super::go_decode::query_unescape(&super::encode_path("x y+z/é")),
            "x y+z/é"
        );
    }
}
