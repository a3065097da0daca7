//! The standalone sidecar (`host-under-test sidecar`) as a child process, for tests that put
//! their own app (the recording [`crate::test_app`], or a Dapr SDK app) behind it.
//!
//! Started with a clean environment (only what the test passes, plus `RUST_LOG`), so the
//! developer's shell cannot leak a token in; its log goes to a file that failing tests print.
//! [`SidecarProcess::start`] returns once the sidecar's own API is up (`/v1.0/healthz/outbound`
//! answers 2xx, as daprd's does before it looks for the app); [`SidecarProcess::wait_ready`]
//! waits for `/v1.0/healthz` (204 once the app port is open). Killed when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::embedded_api::SidecarApi;
use crate::process::{Process, free_port};

/// The sidecar's HTTP API on `port` (`--dapr-http-port`), `base`; `log` is [`Process`]'s.
pub struct SidecarProcess {
    process: Process,
    /// The `DAPR_API_TOKEN` it was started with, sent by [`SidecarProcess::api`].
    token: Option<String>,
}

impl std::ops::Deref for SidecarProcess {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl SidecarProcess {
    /// `exe sidecar --app-port <app_port> --dapr-http-port <free> --data-dir <dir>/sidecar-data
    /// --app-id <app_id> <extra>`, with only `envs` (and `RUST_LOG`) in its environment. When
    /// `extra` holds `--app-url`, `--app-port` is left out (the two conflict).
    pub async fn start(
        exe: &str,
        dir: &Path,
        app_port: u16,
        app_id: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> SidecarProcess {
        let port = free_port();
        let app_port = app_port.to_string();
        let app: &[&str] = if extra.contains(&"--app-url") {
            &[]
        } else {
            &["--app-port", &app_port]
        };
        let mut cmd = Command::new(exe);
        cmd.arg("sidecar")
            .args(app)
            .args(["--dapr-http-port", &port.to_string()])
            .arg("--data-dir")
            .arg(dir.join("sidecar-data"))
            .args(["--app-id", app_id])
            .args(extra)
            .env_clear();
        let mut process = Process::spawn(cmd, envs, "sidecar", port, dir);
        process
            .wait_ok("/v1.0/healthz/outbound", Duration::from_secs(60))
            .await;
        let token = envs.iter().find(|(k, _)| *k == "DAPR_API_TOKEN");
        SidecarProcess {
            process,
            token: token.map(|(_, v)| v.to_string()),
        }
    }

    /// Waits (bounded) until `GET /v1.0/healthz` answers 2xx: the app port was found open.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        self.process.wait_ok("/v1.0/healthz", timeout).await;
    }

    /// A request to the sidecar's API (`path` from the root, e.g. `/v1.0/metadata`), carrying
    /// `dapr-api-token` if the sidecar was started with one.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        SidecarApi::api(self, method, path)
    }
}

impl SidecarApi for SidecarProcess {
    fn base(&self) -> &str {
        &self.base
    }
    fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    fn log(&self) -> String {
        Process::log(self)
    }
}
