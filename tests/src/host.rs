//! The host under test as a real child process: started with flags, waited on until healthy,
//! stopped with SIGTERM or `kill -9`. Its log goes to a file that failing tests print.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The variables the host reads that do not start with `TASK_EVENTS_` (all of those are
/// removed too), so the developer's shell cannot leak into a test.
const HOST_ENV: &[&str] = &[
    "DAPR_HTTP_PORT",
    "DAPR_HTTP_ENDPOINT",
    "DAPR_API_TOKEN",
    "APP_API_TOKEN",
    "APP_PORT",
    "APP_ID",
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

pub struct HostProcess {
    child: Child,
    pub port: u16,
    pub base: String,
    log: PathBuf,
}

/// A port that was free a moment ago (loopback only).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free port")
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
        let log = log_dir.join(format!("host-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("creating the host log");
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .args(["--app-port", &port.to_string()])
            .args(args);
        clear_host_env(&mut cmd);
        cmd.env("RUST_LOG", "info").envs(envs.iter().copied());
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("starting the host");
        let mut host = HostProcess {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        host.wait_healthy(Duration::from_secs(60)).await;
        host
    }

    async fn wait_healthy(&mut self, timeout: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the host exited with {status} before it was healthy; log:\n{}",
                    self.log()
                );
            }
            if let Ok(resp) = client.get(format!("{}/healthz", self.base)).send().await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the host was not healthy within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the host logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal by name (e.g. `HUP`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -{name} {} failed",
            self.child.id()
        );
    }

    /// `kill -9`: no chance to flush or finish anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "the host did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
