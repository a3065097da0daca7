//! `task-events-host replay --against CANDIDATE.wasm (EVENTS.jsonl | --from-topic TOPIC)`:
//! shadow replay, the serving plugin and a candidate side by side on recorded events, before
//! anyone swaps.
//!
//! Contract: every event (`input` lists the accepted shapes) is handled by the serving plugin
//! (`--guest`, else the bundled one) and by the candidate, each call on a fresh instance under
//! the production limits (`LimitArgs`, the same flags and defaults as `serve`), and a done
//! outcome is checked against each plugin's effect policy as a delivery would be (a refused one
//! is the verdict `refused`: production dead-letters it). Nothing is published and no state is
//! touched. Stdout gets one line per event, `same` or `DIFF` and its name, a `DIFF` followed by
//! its changes (`diff`), then one summary line: events, identical, different, and how many
//! differing events changed their verdict, added or removed emits, or changed a field.
//!
//! Exit codes, so CI can gate a swap on it: 0 every outcome identical; 1 some differ; 2 the
//! comparison could not run (bad flags, unreadable or malformed input, a plugin that does not
//! load, a host that cannot be read), with the reason on stderr.

mod diff;
pub(crate) mod input;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;

use crate::config::LimitArgs;
use crate::plugin::bindings::{Delivery, Outcome, Subscription};
use crate::plugin::offline;
use crate::plugin::{CallError, Plugin, Runtime};
use diff::{Change, Kind, Observation};
use input::{DeliveryArgs, Input};

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The candidate plugin component, compared with the serving one.
    #[arg(long, value_name = "CANDIDATE.wasm")]
    pub against: PathBuf,
    /// The serving plugin component; the bundled task plugin without it.
    #[arg(long, env = "TASK_EVENTS_GUEST", value_name = "SERVING.wasm")]
    pub guest: Option<PathBuf>,
    /// Events to replay, JSON lines: task events, CloudEvents, `topics tail` records or canary
    /// cases.
    #[arg(value_name = "EVENTS.jsonl", required_unless_present = "from_topic")]
    pub events: Option<PathBuf>,
    /// Replay the records of this topic, read from a running host's embedded sidecar.
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["events", "topic"])]
    pub from_topic: Option<String>,
    /// The running host `--from-topic` reads.
    #[arg(long, env = "TASK_EVENTS_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// First topic offset to replay (with `--from-topic`).
    #[arg(long, default_value_t = 0, requires = "from_topic")]
    pub offset: u64,
    /// Replay at most this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Why `replay` did not exit 0.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{differ} of {events} events differ between the serving plugin and the candidate")]
    Differ { differ: usize, events: usize },
    #[error("{0:#}")]
    Unusable(anyhow::Error),
}

/// The process exit code for an error of any command: `replay`'s own codes, else 1.
pub fn exit_code(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<ReplayError>() {
        Some(ReplayError::Differ { .. }) => ExitCode::from(1),
        Some(ReplayError::Unusable(_)) => ExitCode::from(2),
        None => ExitCode::FAILURE,
    }
}

/// Runs the replay, printing to stdout.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let unusable = |e: anyhow::Error| anyhow::Error::new(ReplayError::Unusable(e));
    let mut events = match (&args.from_topic, &args.events) {
        (Some(topic), _) => {
            input::read_topic(&args.url, topic, args.offset, args.limit, &args.delivery).await
        }
        (None, Some(path)) => input::read_file(path, &args.delivery),
        (None, None) => unreachable!("clap requires EVENTS.jsonl or --from-topic"),
    }
    .map_err(|e| unusable(e.into()))?;
    if let Some(limit) = args.limit {
        events.truncate(limit);
    }
    tokio::task::spawn_blocking(move || {
        let (serving, candidate) = load(&args).map_err(unusable)?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let tally = replay(&serving, &candidate, &events, &mut out)
            .and_then(|tally| out.flush().map(|()| tally))
            .map_err(|e| unusable(anyhow!("writing the report: {e}")))?;
        match tally.differ {
            0 => Ok(()),
            differ => Err(ReplayError::Differ {
                differ,
                events: tally.events,
            }
            .into()),
        }
    })
    .await
    .context("the replay task")?
}

/// The serving plugin and the candidate, both checked against the world (no canary: showing
/// how the candidate differs is the point).
fn load(args: &ReplayArgs) -> anyhow::Result<(Plugin, Plugin)> {
    let runtime = Runtime::new(args.limits.limits())
        .map_err(|e| anyhow!("starting the wasm runtime: {e:#}"))?;
    let serving = offline::load(&runtime, args.guest.as_deref(), "the serving plugin")?;
    let candidate = offline::load(&runtime, Some(&args.against), "the candidate")?;
    Ok((serving, candidate))
}

#[derive(Debug, Default)]
struct Tally {
    events: usize,
    differ: usize,
    /// Differing events per kind of difference (one event may count under several).
    by_kind: BTreeMap<Kind, usize>,
}

/// Runs every event through both plugins and writes the report.
fn replay(
    serving: &Plugin,
    candidate: &Plugin,
    events: &[Input],
    out: &mut impl Write,
) -> std::io::Result<Tally> {
    let who = |p: &Plugin| format!("{} (sha256 {})", p.label(), &p.sha256[..12]);
    writeln!(out, "serving:   {}", who(serving))?;
    writeln!(out, "candidate: {}", who(candidate))?;
    let mut tally = Tally::default();
    for event in events {
        let old = observe(serving, &event.delivery);
        let new = observe(candidate, &event.delivery);
        let changes = diff::diff(&old, &new);
        tally.events += 1;
        if changes.is_empty() {
            writeln!(out, "same  {}: {}", event.name, old.summary())?;
            continue;
        }
        tally.differ += 1;
        let kinds: std::collections::BTreeSet<Kind> = changes.iter().map(Change::kind).collect();
        for kind in kinds {
            *tally.by_kind.entry(kind).or_default() += 1;
        }
        writeln!(out, "DIFF  {}:", event.name)?;
        for change in &changes {
            writeln!(out, "      {change}")?;
        }
    }
    let kinds: Vec<String> = Kind::ALL
        .iter()
        .map(|k| {
            format!(
                "{}: {}",
                k.label(),
                tally.by_kind.get(k).copied().unwrap_or(0)
            )
        })
        .collect();
    writeln!(
        out,
        "{} events, {} identical, {} differ ({})",
        tally.events,
        tally.events - tally.differ,
        tally.differ,
        kinds.join(", ")
    )?;
    Ok(tally)
}

/// What the host would do with `delivery` under `plugin`.
fn observe(plugin: &Plugin, delivery: &Delivery) -> Observation {
    match plugin.handle(delivery) {
        Ok(outcome) => {
            let refused = match &outcome {
                Outcome::Done(handled) => {
                    let served = Subscription {
                        pubsub: delivery.pubsub.clone(),
                        topic: delivery.topic.clone(),
                        route: String::new(),
                        dead_letter_topic: None,
                    };
                    plugin
                        .effects
                        .check(&served, &handled.emits)
                        .err()
                        .map(|v| v.to_string())
                }
                _ => None,
            };
            Observation::outcome(&outcome, refused)
        }
        Err(error) => {
            let details = match &error {
                CallError::Trap { reason, .. } => serde_json::json!({ "reason": reason }),
                CallError::Deadline { limit_ms, .. } => serde_json::json!({ "limit_ms": limit_ms }),
                CallError::MemoryLimit { desired, limit, .. } => {
                    serde_json::json!({ "desired": desired, "limit": limit })
                }
            };
            Observation::failed(error.kind(), details)
        }
    }
}
