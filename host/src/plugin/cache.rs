//! Compiled plugins on disk, so restarts and re-swaps skip compilation.
//!
//! Layout: one file per plugin per engine, `<dir>/<sha256 of the .wasm>-<engine key>.cwasm`,
//! where the engine key is a digest of `Engine::precompile_compatibility_hash` (wasmtime
//! version, target, and every setting that changes code generation). A new host build or other
//! limits simply miss the cache and compile again.
//!
//! Contract: `load_or_compile` returns a component for exactly these bytes, from the cache when
//! an entry exists and deserializes, compiled (and then stored) otherwise. The cache never fails
//! a load: an unreadable, corrupt or stale entry is removed and the plugin compiled; a failure to
//! store is logged and the plugin served anyway. Files are written to a temporary name in the
//! same directory, synced, then renamed into place, so a reader never sees a partial file and
//! an existing file is never modified in place (a deserialized component may map it). At most
//! `KEEP` entries are kept; the oldest are removed after each store (removing a mapped file is
//! safe on Unix: the mapping keeps the inode alive).
//!
//! Trust (see `cache_trust` for the key): an entry is `MAGIC`, an HMAC-SHA256 tag over its
//! name and code, then the code wasmtime serialized. `Component::deserialize` (which is `unsafe`:
//! the bytes run as native code) is only ever called on bytes that (1) were read from a file
//! opened without following symlinks, (2) that is a regular file owned by this user and not
//! writable by group or others, and (3) whose tag verifies under the key, for this very name (so
//! a genuine entry of another plugin renamed to this one is refused too). The bytes are read into
//! memory and deserialized from there, so the file cannot change between the check and the use
//! (`deserialize_file` would map it). An entry that fails any check is logged, deleted (a symlink
//! is removed, not its target) and the plugin compiled again. The directory is created by the
//! host and restricted to its user (mode 0700); if it cannot be, the cache is disabled. Entries
//! from another wasmtime version or configuration are refused by wasmtime's own header check, and
//! then recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt as _;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache_trust::{CacheKey, Distrust, KeyError, KeyOrigin, open_checked};

/// Cache entries kept; older ones are removed.
const KEEP: usize = 16;
/// First bytes of every entry (format version 2: tagged).
const MAGIC: &[u8; 8] = b"TEVC\x02\0\0\0";
const TAG: usize = 32;
/// Largest entry read; a compiled plugin is a few MiB.
const MAX_ENTRY: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "cannot use {dir} as the compile cache: {source} (set --cache-dir to a directory this user owns)"
    )]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Key(#[from] KeyError),
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    FromCache,
    /// Compiled now; `stored` says whether the result was written to the cache.
    Fresh {
        stored: bool,
    },
}

impl Compiled {
    pub fn as_str(self) -> &'static str {
        match self {
            Compiled::FromCache => "hit",
            Compiled::Fresh { .. } => "miss",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    key: CacheKey,
}

impl CompileCache {
    /// Creates (or adopts) `dir`, restricted to this user, with entries authenticated by the key
    /// in `key_file` (`--cache-key-file`), or by a per-process key without one.
    pub fn open(
        dir: &Path,
        key_file: Option<&Path>,
        engine: &Engine,
    ) -> Result<CompileCache, CacheError> {
        let key = match key_file {
            Some(path) => CacheKey::from_file(path, dir)?,
            None => CacheKey::per_process(),
        };
        Self::with_key(dir, key, engine)
    }

