//! The stand-in's configuration: the daprd flags, environment and components a test picks.
//!
//! Contract (dapr-contract.md §7, §8): `DAPR_API_TOKEN` is what daprd requires from the app,
//! `APP_API_TOKEN` what it sends to the app; pubsubs are `pubsub.kafka` components, state stores
//! `state.redis`; the resiliency policy is the pubsub's inbound target with a constant retry.
//! The defaults are Dapr's where Dapr has one (one attempt, 5 s) and Kafka-like otherwise
//! (3 partitions).

use std::time::Duration;

/// How the stand-in is set up; the fields mirror daprd flags, env and components.
#[derive(Clone, Debug)]
pub struct DaprdConfig {
    /// `--app-port`: where the app listens (loopback).
    pub app_port: u16,
    /// `--app-id`.
    pub app_id: String,
    /// Names of the `pubsub.kafka` components, e.g. `["kafka-pubsub"]`.
    pub pubsubs: Vec<String>,
    /// Names of the `state.redis` components, e.g. `["statestore"]`.
    pub state_stores: Vec<String>,
    /// daprd's `DAPR_API_TOKEN`: required from the app on every API call but healthz.
    pub dapr_api_token: Option<String>,
    /// daprd's `APP_API_TOKEN`: sent to the app as `dapr-api-token`.
    pub app_api_token: Option<String>,
    /// Partitions per topic (0 is treated as 1).
    pub partitions: u32,
    /// The pubsub components' inbound resiliency policy.
    pub resiliency: Resiliency,
}

/// The inbound policy (`targets.components.<ps>.inbound`): constant retries and a timeout.
#[derive(Clone, Debug)]
pub struct Resiliency {
    /// Retries after the first attempt; 0 means one attempt (no policy).
    pub max_retries: u32,
    /// Pause between attempts; also Kafka's consume-retry back-off (5 s in Kafka) once the
    /// policy is spent without a DLQ.
    pub retry_interval: Duration,
    /// Per-attempt timeout; `None` waits for the app as long as it takes (until `stop`).
    pub timeout: Option<Duration>,
}

impl Default for Resiliency {
    fn default() -> Self {
        Resiliency {
            max_retries: 0,
            retry_interval: Duration::from_secs(5),
            timeout: None,
        }
    }
}

impl Default for DaprdConfig {
    fn default() -> Self {
        DaprdConfig {
            app_port: 0,
            app_id: "task-events".into(),
            pubsubs: vec!["kafka-pubsub".into()],
            state_stores: vec!["statestore".into()],
            dapr_api_token: None,
            app_api_token: None,
            partitions: 3,
            resiliency: Resiliency::default(),
        }
    }
}
