//! The host under test as a real child process: started with flags, waited on until healthy,
//! stopped with SIGTERM or `kill -9`. Its log goes to a file that failing tests print.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::embedded_api::SidecarApi;
use crate::process::Process;
pub use crate::process::free_port;

/// The variables the host reads that do not start with `TASK_EVENTS_` (all of those are
/// removed too), so the developer's shell cannot leak into a test.
const HOST_ENV: &[&str] = &[
    "DAPR_HTTP_PORT",
    "DAPR_HTTP_ENDPOINT",
    "DAPR_API_TOKEN",
    "APP_API_TOKEN",
    "APP_PORT",
    "APP_ID",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// Removes every variable the host reads from `cmd`'s environment.
pub fn clear_host_env(cmd: &mut Command) {
    for var in HOST_ENV {
        cmd.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("TASK_EVENTS_") {
            cmd.env_remove(var);
        }
    }
}

/// Runs one command of the host binary `exe` that does not serve (`check`, `canary record`,
/// `replay`, `dead-letters`, ...), with the host's environment cleared and only error logs;
/// (exit code, stdout, stderr).
pub fn run_command(exe: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(exe);
    clear_host_env(&mut cmd);
    let out = cmd
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("running the host binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The host serving on `port` (`base`); `log`, `signal`, `kill9`, `terminate` are [`Process`]'s.
pub struct HostProcess(Process);

impl std::ops::Deref for HostProcess {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl std::ops::DerefMut for HostProcess {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.0
    }
}

impl HostProcess {
    /// Starts `exe serve --app-port <free> <args>` with `envs`, and waits until `/healthz` answers.
    pub async fn start(
        exe: &str,
        log_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> HostProcess {
        HostProcess::start_on(free_port(), exe, log_dir, args, envs).await
    }

    /// Starts the host in embedded mode with its data under `dir/data`, plus `extra` flags.
    pub async fn embedded(
        exe: &str,
        dir: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> HostProcess {
        let data = dir.join("data");
        let data = data.to_str().expect("a UTF-8 temp path");
        let mut args = vec!["--sidecar", "embedded", "--data-dir", data];
        args.extend_from_slice(extra);
        HostProcess::start(exe, dir, &args, envs).await
    }

    /// Like `start`, on a given app port (e.g. one a daprd stand-in was configured with).
    pub async fn start_on(
        port: u16,
        exe: &str,
        log_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> HostProcess {
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .args(["--app-port", &port.to_string()])
            .args(args);
        clear_host_env(&mut cmd);
        let mut host = Process::spawn(cmd, envs, "host", port, log_dir);
        host.wait_ok("/healthz", Duration::from_secs(60)).await;
        HostProcess(host)
    }
}

impl SidecarApi for HostProcess {
    fn base(&self) -> &str {
        &self.base
    }
    fn log(&self) -> String {
        Process::log(self)
    }
}
