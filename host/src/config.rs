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

/// How log lines are written (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one line per event, coloured only when stderr is a terminal.
    Text,
    /// For log pipelines: one JSON object per line, with the delivery's fields in `span`.
    Json,
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

    /// Timeout of one call to the sidecar (publish, state).
    #[arg(long, env = "TASK_EVENTS_SIDECAR_TIMEOUT_MS", default_value_t = 5_000)]
    pub sidecar_timeout_ms: u64,

    /// How long one delivery retries a transient sidecar failure (5xx, refused, timeout) in
    /// place, with jittered backoff, before answering RETRY.
    #[arg(
        long,
        env = "TASK_EVENTS_SIDECAR_RETRY_BUDGET_MS",
        default_value_t = 3_000
    )]
    pub sidecar_retry_budget_ms: u64,

    /// The longest plugin retry delay waited inside a delivery; a longer one is parked in the
    /// state store and re-driven by a job, so the partition moves on.
    #[arg(
        long,
        env = "TASK_EVENTS_MAX_IN_PLACE_RETRY_MS",
        default_value_t = 2_000
    )]
    pub max_in_place_retry_ms: u64,

    /// Ask daprd for bulk deliveries of up to this many events per request (`bulkSubscribe`
    /// in every subscription); 0 keeps single deliveries. A batch comes from one partition.
    #[arg(long, env = "TASK_EVENTS_BULK_MAX_MESSAGES", default_value_t = 0)]
    pub bulk_max_messages: u32,

    /// With bulk deliveries: the longest daprd waits to fill a batch before sending it.
    #[arg(long, env = "TASK_EVENTS_BULK_MAX_AWAIT_MS", default_value_t = 100)]
    pub bulk_max_await_ms: u32,

    /// Which entries of a bulk batch share a plugin instance: `entry` (a fresh one each, as
    /// single deliveries), `user` (a user's entries share one), `batch` (one for all: fastest,
    /// but users share the instance's memory).
    #[arg(long, env = "TASK_EVENTS_BULK_INSTANCE", value_enum, default_value_t = InstanceScope::Entry)]
    pub bulk_instance: InstanceScope,

    /// How long idempotency and outcome records are kept (daprd's `ttlInSeconds` on every
    /// record): a redelivery later than this is handled again.
    #[arg(long, env = "TASK_EVENTS_RECORD_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub record_ttl_secs: u64,

    /// During a switch-over from a service built after the seed design: also treat an event as
    /// handled when the state store holds `<prefix><event_id>` (e.g. `event-processed-`).
    #[arg(long, env = "TASK_EVENTS_LEGACY_DEDUPE_PREFIX")]
    pub legacy_dedupe_prefix: Option<String>,

    /// How long SIGTERM waits for in-flight deliveries before exiting anyway.
    #[arg(long, env = "TASK_EVENTS_SHUTDOWN_GRACE_MS", default_value_t = 30_000)]
    pub shutdown_grace_ms: u64,

    /// File to write this process's id to while it serves (removed at exit), for
    /// `kill -HUP "$(cat FILE)"`.
    #[arg(long, env = "TASK_EVENTS_PID_FILE")]
    pub pid_file: Option<PathBuf>,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub swap: SwapArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Token that `GET /metrics` requires (`authorization: Bearer <token>`); without one
    /// `/metrics` is open, as Prometheus scrapers usually expect.
    #[arg(long, env = "TASK_EVENTS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// The embedded sidecar's own settings, shared by `serve` (in-process) and `sidecar`.
#[derive(Debug, Clone, Args)]
pub struct EmbeddedArgs {
    /// Directory of the embedded sidecar's durable store (one redb file).
    #[arg(long, env = "TASK_EVENTS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Name of the embedded sidecar's pub/sub component.
    #[arg(long, env = "TASK_EVENTS_PUBSUB", default_value = "kafka-pubsub")]
    pub pubsub: String,

