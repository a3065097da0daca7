//! File triggers of a swap: watching the `--guest` file, and SIGHUP.
//!
//! Contract:
//! - The watcher watches the *directory* that holds the `--guest` path (and, when the path is a
//!   symlink, the directory of its current target), never the file's inode, and resolves the
//!   path again on every event. So it follows an in-place write (`cp` over the file), an atomic
//!   replace (write a temp file, `mv` it over), and a Kubernetes ConfigMap volume, where the
//!   file is a symlink through `..data` and an update renames a new `..data` symlink into place.
//! - It acts on events that concern the file (its name, a `..`-prefixed ConfigMap entry, the
//!   resolved target), after a quiet period of `debounce` with no such event, and only once the
//!   file's size, mtime and inode have stayed the same for `debounce`: a half-written file is not
//!   read on purpose. If one is read anyway (a writer that paused longer than that), it fails to
//!   parse, is reported as a rejection, and the next event retries.
//! - It hands the bytes to `Swapper::swap` only when they differ from what it last read from the
//!   file: unrelated events in the directory, or a plugin rolled back while the file still holds
//!   it, do not cause swaps; the next change to the file does. SIGHUP always re-reads and offers
//!   the file (identical bytes to the serving plugin are still a no-op).
//! - Both tasks end at shutdown (the watcher) or with the process (SIGHUP). A watch that cannot
//!   be set up is an error at start-up; one that breaks later is logged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::loaded::sha256_hex;
use super::prepare::Rejection;
use super::swap::Swapper;

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot watch {path} for changes: {source} (start with --watch false to rely on SIGHUP and POST /admin/plugin)"
)]
pub struct WatchError {
    path: String,
    source: notify::Error,
}

/// Tries before giving up on a file that keeps changing (the next event retries).
const STABLE_TRIES: u32 = 50;

/// Starts watching `path`; `served_sha256` is the sha256 of the bytes loaded from it at start-up.
pub fn spawn_watcher(
    path: PathBuf,
    debounce: Duration,
    swapper: std::sync::Arc<Swapper>,
    served_sha256: String,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .map_err(|source| WatchError {
        path: path.display().to_string(),
        source,
    })?;
    let mut watched = Watched::new(&path);
    watched.refresh(&mut watcher).map_err(|source| WatchError {
        path: path.display().to_string(),
        source,
    })?;
    tracing::info!(file = %path.display(), dirs = ?watched.dirs, debounce_ms = debounce.as_millis(), "watching the plugin file");
    let origin = format!("file {}", path.display());
    Ok(tokio::spawn(async move {
        let mut last_read = Some(served_sha256);
        loop {
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = shutdown.cancelled() => return,
            };
            match event {
                None => return,
                Some(Err(e)) => tracing::warn!(file = %path.display(), "file watch error: {e}"),
                Some(Ok(event)) if watched.concerns(&event) => {}
                Some(Ok(_)) => continue,
            }
            // Quiet period: absorb the burst of events one write or rename makes. The file's stamp
            // at the last event must still hold at the end of it.
            let mut settled = stamp(&path).await.ok();
            let mut quiet_until = tokio::time::Instant::now() + debounce;
            loop {
                match tokio::time::timeout_at(quiet_until, rx.recv()).await {
                    Ok(Some(Ok(event))) if watched.concerns(&event) => {
                        settled = stamp(&path).await.ok();
                        quiet_until = tokio::time::Instant::now() + debounce;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(_elapsed) => break,
                }
            }
            if let Err(e) = watched.refresh(&mut watcher) {
                tracing::warn!(file = %path.display(), "cannot watch the plugin file's directory: {e}");
            }
            let bytes = match read_when_stable(&path, debounce, settled).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    let reason = format!("cannot read {}: {e}", path.display());
                    swapper.reject(&origin, None, &Rejection::Unreadable(reason));
                    continue;
                }
            };
            let sha256 = sha256_hex(&bytes);
            if last_read.as_deref() == Some(sha256.as_str()) {
                tracing::debug!(file = %path.display(), "plugin file event, content unchanged");
                continue;
            }
            last_read = Some(sha256);
            // The swap logs and records its outcome itself.
            let _ = swapper.swap(bytes, &origin).await;
        }
    }))
}

