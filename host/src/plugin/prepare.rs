//! Turning plugin bytes into a plugin that may serve: hash, compile (or take from the cache),
//! check the world, read the manifest, pass the canary.
//!
//! Contract: `prepare` either returns a `Prepared` plugin that matches the world, answered
//! `manifest()`, and reproduced every golden case (its own and the operator's) under the
//! production limits, or a `Rejection` an operator can act on, with a short `kind` for metrics.
//! It never touches the serving generation. The slow parts run on the blocking pool, off the
//! async executor: compilation without an instance permit, then the world check, `manifest()`
//! and the canary holding one (they instantiate the plugin one call at a time), so a swap never
//! exhausts the instance pool deliveries use; deliveries go on meanwhile. Start-up and every
//! swap use this same path.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmtime::component::Component;

use super::cache::{CompileCache, Compiled};
use super::canary::{self, CanaryError, CanaryReport};
use super::loaded::{LoadError, Plugin, check_is_component, sha256_hex};
use super::runtime::Runtime;

/// Why a plugin was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Canary(#[from] CanaryError),
    #[error("loading the plugin failed inside the host: {0}")]
    Internal(String),
}

impl Rejection {
    /// The reason as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Unreadable(_) => "unreadable",
            Rejection::Load(LoadError::NotAComponent(_)) => "not-a-component",
            Rejection::Load(LoadError::WorldMismatch(_)) => "world-mismatch",
            Rejection::Load(LoadError::Manifest(_)) => "manifest-failed",
            Rejection::Load(LoadError::BadManifest(_)) => "bad-manifest",
            Rejection::Load(LoadError::Effects(_)) => "effects-failed",
            Rejection::Load(LoadError::Refused(_)) => "manifest-refused",
            Rejection::Canary(e) => e.kind(),
            Rejection::Internal(_) => "internal",
        }
    }
}

/// A checked plugin, not serving yet.
pub struct Prepared {
    pub plugin: Plugin,
    pub compiled: Compiled,
    pub canary: CanaryReport,
    /// Wall-clock time of compile (or cache load), check and canary.
    pub took: Duration,
}

#[derive(Clone)]
pub struct Preparer {
    runtime: Runtime,
    cache: Option<CompileCache>,
    canary_file: Option<PathBuf>,
}

impl Preparer {
    pub fn new(
        runtime: Runtime,
        cache: Option<CompileCache>,
        canary_file: Option<PathBuf>,
    ) -> Preparer {
        Preparer {
            runtime,
            cache,
            canary_file,
        }
    }

    pub async fn prepare(&self, bytes: Vec<u8>) -> Result<Prepared, Rejection> {
        let started = Instant::now();
        // The operator's cases are read for every load, so they can change with the plugin.
        let operator_cases = match &self.canary_file {
            Some(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || canary::read_file(&path))
                    .await
                    .map_err(|e| Rejection::Internal(e.to_string()))??
            }
            None => Vec::new(),
        };
        let (runtime, cache) = (self.runtime.clone(), self.cache.clone());
        let (component, compiled, sha256) = blocking(move || {
            check_is_component(&bytes)?;
            let sha256 = sha256_hex(&bytes);
            let compiled = match &cache {
                Some(cache) => cache.load_or_compile(runtime.engine(), &bytes, &sha256),
                None => Component::new(runtime.engine(), &bytes)
                    .map(|c| (c, Compiled::Fresh { stored: false })),
            };
            let (component, compiled) = compiled.map_err(|e| {
                let e = format!("{e:#}");
                let hint = if e.contains("out of bounds") || e.contains("unexpected end") {
                    " (is the file truncated, or was it read while still being written?)"
                } else {
                    ""
                };
                LoadError::NotAComponent(format!("the plugin does not compile: {e}{hint}"))
            })?;
            Ok((component, compiled, sha256))
        })
        .await?;
        // Instances from here on: one at a time, inside the pool deliveries use. The permit
        // moves into the blocking task, so it is held as long as the instances run even if the
        // swap request that started this is cancelled.
        let permit = self.runtime.instance_permit().await;
        let runtime = self.runtime.clone();
        let allow_empty = self.runtime.limits().allow_empty_canary;
        let (plugin, canary) = blocking(move || {
            let _permit = permit;
            let plugin = Plugin::from_component(&runtime, component, sha256)?;
            let report = canary::run(&plugin, &operator_cases, allow_empty)?;
            Ok((plugin, report))
        })
        .await?;
        Ok(Prepared {
            plugin,
            compiled,
            canary,
            took: started.elapsed(),
        })
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Rejection> + Send + 'static,
) -> Result<T, Rejection> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Rejection::Internal(e.to_string()))?
}