    /// Virtual partitions per topic in the embedded sidecar (order is kept per partition key).
    #[arg(long, env = "TASK_EVENTS_PARTITIONS", default_value_t = 4)]
    pub partitions: u32,

    /// Longest wait between redeliveries of a message the app answered RETRY (embedded sidecar).
    #[arg(
        long,
        env = "TASK_EVENTS_REDELIVERY_BACKOFF_MS",
        default_value_t = 5_000
    )]
    pub redelivery_backoff_ms: u64,

    /// Deliveries of a record the app keeps answering RETRY before the embedded sidecar
    /// forwards it to the dead-letter topic (daprd's resiliency `maxRetries`); 0: forever.
    #[arg(long, env = "TASK_EVENTS_MAX_REDELIVERIES", default_value_t = 100)]
    pub max_redeliveries: u32,

    /// Topic records older than this many hours are deleted once every subscriber has them
    /// (embedded sidecar; expired state keys are removed too).
    #[arg(long, env = "TASK_EVENTS_RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,
}

impl EmbeddedArgs {
    /// The embedded sidecar's configuration for the app `app_id` and state store `state_store`.
    pub fn config(&self, app_id: &str, state_store: &str) -> crate::embedded::EmbeddedConfig {
        crate::embedded::EmbeddedConfig {
            data_dir: self.data_dir.clone(),
            app_id: app_id.to_string(),
            pubsub_name: self.pubsub.clone(),
            state_store: state_store.to_string(),
            partitions: self.partitions.max(1),
            redelivery_backoff: Duration::from_millis(self.redelivery_backoff_ms.max(1)),
            retention: Duration::from_secs(self.retention_hours.saturating_mul(3600)),
            max_redeliveries: self.max_redeliveries,
        }
    }
}

/// `task-events-host sidecar`: the embedded sidecar on its own, for any Dapr app.
#[derive(Debug, Clone, Args)]
pub struct SidecarArgs {
    /// Port of the app to deliver to, on 127.0.0.1 (like daprd's --app-port).
    #[arg(long, env = "APP_PORT")]
    pub app_port: Option<u16>,

    /// Base URL of the app to deliver to, e.g. http://127.0.0.1:3000; wins over --app-port.
    /// Given more than once: replicas of one app sharing the partitions (a consumer group).
    #[arg(long, env = "TASK_EVENTS_APP_URL", value_delimiter = ',')]
    pub app_url: Vec<String>,

    /// Port of the sidecar's HTTP API (like daprd's --dapr-http-port).
    #[arg(long, env = "DAPR_HTTP_PORT", default_value_t = 3500)]
    pub dapr_http_port: u16,

    /// Address the sidecar API listens on.
    #[arg(long, env = "TASK_EVENTS_LISTEN", default_value = "127.0.0.1")]
    pub listen: IpAddr,

    /// App id: the envelope `source` and the consumer group.
    #[arg(long, env = "APP_ID", default_value = "app")]
    pub app_id: String,

    /// Name of the state store.
    #[arg(long, env = "TASK_EVENTS_STATE_STORE", default_value = "statestore")]
    pub state_store: String,

    /// Token every caller of the sidecar API must send as `dapr-api-token`.
    #[arg(long, env = "DAPR_API_TOKEN", hide_env_values = true)]
    pub dapr_api_token: Option<String>,

    /// Token sent to the app as `dapr-api-token` on every delivery.
    #[arg(long, env = "APP_API_TOKEN", hide_env_values = true)]
    pub app_api_token: Option<String>,

    /// Timeout of one delivery to the app; a delivery that takes longer is redelivered.
    #[arg(long, env = "TASK_EVENTS_APP_TIMEOUT_MS", default_value_t = 60_000)]
    pub app_timeout_ms: u64,

    #[command(flatten)]
    pub embedded: EmbeddedArgs,

    #[command(flatten)]
    pub http: HttpArgs,
}

impl SidecarArgs {
    /// The `--app-url`s, else `http://127.0.0.1:<--app-port>`; empty when neither is given.
    pub fn app_urls(&self) -> Vec<String> {
        if !self.app_url.is_empty() {
            return self.app_url.clone();
        }
        self.app_port
            .map(|p| vec![format!("http://127.0.0.1:{p}")])
            .unwrap_or_default()
    }

