//! `task-events-host dead-letters list|show|replay`: the operator's client of a running host's
//! dead-letter admin API (`dead_letters.rs`), in either sidecar mode.
//!
//! `list` prints one JSON summary per line (filter by `--topic`, `--reason`, `--user`,
//! `--since`); `show ID` prints the record, its topic and its replays; `replay ID` re-drives the
//! original event through the host's current plugin and prints the answer. Exit 1 with the
//! reason when the host refuses or cannot be reached.

use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the host is and how to get in.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// The running host.
    #[arg(long, env = "TASK_EVENTS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The host's `--admin-token`.
    #[arg(long, env = "TASK_EVENTS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Summaries of the dead letters the host wrote, oldest first, one JSON object per line.
    List {
        /// The dead-letter topic, or the topic the event came from.
        #[arg(long)]
        topic: Option<String>,
        /// e.g. rejected, retries-exhausted, effect-refused, sidecar-refused.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// Only those at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        host: HostArgs,
    },
    /// One dead letter: the record as published, its topic, the replays made of it.
    Show {
        /// The dead letter's id (`<event id>:dead-letter`).
        id: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Re-drive the original event through the host's current plugin.
    Replay {
        id: String,
        #[command(flatten)]
        host: HostArgs,
    },
}

pub async fn run(command: DeadLettersCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let (request, host) = match &command {
        DeadLettersCommand::List {
            topic,
            reason,
            user,
            since,
            host,
        } => {
            let query: Vec<(&str, &String)> = [
                ("topic", topic),
                ("reason", reason),
                ("user", user),
                ("since", since),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
            (
                client
                    .get(format!(
                        "{}/admin/dead-letters",
                        host.url.trim_end_matches('/')
                    ))
                    .query(&query),
                host,
            )
        }
        DeadLettersCommand::Show { id, host } => (
            client.get(format!(
                "{}/admin/dead-letters/{}",
                host.url.trim_end_matches('/'),
                crate::embedded::encode_path(id)
            )),
            host,
        ),
        DeadLettersCommand::Replay { id, host } => (
            client.post(format!(
                "{}/admin/dead-letters/{}/replay",
                host.url.trim_end_matches('/'),
                crate::embedded::encode_path(id)
            )),
            host,
        ),
    };
    let request = match &host.admin_token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the host at {} ({e}); set --url or TASK_EVENTS_URL",
            host.url
        )
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let why = body["error"]
            .as_str()
            .map_or_else(|| body.to_string(), str::to_string);
        anyhow::bail!("the host answered {status}: {why}");
    }
    match command {
        DeadLettersCommand::List { .. } => {
            for summary in body["dead_letters"].as_array().into_iter().flatten() {
                println!("{summary}");
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&body)?),
    }
    Ok(())
}