/// Reloads `path` (when there is one) on every SIGHUP.
pub fn spawn_sighup(
    path: Option<PathBuf>,
    swapper: std::sync::Arc<Swapper>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => signal,
            Err(e) => return tracing::warn!("cannot listen for SIGHUP: {e}"),
        };
        while hangup.recv().await.is_some() {
            let Some(path) = &path else {
                tracing::warn!(
                    "SIGHUP: no --guest file to reload (the bundled plugin serves); use POST /admin/plugin"
                );
                continue;
            };
            let origin = format!("SIGHUP, file {}", path.display());
            tracing::info!("{origin}: reloading the plugin");
            match tokio::fs::read(path).await {
                Ok(bytes) => {
                    let _ = swapper.swap(bytes, &origin).await;
                }
                Err(e) => {
                    let reason = format!("cannot read {}: {e}", path.display());
                    swapper.reject(&origin, None, &Rejection::Unreadable(reason));
                }
            }
        }
    })
}

/// What identifies a file version without reading it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

async fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = tokio::fs::metadata(path).await?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// The file's bytes once its stamp equals the one seen `interval` earlier (`before`, taken at
/// the last event, counts as the first look); `None` if it is missing (a rename in progress) or
/// never settled (the next event retries).
async fn read_when_stable(
    path: &Path,
    interval: Duration,
    mut before: Option<Stamp>,
) -> std::io::Result<Option<Vec<u8>>> {
    for _ in 0..STABLE_TRIES {
        let now = match stamp(path).await {
            Ok(stamp) => stamp,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if before.as_ref() == Some(&now) {
            let bytes = tokio::fs::read(path).await?;
            if stamp(path).await.ok().as_ref() == Some(&now) {
                return Ok(Some(bytes));
            }
        }
        before = Some(now);
        tokio::time::sleep(interval).await;
    }
    tracing::warn!(file = %path.display(), "the plugin file kept changing; waiting for the next change");
    Ok(None)
}

/// The directories watched for one path, and how to tell which events concern it.
struct Watched {
    path: PathBuf,
    name: Option<std::ffi::OsString>,
    dirs: Vec<PathBuf>,
    target: Option<PathBuf>,
}

impl Watched {
    fn new(path: &Path) -> Watched {
        Watched {
            path: path.to_path_buf(),
            name: path.file_name().map(Into::into),
            dirs: Vec::new(),
            target: None,
        }
    }

    /// Re-resolves the path and moves the watches to its directory and its target's directory.
    fn refresh(&mut self, watcher: &mut impl notify::Watcher) -> notify::Result<()> {
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let target = std::fs::canonicalize(&self.path).ok();
        let mut dirs = vec![std::fs::canonicalize(&parent).unwrap_or(parent)];
        if let Some(dir) = target.as_deref().and_then(Path::parent)
            && !dirs.iter().any(|d| d == dir)
        {
            dirs.push(dir.to_path_buf());
        }
        for old in self.dirs.iter().filter(|d| !dirs.contains(d)) {
            let _ = watcher.unwatch(old);
        }
        let mut result = Ok(());
        for dir in dirs.iter().filter(|d| !self.dirs.contains(d)) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                result = Err(e);
            }
        }
        self.dirs = dirs;
        if target.is_some() {
            self.target = target;
        }
        result
    }

    /// Whether `event` may have changed what the path resolves to. Opens and reads (our own
    /// included) never do.
    fn concerns(&self, event: &notify::Event) -> bool {
        if let EventKind::Access(kind) = event.kind {
            return matches!(kind, AccessKind::Close(AccessMode::Write)) && self.names_us(event);
        }
        event.need_rescan() || event.paths.is_empty() || self.names_us(event)
    }

    fn names_us(&self, event: &notify::Event) -> bool {
        event.paths.iter().any(|p| {
            let name = p.file_name();
            name == self.name.as_deref()
                || name
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".."))
                || self.target.as_deref() == Some(p.as_path())
        })
    }
}
