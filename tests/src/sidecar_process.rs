//! The standalone sidecar (`host-under-test sidecar`) as a child process, for tests that put
//! their own app (the recording [`crate::test_app`], or a Dapr SDK app) behind it.
//!
//! Started with a clean environment (only what the test passes, plus `RUST_LOG`), so the
//! developer's shell cannot leak a token in; its log goes to a file that failing tests print.
//! [`SidecarProcess::start`] returns once the sidecar's own API is up (`/v1.0/healthz/outbound`
//! answers 2xx, as daprd's does before it looks for the app); [`SidecarProcess::wait_ready`]
//! waits for `/v1.0/healthz` (204 once the app port is open). Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::host::free_port;

pub struct SidecarProcess {
    child: Child,
    /// The sidecar's HTTP API port (`--dapr-http-port`).
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The `DAPR_API_TOKEN` it was started with, sent by [`SidecarProcess::api`].
    token: Option<String>,
    log: PathBuf,
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
        let data = dir.join("sidecar-data");
        let log = dir.join(format!("sidecar-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("creating the sidecar log");
        let app_port = app_port.to_string();
        let app: &[&str] = if extra.contains(&"--app-url") {
            &[]
        } else {
            &["--app-port", &app_port]
        };
        let child = Command::new(exe)
            .arg("sidecar")
            .args(app)
            .args(["--dapr-http-port", &port.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .args(["--app-id", app_id])
            .args(extra)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting the sidecar");
        let mut sidecar = SidecarProcess {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            token: envs
                .iter()
                .find(|(k, _)| *k == "DAPR_API_TOKEN")
                .map(|(_, v)| v.to_string()),
            log,
        };
        sidecar
            .wait_status("/v1.0/healthz/outbound", Duration::from_secs(60))
            .await;
        sidecar
    }

    /// Waits (bounded) until `GET /v1.0/healthz` answers 2xx: the app port was found open.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        self.wait_status("/v1.0/healthz", timeout).await;
    }

    async fn wait_status(&mut self, path: &str, timeout: Duration) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a plain-HTTP reqwest client always builds");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the sidecar exited with {status} before {path} answered; log:\n{}",
                    self.log()
                );
            }
            if let Ok(resp) = client.get(format!("{}{path}", self.base)).send().await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sidecar's {path} did not answer 2xx within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A request to the sidecar's API (`path` from the root, e.g. `/v1.0/metadata`), carrying
    /// `dapr-api-token` if the sidecar was started with one.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30));
        match &self.token {
            Some(t) => req.header("dapr-api-token", t),
            None => req,
        }
    }

    /// Everything the sidecar logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
