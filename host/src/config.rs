//! Every tunable of the host, in one place: flag, environment variable, default, one doc line.
//!
//! Raw strings become typed values here, once (`SidecarMode`, `Limits`, durations); nothing
//! downstream re-reads the environment. `--help` is generated from these doc comments.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Which sidecar the host pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SidecarChoice {
    /// Dapr when DAPR_HTTP_PORT or DAPR_HTTP_ENDPOINT is set (as `dapr run` and the Kubernetes
    /// injector set them), embedded otherwise.
    Auto,
    /// A real daprd beside this process.
    Dapr,
    /// The built-in single-machine sidecar, durable under --data-dir.
    Embedded,
}

/// The sidecar mode after `auto` has been resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SidecarMode {
    Dapr { endpoint: String },
    Embedded,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Plugin component to run (.wasm); without it, the task plugin built with this host runs.
    #[arg(long, env = "TASK_EVENTS_GUEST")]
    pub guest: Option<PathBuf>,

    /// Port of the app callback that daprd calls (and, in embedded mode, of the sidecar API).
    #[arg(long, env = "APP_PORT", default_value_t = 8080)]
    pub app_port: u16,

    /// Address to listen on.
    #[arg(long, env = "TASK_EVENTS_LISTEN", default_value = "127.0.0.1")]
    pub listen: IpAddr,

    /// Sidecar to use.
    #[arg(long, env = "TASK_EVENTS_SIDECAR", value_enum, default_value_t = SidecarChoice::Auto)]
    pub sidecar: SidecarChoice,

    /// Directory of the embedded sidecar's durable store (one redb file).
    #[arg(long, env = "TASK_EVENTS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// daprd's HTTP port (set by `dapr run` and the Kubernetes injector).
    #[arg(long, env = "DAPR_HTTP_PORT")]
    pub dapr_http_port: Option<u16>,

    /// daprd's HTTP endpoint; wins over --dapr-http-port.
    #[arg(long, env = "DAPR_HTTP_ENDPOINT")]
    pub dapr_http_endpoint: Option<String>,

    /// Token daprd requires from the app (sent as `dapr-api-token` on every sidecar call).
    #[arg(long, env = "DAPR_API_TOKEN", hide_env_values = true)]
    pub dapr_api_token: Option<String>,

    /// Token the app requires from daprd on every Dapr-facing route (`dapr-api-token` header).
    #[arg(long, env = "APP_API_TOKEN", hide_env_values = true)]
    pub app_api_token: Option<String>,

    /// App id (the envelope `source` in embedded mode).
    #[arg(long, env = "APP_ID", default_value = "recurring-task-service")]
    pub app_id: String,

    /// Dapr state store that keeps the idempotency records.
    #[arg(long, env = "TASK_EVENTS_STATE_STORE", default_value = "statestore")]
    pub state_store: String,

    /// Name of the embedded sidecar's pub/sub component.
    #[arg(long, env = "TASK_EVENTS_PUBSUB", default_value = "kafka-pubsub")]
    pub pubsub: String,

    /// Virtual partitions per topic in embedded mode (order is kept per partition key).
    #[arg(long, env = "TASK_EVENTS_PARTITIONS", default_value_t = 4)]
    pub partitions: u32,

    /// Longest wait between redeliveries of a message the app answered RETRY (embedded mode).
    #[arg(
        long,
        env = "TASK_EVENTS_REDELIVERY_BACKOFF_MS",
        default_value_t = 5_000
    )]
    pub redelivery_backoff_ms: u64,

    /// Timeout of one call to the sidecar (publish, state).
    #[arg(long, env = "TASK_EVENTS_SIDECAR_TIMEOUT_MS", default_value_t = 5_000)]
    pub sidecar_timeout_ms: u64,

    /// How long SIGTERM waits for in-flight deliveries before exiting anyway.
    #[arg(long, env = "TASK_EVENTS_SHUTDOWN_GRACE_MS", default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub swap: SwapArgs,
}

/// Limits applied to every plugin instance.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Linear memory one plugin instance may use, in MiB.
    #[arg(long, env = "TASK_EVENTS_MEMORY_LIMIT_MIB", default_value_t = 64)]
    pub memory_limit_mib: u64,

    /// Wall-clock budget of one plugin call, in milliseconds.
    #[arg(long, env = "TASK_EVENTS_CALL_DEADLINE_MS", default_value_t = 2_000)]
    pub call_deadline_ms: u64,

    /// Plugin instances alive at once (pool size; further deliveries wait).
    #[arg(long, env = "TASK_EVENTS_MAX_INSTANCES", default_value_t = 64)]
    pub max_instances: u32,
}