    pub fn app_timeout(&self) -> Duration {
        Duration::from_millis(self.app_timeout_ms.max(1))
    }
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

    /// Emits one delivery may publish; a delivery with more is dead-lettered.
    #[arg(long, env = "TASK_EVENTS_MAX_EMITS", default_value_t = 64)]
    pub max_emits: u32,

    /// Size of one emit (topic, key, id, type and data), in bytes; a larger one is dead-lettered.
    #[arg(long, env = "TASK_EVENTS_MAX_EMIT_BYTES", default_value_t = 256 * 1024)]
    pub max_emit_bytes: u32,

    /// Delays one retry policy may list; a plugin whose manifest has more is refused at load.
    #[arg(long, env = "TASK_EVENTS_MAX_RETRY_DELAYS", default_value_t = 16)]
    pub max_retry_delays: u32,

    /// Sum of one retry policy's delays, in seconds; a plugin with a longer one is refused at load.
    #[arg(
        long,
        env = "TASK_EVENTS_MAX_RETRY_TOTAL_SECS",
        default_value_t = 3_600
    )]
    pub max_retry_total_secs: u64,

    /// Let a plugin built against task-events:plugin@1.0 (it cannot declare its topics) publish
    /// to any topic but the subscribed and dead-letter ones; without this it may publish nothing.
    #[arg(long, env = "TASK_EVENTS_ALLOW_UNDECLARED_TOPICS")]
    pub allow_undeclared_topics: bool,

    /// Let a plugin serve when the canary has no case to run (no golden cases of its own and no
    /// --canary-file cases); without this such a plugin is refused.
    #[arg(long, env = "TASK_EVENTS_ALLOW_EMPTY_CANARY")]
    pub allow_empty_canary: bool,

    /// Plugin log lines per second, across all calls (bursts of 4 seconds' worth); the rest are
    /// dropped and counted.
    #[arg(
        long,
        env = "TASK_EVENTS_PLUGIN_LOG_LINES_PER_SEC",
        default_value_t = 50
    )]
    pub plugin_log_lines_per_sec: u32,
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
    /// Log lines per second a plugin may write across all its calls.
    pub log_lines_per_sec: u32,
    /// What a plugin may cause outside itself (plugin/effects.rs).
    pub effects: EffectLimits,
    /// Whether a plugin may serve when the canary ran no case.
    pub allow_empty_canary: bool,
}

/// Caps on a plugin's effects: its emits (checked per delivery) and its retry schedules
/// (checked at load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectLimits {
    pub max_emits: usize,
    pub max_emit_bytes: usize,
    pub max_retry_delays: usize,
    pub max_retry_total: Duration,
    /// A plugin that declares no topics (task-events:plugin@1.0) may publish to any topic that
    /// is neither subscribed nor a dead-letter topic, instead of to none.
    pub allow_undeclared_topics: bool,
}

