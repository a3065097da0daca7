//! `task-events-host canary record EVENTS.jsonl > canary.jsonl`: golden cases written by the
//! plugin itself, so a case that expects `done` no longer has to be typed by hand.
//!
//! Contract: every event of the input (`shadow::input` lists the accepted shapes: task events,
//! CloudEvents, `topics tail` records, canary cases) is handled by the plugin (`--guest`, else
//! the bundled one) on a fresh instance under the production limits, and written to stdout as
//! one golden case per line in exactly the `--canary-file` format (`plugin::canary`), with the
//! complete outcome byte for byte, so `check --canary-file` / `serve --canary-file` pass with
//! the file as written. Editing an expected value afterwards makes the canary fail naming the
//! case. An event the plugin cannot handle (trap, deadline, memory limit), or whose outcome
//! publishes what the host's effect policy refuses, would fail every canary: nothing is written
//! and the error names the event. A summary goes to stderr.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use crate::config::LimitArgs;
use crate::plugin::bindings::{GoldenCase, Outcome, Subscription};
use crate::plugin::{Plugin, Runtime, canary};
use crate::shadow::input::{self, DeliveryArgs, Input};

#[derive(Debug, Subcommand)]
pub enum CanaryCommand {
    /// Run the plugin on events and print them as golden cases with their complete outcomes,
    /// ready for --canary-file.
    Record(RecordArgs),
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Events, JSON lines: task events, CloudEvents, `topics tail` records or canary cases.
    #[arg(value_name = "EVENTS.jsonl")]
    pub events: PathBuf,
    /// The plugin that answers; the bundled task plugin without it.
    #[arg(long, env = "TASK_EVENTS_GUEST", value_name = "PLUGIN.wasm")]
    pub guest: Option<PathBuf>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

pub async fn run(command: CanaryCommand) -> anyhow::Result<()> {
    let CanaryCommand::Record(args) = command;
    let events = input::read_file(&args.events, &args.delivery)?;
    tokio::task::spawn_blocking(move || {
        let runtime = Runtime::new(args.limits.limits())
            .map_err(|e| anyhow!("starting the wasm runtime: {e:#}"))?;
        let plugin = crate::plugin::offline::load(&runtime, args.guest.as_deref(), "the plugin")?;
        // All cases first: a failure half-way must not leave a partial canary file behind.
        let cases = record(&plugin, events)?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for case in &cases {
            serde_json::to_writer(&mut out, &canary::case_to_json(case))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        eprintln!(
            "recorded {} canary cases from {} with {}",
            cases.len(),
            args.events.display(),
            plugin.label()
        );
        Ok(())
    })
    .await
    .context("the record task")?
}

/// Each event as a golden case with the outcome `plugin` gives it.
pub(crate) fn record(plugin: &Plugin, events: Vec<Input>) -> anyhow::Result<Vec<GoldenCase>> {
    events
        .into_iter()
        .map(|Input { name, delivery }| {
            let expected = plugin
                .handle(&delivery)
                .map_err(|e| anyhow!("{name}: cannot be recorded: {e}"))?;
            if let Outcome::Done(handled) = &expected {
                let served = Subscription {
                    pubsub: delivery.pubsub.clone(),
                    topic: delivery.topic.clone(),
                    route: String::new(),
                    dead_letter_topic: None,
                };
                plugin.effects.check(&served, &handled.emits).map_err(|v| {
                    anyhow!(
                        "{name}: the outcome publishes what the host refuses ({v}); the case \
                         would fail every canary: leave the event out, or check --pubsub/--topic"
                    )
                })?;
            }
            Ok(GoldenCase {
                name,
                delivery,
                expected,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::testing::bundled_plugin;

    #[test]
    fn recorded_cases_reproduce_the_plugins_own_and_pass_the_canary() {
        let plugin = bundled_plugin();
        // The plugin's own cases, as events: the delivery each carries is replayed as is.
        let own = plugin.golden_cases().unwrap();
        let text: String = own
            .iter()
            .map(|c| canary::case_to_json(c).to_string() + "\n")
            .collect();
        let at = DeliveryArgs {
            pubsub: "kafka-pubsub".into(),
            topic: "task-events".into(),
        };
        let events = input::parse_text(&text, "cases", &at).unwrap();
        let cases = record(&plugin, events).unwrap();
        assert_eq!(
            cases, own,
            "recording reproduces the plugin's own expectations"
        );

        let written: String = cases
            .iter()
            .map(|c| canary::case_to_json(c).to_string() + "\n")
            .collect();
        let read = canary::parse_cases(&written).unwrap();
        assert_eq!(
            canary::run(&plugin, &read, false).unwrap().operator_cases,
            read.len()
        );
    }
}