/// `LimitArgs` as the plugin runtime uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: usize,
    pub call_deadline: Duration,
    /// Epoch tick: the deadline's resolution. One ticker thread per engine (wasmtime #11814).
    pub epoch_tick: Duration,
    pub max_instances: u32,
    /// Log lines one call may write before the rest are dropped (a guest cannot flood logs).
    pub max_log_lines_per_call: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(10),
            max_instances: 64,
            max_log_lines_per_call: 64,
        }
    }
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: usize::try_from(self.memory_limit_mib.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            call_deadline: Duration::from_millis(self.call_deadline_ms.max(1)),
            max_instances: self.max_instances.max(1),
            ..Limits::default()
        }
    }
}

/// Swapping the plugin while the host runs: triggers, canary, compile cache, automatic rollback
/// (docs/operations.md).
#[derive(Debug, Clone, Args)]
pub struct SwapArgs {
    /// Token that enables `/admin/plugin` and `/admin/rollback` (sent as `authorization: Bearer
    /// <token>`); without one they answer 403.
    #[arg(long, env = "TASK_EVENTS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Extra golden cases (JSON lines, one case each) every plugin must pass before it serves.
    #[arg(long, env = "TASK_EVENTS_CANARY_FILE")]
    pub canary_file: Option<PathBuf>,

    /// Directory of compiled plugins, so restarts and re-swaps skip compilation [default: <data-dir>/cache].
    #[arg(long, env = "TASK_EVENTS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Watch the --guest file and swap the plugin when it changes (SIGHUP reloads it either way).
    #[arg(long, env = "TASK_EVENTS_WATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch: bool,

    /// Quiet time after a change to the --guest file before it is read; its size and mtime must
    /// also stay the same for this long.
    #[arg(long, env = "TASK_EVENTS_WATCH_DEBOUNCE_MS", default_value_t = 100)]
    pub watch_debounce_ms: u64,

    /// A new plugin is on probation for its first this-many deliveries...
    #[arg(
        long,
        env = "TASK_EVENTS_ROLLBACK_WINDOW_DELIVERIES",
        default_value_t = 50
    )]
    pub rollback_window_deliveries: u64,

    /// ...or this many seconds, whichever ends first.
    #[arg(long, env = "TASK_EVENTS_ROLLBACK_WINDOW_SECS", default_value_t = 60)]
    pub rollback_window_secs: u64,

    /// On probation, a failure rate (traps, deadlines, memory limits) above this rolls back.
    #[arg(long, env = "TASK_EVENTS_ROLLBACK_FAILURE_RATE", default_value_t = 0.5, value_parser = parse_rate)]
    pub rollback_failure_rate: f64,

    /// Deliveries a new plugin must have had before its failure rate is judged.
    #[arg(long, env = "TASK_EVENTS_ROLLBACK_MIN_DELIVERIES", default_value_t = 5)]
    pub rollback_min_deliveries: u64,
}

/// When a freshly swapped-in plugin is rolled back automatically.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackPolicy {
    /// The probation ends after this many deliveries...
    pub window_deliveries: u64,
    /// ...or this long after the swap, whichever comes first.
    pub window: Duration,
    /// Failures / deliveries above this (0.0..=1.0) roll back.
    pub failure_rate: f64,
    /// No verdict before this many deliveries.
    pub min_deliveries: u64,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy {
            window_deliveries: 50,
            window: Duration::from_secs(60),
            failure_rate: 0.5,
            min_deliveries: 5,
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a failure rate between 0 and 1 (e.g. 0.5)"
        )),
    }
}

impl SwapArgs {
    pub fn rollback_policy(&self) -> RollbackPolicy {
        RollbackPolicy {
            window_deliveries: self.rollback_window_deliveries,
            window: Duration::from_secs(self.rollback_window_secs),
            failure_rate: self.rollback_failure_rate,
            min_deliveries: self.rollback_min_deliveries.max(1),
        }
    }

    /// `--cache-dir`, or `cache` under the data directory.
    pub fn cache_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("cache"))
    }

    pub fn watch_debounce(&self) -> Duration {
        Duration::from_millis(self.watch_debounce_ms.max(1))
    }
}

impl ServeArgs {
    /// Resolves `--sidecar auto` against the environment daprd's launchers set.
    pub fn sidecar_mode(&self) -> SidecarMode {
        let dapr_endpoint = self.dapr_http_endpoint.clone().or_else(|| {
            self.dapr_http_port
                .map(|port| format!("http://127.0.0.1:{port}"))
        });
        match (self.sidecar, dapr_endpoint) {
            (SidecarChoice::Embedded, _) | (SidecarChoice::Auto, None) => SidecarMode::Embedded,
            (_, Some(endpoint)) => SidecarMode::Dapr {
                endpoint: endpoint.trim_end_matches('/').to_string(),
            },
            (SidecarChoice::Dapr, None) => SidecarMode::Dapr {
                endpoint: "http://127.0.0.1:3500".into(),
            },
        }
    }

    pub fn sidecar_timeout(&self) -> Duration {
        Duration::from_millis(self.sidecar_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