    pub fn with_key(
        dir: &Path,
        key: CacheKey,
        engine: &Engine,
    ) -> Result<CompileCache, CacheError> {
        let error = |source| CacheError::Directory {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
        }
        if key.origin == KeyOrigin::PerProcess {
            tracing::info!(
                dir = %dir.display(),
                "compile cache entries are authenticated with a per-process key; set --cache-key-file to keep them across restarts"
            );
        }
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for a plugin whose .wasm has this sha256 (hex).
    fn entry(&self, sha256: &str) -> PathBuf {
        assert!(
            sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a sha256: {sha256:?}"
        );
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// Whether an entry for `sha256` exists (it may still be refused).
    pub fn contains(&self, sha256: &str) -> bool {
        std::fs::symlink_metadata(self.entry(sha256)).is_ok()
    }

    /// The verified code of `entry`, `Ok(None)` when there is none, or why it is not trusted.
    fn read_trusted(&self, entry: &Path) -> Result<Option<Vec<u8>>, Distrust> {
        let (file, meta) = match open_checked(entry, 0o022) {
            Err(Distrust::Io(_)) if std::fs::symlink_metadata(entry).is_err() => return Ok(None),
            other => other?,
        };
        if meta.len() > MAX_ENTRY {
            return Err(Distrust::TooLarge {
                bytes: meta.len(),
                limit: MAX_ENTRY,
            });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        use std::io::Read as _;
        file.take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .map_err(|e| Distrust::Io(e.to_string()))?;
        if bytes.len() < MAGIC.len() + TAG || &bytes[..MAGIC.len()] != MAGIC {
            return Err(Distrust::Format);
        }
        let (tag, code) = bytes[MAGIC.len()..].split_at(TAG);
        if !self.key.verify(&entry_name(entry), code, tag) {
            return Err(Distrust::Tag);
        }
        bytes.drain(..MAGIC.len() + TAG);
        Ok(Some(bytes))
    }

    /// The component for `bytes` (whose sha256 is `sha256`): cached, or compiled and stored.
    /// Compiling is slow: call this off the async executor.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, Compiled)> {
        let entry = self.entry(sha256);
        match self.read_trusted(&entry) {
            Ok(None) => {}
            Ok(Some(code)) => {
                // SAFETY: see the module doc: these exact bytes were read from a file of ours and
                // their tag verified under our key for this entry's name, so the host wrote them.
                match unsafe { Component::deserialize(engine, &code) } {
                    Ok(component) => return Ok((component, Compiled::FromCache)),
                    Err(e) => {
                        tracing::warn!(file = %entry.display(), "discarding an unusable compile-cache entry: {e:#}");
                        let _ = std::fs::remove_file(&entry);
                    }
                }
            }
            Err(why) => {
                tracing::warn!(file = %entry.display(), "compile-cache entry not trusted: {why}; deleting it and compiling the plugin");
                let _ = std::fs::remove_file(&entry);
            }
        }
        let component = Component::new(engine, bytes)?;
        let stored = match component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|code| self.store(&entry, &code))
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "could not store the compiled plugin in the cache: {e}");
                false
            }
        };
        Ok((component, Compiled::Fresh { stored }))
    }

    fn store(&self, entry: &Path, code: &[u8]) -> Result<(), String> {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("entry");
        let temp = self
            .dir
            .join(format!(".tmp-{}-{name}", uuid::Uuid::new_v4().simple()));
        let tag = self.key.tag(name, code);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&tag)?;
            file.write_all(code)?;
            file.sync_all()?;
            std::fs::rename(&temp, entry)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&temp);
            return Err(e.to_string());
        }
        self.prune();
        Ok(())
    }

    /// Removes all but the `KEEP` newest entries, and temporary files a crashed write left.
    fn prune(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries = Vec::new();
        for item in dir.filter_map(Result::ok) {
            let (Ok(name), Some(modified)) = (
                item.file_name().into_string(),
                item.metadata().ok().and_then(|m| m.modified().ok()),
            ) else {
                continue;
            };
            if name.starts_with(".tmp-") {
                // A live writer renames its file within moments; an hour-old one is debris.
                if modified.elapsed().is_ok_and(|age| age.as_secs() > 3600) {
                    let _ = std::fs::remove_file(item.path());
                }
            } else if name.ends_with(".cwasm") {
                entries.push((modified, item.path()));
            }
        }
        entries.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in entries.into_iter().skip(KEEP) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The file name of an entry: what its tag covers besides the code.
fn entry_name(entry: &Path) -> String {
    entry
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A short, stable digest of the engine's compatibility hash.
fn engine_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