impl Default for EffectLimits {
    fn default() -> Self {
        EffectLimits {
            max_emits: 64,
            max_emit_bytes: 256 * 1024,
            max_retry_delays: 16,
            max_retry_total: Duration::from_secs(3_600),
            allow_undeclared_topics: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(10),
            max_instances: 64,
            max_log_lines_per_call: 64,
            log_lines_per_sec: 50,
            effects: EffectLimits::default(),
            allow_empty_canary: false,
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
            log_lines_per_sec: self.plugin_log_lines_per_sec,
            effects: EffectLimits {
                max_emits: self.max_emits as usize,
                max_emit_bytes: self.max_emit_bytes as usize,
                max_retry_delays: self.max_retry_delays as usize,
                max_retry_total: Duration::from_secs(self.max_retry_total_secs),
                allow_undeclared_topics: self.allow_undeclared_topics,
            },
            allow_empty_canary: self.allow_empty_canary,
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

    /// Secret (32+ random bytes, a file only this user can read, outside the data directory)
    /// that authenticates compile-cache entries across restarts; without it a per-process key is
    /// used and the cache only helps within one run (plugin/cache.rs).
    #[arg(long, env = "TASK_EVENTS_CACHE_KEY_FILE")]
    pub cache_key_file: Option<PathBuf>,

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

    pub fn sidecar_retry_budget(&self) -> Duration {
        Duration::from_millis(self.sidecar_retry_budget_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// A token read from `name`: an empty value means "no token", as daprd reads it, with a warning
/// (an empty token that counted would accept an empty header and refuse a missing one).
pub fn non_empty(name: &str, token: Option<String>) -> Option<String> {
    match token {
        Some(t) if t.is_empty() => {
            tracing::warn!("{name} is set but empty: no token is required or sent");
            None
        }
        other => other,
    }
}

/// Warns when `address` is reachable beyond this machine and no token guards it.
pub fn warn_if_exposed(address: std::net::SocketAddr, has_token: bool, token_name: &str) {
    if !address.ip().is_loopback() && !has_token {
        tracing::warn!(
            "listening on {address}, beyond loopback, without {token_name}: anyone who can reach \
             this port can use it; set {token_name}"
        );
    }
}

/// OpenTelemetry span export (`telemetry.rs`), off unless an endpoint is set. The standard
/// variables are read so that an OTel-instrumented platform configures the host as it would any
/// other app.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Export the delivery spans over OTLP/HTTP (protobuf) to this collector base URL, e.g.
    /// `http://localhost:4318` (`/v1/traces` is appended); plain `http://` only. A collector
    /// that is down costs spans, never deliveries. Off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// `service.name` of the exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "task-events-host")]
    pub otel_service_name: String,
}

/// What one HTTP request may cost the listener (`http_limits.rs`, `http_server.rs`): shared by
/// `serve` and `sidecar`.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Largest request body on the Dapr-facing and sidecar API routes, in bytes; a larger one
    /// gets 413 (daprd's --max-body-size default is 4 MiB). `/admin/plugin` has its own cap.
    #[arg(long, env = "TASK_EVENTS_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub max_body_bytes: u64,

    /// Entries one bulk request may carry (a bulk delivery to the app, a bulk publish to the
    /// sidecar); a larger batch gets 413 and none of it is processed.
    #[arg(long, env = "TASK_EVENTS_MAX_BULK_ENTRIES", default_value_t = 1_000)]
    pub max_bulk_entries: u32,

    /// Largest request head (request line and headers), in bytes; a larger one gets 431.
    #[arg(long, env = "TASK_EVENTS_MAX_HEADER_BYTES", default_value_t = 64 << 10)]
    pub max_header_bytes: u32,

    /// Time a client has to send a request's headers; a slower one is disconnected.
    #[arg(
        long,
        env = "TASK_EVENTS_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_read_timeout_ms: u64,

    /// Time a client has to send a request's body; a slower one gets 408.
    #[arg(
        long,
        env = "TASK_EVENTS_BODY_READ_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub body_read_timeout_ms: u64,
}

/// `HttpArgs` as the listener uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub max_bulk_entries: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 4 << 20,
            max_bulk_entries: 1_000,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpArgs {
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_bulk_entries: (self.max_bulk_entries as usize).max(1),
            // hyper's floor: a read buffer smaller than 8 KiB cannot hold ordinary requests.
            max_header_bytes: (self.max_header_bytes as usize).max(8 << 10),
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms.max(1)),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms.max(1)),
        }
    }
}

/// Which entries of a bulk batch share a plugin instance (`--bulk-instance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum InstanceScope {
    /// A fresh instance per entry, as for single deliveries: nothing carries over.
    #[default]
    Entry,
    /// One instance per user within a batch: a user's entries share memory, users never do.
    User,
    /// One instance for the whole batch: fastest, but one user's event stays in the memory
    /// the next user's event is handled in. Only for plugins trusted not to carry data over.
    Batch,
}
