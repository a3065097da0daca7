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
//! Trust argument for `Component::deserialize_file` (which is `unsafe`: the bytes are only
//! lightly checked and run as native code): it is called only on a path this module builds from
//! its own directory and a name it derived itself (a 64-hex-digit sha256 and the engine key),
//! never on a path or bytes from a request, the watched file, or the plugin. The directory is
//! created by the host and restricted to its user (mode 0700); if it cannot be (for example it
//! belongs to another user), the cache is disabled rather than trusted. So a cache file is as
//! trustworthy as the host's own writable state: anyone who can write it can already write the
//! data directory and the host's other inputs. Entries from another wasmtime version or
//! configuration are rejected by wasmtime's own header check, and then recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Cache entries kept; older ones are removed.
const KEEP: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "cannot use {dir} as the compile cache: {source} (set --cache-dir to a directory this user owns)"
    )]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
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
}

impl CompileCache {
    /// Creates (or adopts) `dir`, restricted to this user.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, CacheError> {
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
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
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

    /// Whether an entry for `sha256` exists (it may still fail to deserialize).
    pub fn contains(&self, sha256: &str) -> bool {
        self.entry(sha256).is_file()
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
        if entry.is_file() {
            // SAFETY: see the module doc: `entry` is our own file, in our own directory, named by
            // us, written whole by `store` (temp file + rename) and never modified in place.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => return Ok((component, Compiled::FromCache)),
                Err(e) => {
                    tracing::warn!(file = %entry.display(), "discarding an unusable compile-cache entry: {e:#}");
                    let _ = std::fs::remove_file(&entry);
                }
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
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
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
mod tests {
    use super::*;
    use crate::plugin::loaded::sha256_hex;

    fn engine() -> Engine {
        Engine::default()
    }

    /// A tiny valid component (the host has the `wat` feature).
    const COMPONENT: &str = "(component (core module (func (export \"f\"))))";

    #[test]
    fn a_second_load_comes_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(&dir.path().join("cache"), &engine).unwrap();
        let bytes = wat_bytes(COMPONENT);
        let sha = sha256_hex(&bytes);
        let (_, first) = cache.load_or_compile(&engine, &bytes, &sha).unwrap();
        assert_eq!(first, Compiled::Fresh { stored: true });
        assert!(cache.contains(&sha));
        let (_, second) = cache.load_or_compile(&engine, &bytes, &sha).unwrap();
        assert_eq!(second, Compiled::FromCache);
        let names: Vec<String> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            1,
            "no temporary file is left behind: {names:?}"
        );
        assert!(names[0].starts_with(&sha) && names[0].ends_with(".cwasm"));
    }

    #[test]
    fn a_corrupt_entry_is_replaced_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        let bytes = wat_bytes(COMPONENT);
        let sha = sha256_hex(&bytes);
        std::fs::write(cache.entry(&sha), b"not compiled code").unwrap();
        let (_, how) = cache.load_or_compile(&engine, &bytes, &sha).unwrap();
        assert_eq!(how, Compiled::Fresh { stored: true });
        assert_eq!(
            cache.load_or_compile(&engine, &bytes, &sha).unwrap().1,
            Compiled::FromCache
        );
    }

    #[test]
    fn another_engine_configuration_misses() {
        let dir = tempfile::tempdir().unwrap();
        let a = engine();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let b = Engine::new(&config).unwrap();
        let bytes = wat_bytes(COMPONENT);
        let sha = sha256_hex(&bytes);
        let cache_a = CompileCache::open(dir.path(), &a).unwrap();
        cache_a.load_or_compile(&a, &bytes, &sha).unwrap();
        let cache_b = CompileCache::open(dir.path(), &b).unwrap();
        assert!(!cache_b.contains(&sha));
        assert_eq!(
            cache_b.load_or_compile(&b, &bytes, &sha).unwrap().1,
            Compiled::Fresh { stored: true }
        );
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        for n in 0..KEEP + 3 {
            let bytes = wat_bytes(&format!(
                "(component (core module (func (export \"f{n}\"))))"
            ));
            cache
                .load_or_compile(&engine, &bytes, &sha256_hex(&bytes))
                .unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), KEEP);
    }

    /// `Component::new` accepts the text format (the `wat` feature); the cache keys on whatever
    /// bytes it is given.
    fn wat_bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }
}
