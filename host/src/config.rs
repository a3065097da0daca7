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
    #[arg(long, env = "TASK_EVENTS_REDELIVERY_BACKOFF_MS", default_value_t = 5_000)]
    pub redelivery_backoff_ms: u64,

    /// Timeout of one call to the sidecar (publish, state).
    #[arg(long, env = "TASK_EVENTS_SIDECAR_TIMEOUT_MS", default_value_t = 5_000)]
    pub sidecar_timeout_ms: u64,

    /// How long SIGTERM waits for in-flight deliveries before exiting anyway.
    #[arg(long, env = "TASK_EVENTS_SHUTDOWN_GRACE_MS", default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,

    #[command(flatten)]
    pub limits: LimitArgs,
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
            memory_bytes: usize::try_from(self.memory_limit_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            call_deadline: Duration::from_millis(self.call_deadline_ms.max(1)),
            max_instances: self.max_instances.max(1),
            ..Limits::default()
        }
    }
}

impl ServeArgs {
    /// Resolves `--sidecar auto` against the environment daprd's launchers set.
    pub fn sidecar_mode(&self) -> SidecarMode {
        let dapr_endpoint = self
            .dapr_http_endpoint
            .clone()
            .or_else(|| self.dapr_http_port.map(|port| format!("http://127.0.0.1:{port}")));
        match (self.sidecar, dapr_endpoint) {
            (SidecarChoice::Embedded, _) | (SidecarChoice::Auto, None) => SidecarMode::Embedded,
            (_, Some(endpoint)) => SidecarMode::Dapr { endpoint: endpoint.trim_end_matches('/').to_string() },
            (SidecarChoice::Dapr, None) => SidecarMode::Dapr { endpoint: "http://127.0.0.1:3500".into() },
        }
    }

    pub fn sidecar_timeout(&self) -> Duration {
        Duration::from_millis(self.sidecar_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}
