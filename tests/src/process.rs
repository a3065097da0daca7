//! A program under test as a child process, serving HTTP on one port: its stderr goes to a log
//! file that failing tests print, it is waited on until a path answers 2xx, and it is killed
//! when dropped. [`crate::host::HostProcess`] and [`crate::sidecar_process::SidecarProcess`]
//! are this with their own command lines.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago (loopback only).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free port")
}

pub struct Process {
    child: Child,
    /// "host" or "sidecar": names the log file and the process in failure messages.
    what: &'static str,
    /// The port it serves on.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: PathBuf,
}

impl Process {
    /// Spawns `cmd` serving on `port`, with `RUST_LOG=info` unless `envs` (added to its
    /// environment) set it, and its stderr in `<log_dir>/<what>-<port>.log`.
    pub fn spawn(
        mut cmd: Command,
        envs: &[(&str, &str)],
        what: &'static str,
        port: u16,
        log_dir: &Path,
    ) -> Process {
        let log = log_dir.join(format!("{what}-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("creating the log file");
        let child = cmd
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {what}: {e}"));
        Process {
            child,
            what,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits (bounded) until `GET <path>` answers 2xx; panics if the process exits first.
    pub async fn wait_ok(&mut self, path: &str, timeout: Duration) {
        let what = self.what;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("a plain-HTTP reqwest client always builds");
        let url = format!("{}{path}", self.base);
        let (child, log) = (&mut self.child, &self.log);
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        crate::wait::until(timeout, Duration::from_millis(50), log, async || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the {what} exited with {status} before {path} answered; log:\n{}",
                    log()
                );
            }
            match client.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                _ => Err(format!("the {what}'s {path} answering 2xx")),
            }
        })
        .await
    }

    /// Everything it logged so far.
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
                    "the {} did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.what,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}
