//! The command line: `serve`, `sidecar`, `check`, `recurrence`, `topics tail`, `canary record`,
//! `replay`.
//!
//! Every flag can also be set from an environment variable (see `--help`); exit codes: 0 done,
//! 1 a failure whose reason is printed on stderr, 2 a usage error (clap's); `replay` exits 1 when
//! the outcomes differ and 2 when it cannot compare them (shadow.rs).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LimitArgs, LogFormat, ServeArgs, SidecarArgs};
use crate::plugin::{Preparer, Runtime};
use crate::telemetry::Telemetry;

#[derive(Parser)]
#[command(
    name = "task-events-host",
    version,
    about = "Runs task-events plugins (wasm components) beside a Dapr sidecar, or with an embedded one"
)]
struct Cli {
    /// Log format on stderr: `text` for people (coloured only on a terminal), `json` for log
    /// pipelines (one object per line).
    #[arg(long, global = true, env = "TASK_EVENTS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve Dapr's app callback and run the plugin for every delivery.
    Serve(Box<ServeArgs>),
    /// Check a plugin (.wasm) exactly as a swap would (world, manifest, canary); print its manifest.
    Check {
        /// The plugin component.
        file: PathBuf,
        /// Extra golden cases (JSONL) the plugin must reproduce, as with `serve --canary-file`.
        #[arg(long, env = "TASK_EVENTS_CANARY_FILE")]
        canary_file: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run the embedded sidecar on its own: daprd's HTTP API for any Dapr app, durable on disk.
    Sidecar(Box<SidecarArgs>),
    /// Preview a recurrence rule: its next occurrences as the plugin computes them.
    Recurrence(Box<crate::recurrence_preview::PreviewArgs>),
    /// Look at the embedded sidecar's topics through a running host.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Golden cases for --canary-file, written by the plugin itself.
    Canary {
        #[command(subcommand)]
        command: crate::canary_record::CanaryCommand,
    },
    /// Shadow replay: run events through the serving plugin and a candidate, print how their
    /// outcomes differ (exit 0 identical, 1 different, 2 could not compare).
    Replay(Box<crate::shadow::ReplayArgs>),
    /// List, show and replay the dead letters a running host wrote (either sidecar mode).
    DeadLetters {
        #[command(subcommand)]
        command: crate::dead_letters_cli::DeadLettersCommand,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Print a topic's records as JSON lines, and keep following new ones.
    Tail {
        /// Topic name, e.g. task-events.
        topic: String,
        /// The running host.
        #[arg(long, env = "TASK_EVENTS_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// First offset to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop at the end of the topic instead of following it.
        #[arg(long)]
        no_follow: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    // Only `serve` handles deliveries, so only `serve` exports spans (telemetry.rs).
    let telemetry = match &cli.command {
        Command::Serve(args) => Telemetry::start(&args.telemetry, runtime.handle()),
        _ => Ok(None),
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(cli.log_format, telemetry.as_ref());
    if let Some(telemetry) = &telemetry {
        telemetry.announce();
    }
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => crate::serve::serve(*args).await,
            Command::Sidecar(args) => crate::standalone::run(*args).await,
            Command::Check {
                file,
                canary_file,
                limits,
            } => check(file, canary_file, limits).await,
            Command::Recurrence(args) => crate::recurrence_preview::run(*args).await,
            Command::Canary { command } => crate::canary_record::run(command).await,
            Command::Replay(args) => crate::shadow::run(*args).await,
            Command::DeadLetters { command } => crate::dead_letters_cli::run(command).await,
            Command::Topics {
                command:
                    TopicsCommand::Tail {
                        topic,
                        url,
                        from,
                        no_follow,
                    },
            } => {
                let mut out = std::io::stdout();
                crate::embedded::tail(&url, &topic, from, !no_follow, &mut out).await
            }
        }
    });
    // Outside block_on, with the runtime still running: the last export requests run on it.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            crate::shadow::exit_code(&e)
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: info, wasmtime and cranelift at warn).
/// Either format writes one event per line through `OneLine`: fields from outside (event ids,
/// plugin text) cannot forge lines. Colours only when stderr is a terminal (and NO_COLOR is
/// unset): escape codes in a redirected log are noise for whatever reads it. `RUST_LOG` filters
/// the log only; the span export, when on, has its own filter (telemetry.rs).
fn init_logging(format: LogFormat, telemetry: Option<&Telemetry>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into());
    let logs =
        tracing_subscriber::fmt::layer().with_writer(crate::plugin::logging::OneLine::stderr);
    let logs = match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            logs.with_ansi(colour).boxed()
        }
        // `span` holds the innermost span's fields (a delivery's event id, topic, plugin), and
        // `spans` every enclosing one.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(telemetry.map(Telemetry::layer))
        .init();
}

async fn check(
    file: PathBuf,
    canary_file: Option<PathBuf>,
    limits: LimitArgs,
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let runtime = Runtime::new(limits.limits())
        .map_err(|e| anyhow::anyhow!("starting the wasm runtime: {e:#}"))?;
    // The same preparation a swap runs, without the compile cache: what passes here, loads there.
    let prepared = Preparer::new(runtime, None, canary_file)
        .prepare(bytes)
        .await?;
    let plugin = &prepared.plugin;
    let m = &plugin.manifest;
    let manifest = serde_json::json!({
        "name": m.name,
        "version": m.version,
        "sha256": plugin.sha256,
        "schema_versions": m.schema_versions,
        "subscriptions": m.subscriptions.iter().map(|s| serde_json::json!({
            "pubsubname": s.pubsub, "topic": s.topic, "route": s.route, "deadLetterTopic": s.dead_letter_topic,
        })).collect::<Vec<_>>(),
        "retry_policies": m.retry_policies.iter().map(|p| serde_json::json!({"event_type": p.event_type, "delays_ms": p.delays_ms})).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    eprintln!(
        "ok: {} is a valid task-events plugin ({} canary cases passed)",
        file.display(),
        prepared.canary.plugin_cases + prepared.canary.operator_cases
    );
    Ok(())
}
