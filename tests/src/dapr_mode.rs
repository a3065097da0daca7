//! Dapr mode as the end-to-end tests run it: the host in Dapr mode beside the standalone
//! sidecar (`host-under-test sidecar`, the same daprd imitation `serve` embeds), each in its
//! own process, with a fault-injecting [`Proxy`] on both hops:
//!
//! ```text
//! test ──publish──▶ sidecar ──deliver──▶ app proxy ──▶ host ──publish/state──▶ sidecar proxy ──▶ sidecar
//! ```
//!
//! The app proxy's journal is what daprd would see: every delivery and the host's answer. The
//! sidecar proxy breaks the host's calls to the sidecar (5xx, delays, dropped connections,
//! refusals). The sidecar redelivers a RETRY after 50-200 ms, so tests stay quick.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::embedded_api::topic_events;
use crate::host::{HostProcess, free_port};
use crate::proxy::{Exchange, Proxy};
use crate::sidecar_process::SidecarProcess;
use crate::wait::until;

/// The app id of the task service, as in deploy/.
pub const APP_ID: &str = "recurring-task-service";
/// The route the task plugin subscribes task-events on.
pub const TASK_ROUTE: &str = "/events/task-events";

/// Tokens for both directions, as daprd and the app would be configured.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    /// DAPR_API_TOKEN: the sidecar requires it; the host sends it.
    pub dapr: &'a str,
    /// APP_API_TOKEN: the sidecar sends it; the host requires it.
    pub app: &'a str,
}

pub struct DaprMode {
    pub host: HostProcess,
    pub sidecar: SidecarProcess,
    /// host → sidecar.
    pub sidecar_proxy: Proxy,
    /// sidecar → host.
    pub app_proxy: Proxy,
}

impl DaprMode {
    /// Starts the sidecar (delivering through the app proxy), then the host (calling the sidecar
    /// through the sidecar proxy, with `host_args` and `host_env`), and waits until the sidecar
    /// has read the host's subscriptions. `tokens` configure the sidecar; the host gets its
    /// tokens from `host_env`, so a test can give it wrong ones.
    pub async fn start(
        exe: &str,
        dir: &Path,
        tokens: Option<Tokens<'_>>,
        host_args: &[&str],
        host_env: &[(&str, &str)],
    ) -> DaprMode {
        let app_port = free_port();
        let app_proxy = Proxy::start(&format!("http://127.0.0.1:{app_port}")).await;
        let mut sidecar_env = Vec::new();
        if let Some(t) = tokens {
            sidecar_env.push(("DAPR_API_TOKEN", t.dapr));
            sidecar_env.push(("APP_API_TOKEN", t.app));
        }
        let mut sidecar = SidecarProcess::start(
            exe,
            dir,
            app_proxy.port,
            APP_ID,
            &["--redelivery-backoff-ms", "200"],
            &sidecar_env,
        )
        .await;
        let sidecar_proxy = Proxy::start(&sidecar.base).await;
        let proxy_port = sidecar_proxy.port.to_string();
        let mut env = vec![("DAPR_HTTP_PORT", proxy_port.as_str())];
        env.extend_from_slice(host_env);
        let data = dir.join("host-data");
        let mut args = vec!["--sidecar", "dapr", "--data-dir", data.to_str().unwrap()];
        args.extend_from_slice(host_args);
        let host = HostProcess::start_on(app_port, exe, dir, &args, &env).await;
        sidecar.wait_ready(Duration::from_secs(30)).await;
        DaprMode {
            host,
            sidecar,
            sidecar_proxy,
            app_proxy,
        }
    }

    /// The deliveries on `route` so far, with the host's answers.
    pub fn deliveries(&self, route: &str) -> Vec<Exchange> {
        self.app_proxy
            .journal()
            .into_iter()
            .filter(|x| x.method == "POST" && x.path == route)
            .collect()
    }

    /// The `status` the host answered each delivery on `route` with ("RETRY" for an error).
    pub fn answers(&self, route: &str) -> Vec<String> {
        self.deliveries(route).iter().map(answer).collect()
    }

    /// Waits (bounded) until `done` holds for the answers on `route`.
    pub async fn wait_answers(&self, route: &str, what: &str, done: impl Fn(&[String]) -> bool) {
        let (host, sidecar) = (&self.host, &self.sidecar);
        let logs = || format!("host:\n{}\nsidecar:\n{}", host.log(), sidecar.log());
        let (timeout, every) = (Duration::from_secs(30), Duration::from_millis(25));
        until(timeout, every, logs, async || {
            let answers = self.answers(route);
            match done(&answers) {
                true => Ok(()),
                false => Err(format!("{what}; answers {answers:?}")),
            }
        })
        .await
    }

    /// The `task.created` events the host published so far.
    pub async fn created(&self) -> Vec<Value> {
        topic_events(&self.sidecar, "task-events")
            .await
            .into_iter()
            .filter(|e| e["type"] == "task.created")
            .collect()
    }
}

/// How daprd reads one answer: `SUCCESS`, `RETRY` or `DROP`; a non-2xx status or a dropped
/// connection counts as `RETRY` (404 as `DROP`).
pub fn answer(x: &Exchange) -> String {
    match x.status() {
        Some(404) => "DROP".into(),
        Some(s) if (200..300).contains(&s) => x.response_json()["status"]
            .as_str()
            .unwrap_or("SUCCESS")
            .to_string(),
        _ => "RETRY".into(),
    }
}
