//! What the compile cache trusts: a secret key that is not in the data directory, and files it
//! opened itself, without following symlinks, owned by this user and writable by no one else.
//!
//! Why a key: a cache entry is native code the host runs (`Component::deserialize` is `unsafe`),
//! and its name is predictable (the plugin's sha256 is on `/metrics` and `/admin/plugin`, and a plugin file's sha256 is easy to compute). File
//! ownership alone does not make an entry the host's: on a shared volume another container may
//! run as the same uid, a restore from backup may carry old files, a symlink may point anywhere.
//! So each entry carries an HMAC-SHA256 over its name (plugin sha256 + engine key) and its code,
//! keyed by a secret that lives elsewhere; an entry without a valid tag is never deserialized.
//!
//! Where the key comes from, and what an operator gets:
//! - `--cache-key-file`: a file of at least 32 bytes (e.g. `head -c 32 /dev/urandom`), a regular
//!   file owned by this user and not readable or writable by group or others, outside the
//!   directory that holds the cache (by default the data directory). A Kubernetes secret mounted
//!   with `defaultMode: 0400` fits. Entries then survive restarts: warm start-up. Whoever can
//!   write the shared data volume but cannot read the key can only make the host recompile.
//! - no key file: a random key per process. The cache still helps within one run (swapping
//!   back to a version compiled before, re-swaps), but every restart recompiles, and entries a
//!   previous process left are deleted as untrusted. Safe by default, fast when configured.
//!   (The host binary's own identity would not do as a key: anyone who can read the binary can
//!   compute it.)
//!
//! A key file that fails its checks disables the cache (the caller logs why); it never weakens
//! the checks.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::Sha256;

/// Shortest key file accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// Largest key file read.
const MAX_KEY_BYTES: u64 = 4096;
/// Domain separation: a tag for this purpose cannot be confused with any other use of the key.
const DOMAIN: &[u8] = b"task-events compile cache v2\0";

/// Why a cache file (entry or key) is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it belongs to uid {owner}, not to this process's uid {euid}")]
    Owner { owner: u32, euid: u32 },
    #[error("its mode {mode:o} lets group or others {what} it")]
    Mode { mode: u32, what: &'static str },
    #[error("it is {bytes} bytes, more than the {limit} expected")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("it is not a compile-cache entry of this host (bad header)")]
    Format,
    #[error("its authentication tag does not match (not written by this host with this key)")]
    Tag,
    #[error("it cannot be read: {0}")]
    Io(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the cache key file {path} is not trusted: {why} (it must be a regular file of this user, mode 0600 or 0400)"
    )]
    Untrusted { path: PathBuf, why: Distrust },
    #[error(
        "the cache key file {path} has {bytes} bytes; it needs at least {MIN_KEY_BYTES} random bytes (e.g. head -c 32 /dev/urandom)"
    )]
    TooShort { path: PathBuf, bytes: usize },
    #[error(
        "the cache key file {path} is inside {dir}, next to the cache it protects; keep it outside the data directory"
    )]
    Inside { path: PathBuf, dir: PathBuf },
}

/// Which key tags the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    File(PathBuf),
    PerProcess,
}

#[derive(Clone)]
pub struct CacheKey {
    key: Vec<u8>,
    pub origin: KeyOrigin,
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({:?})", self.origin)
    }
}

impl CacheKey {
    /// Reads and checks `--cache-key-file`; `cache_dir`'s parent (the data directory by default)
    /// must not contain it.
    pub fn from_file(path: &Path, cache_dir: &Path) -> Result<CacheKey, KeyError> {
        let untrusted = |why| KeyError::Untrusted {
            path: path.to_path_buf(),
            why,
        };
        let near = cache_dir.parent().unwrap_or(cache_dir);
        if let (Ok(key), Ok(dir)) = (path.canonicalize(), near.canonicalize())
            && key.starts_with(&dir)
        {
            return Err(KeyError::Inside {
                path: path.to_path_buf(),
                dir,
            });
        }
        let (file, _) = open_checked(path, 0o077).map_err(untrusted)?;
        let mut key = Vec::new();
        file.take(MAX_KEY_BYTES)
            .read_to_end(&mut key)
            .map_err(|e| untrusted(Distrust::Io(e.to_string())))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                path: path.to_path_buf(),
                bytes: key.len(),
            });
        }
        Ok(CacheKey {
            key,
            origin: KeyOrigin::File(path.to_path_buf()),
        })
    }

    /// A random key for this process only.
    pub fn per_process() -> CacheKey {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        CacheKey {
            key,
            origin: KeyOrigin::PerProcess,
        }
    }

    fn mac(&self, name: &str, code: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(DOMAIN);
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(code);
        mac
    }

    /// The tag of an entry named `name` holding `code`.
    pub fn tag(&self, name: &str, code: &[u8]) -> [u8; 32] {
        self.mac(name, code).finalize().into_bytes().into()
    }

    /// Whether `tag` is this key's tag for (`name`, `code`), compared in constant time.
    pub fn verify(&self, name: &str, code: &[u8], tag: &[u8]) -> bool {
        self.mac(name, code).verify_slice(tag).is_ok()
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Opens `path` for reading without following a symlink in its last component, and without
/// blocking on a FIFO, then checks what was opened (not what the path names now): a regular
/// file of this user, with none of the `forbidden` mode bits.
pub fn open_checked(path: &Path, forbidden: u32) -> Result<(File, Metadata), Distrust> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Distrust::Symlink,
            _ => Distrust::Io(e.to_string()),
        })?;
    let meta = file.metadata().map_err(|e| Distrust::Io(e.to_string()))?;
    check_metadata(&meta, euid(), forbidden)?;
    Ok((file, meta))
}

/// The ownership and mode rules on an opened file's metadata.
pub fn check_metadata(meta: &Metadata, euid: u32, forbidden: u32) -> Result<(), Distrust> {
    check_owner_mode(
        meta.file_type().is_file(),
        meta.uid(),
        meta.mode(),
        euid,
        forbidden,
    )
}

/// `check_metadata` on plain values (so every branch is testable without root).
pub fn check_owner_mode(
    is_file: bool,
    owner: u32,
    mode: u32,
    euid: u32,
    forbidden: u32,
) -> Result<(), Distrust> {
    if !is_file {
        return Err(Distrust::NotAFile);
    }
    if owner != euid {
        return Err(Distrust::Owner { owner, euid });
    }
    if mode & forbidden != 0 {
        let what = if forbidden & 0o044 != 0 {
            "read or write"
        } else {
            "write"
        };
        return Err(Distrust::Mode {
            mode: mode & 0o7777,
            what,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn write(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn ownership_and_mode_rules() {
        assert_eq!(check_owner_mode(true, 7, 0o600, 7, 0o077), Ok(()));
        assert_eq!(check_owner_mode(true, 7, 0o644, 7, 0o022), Ok(()));
        assert_eq!(
            check_owner_mode(true, 0, 0o600, 7, 0o022),
            Err(Distrust::Owner { owner: 0, euid: 7 })
        );
        assert!(matches!(
            check_owner_mode(true, 7, 0o664, 7, 0o022),
            Err(Distrust::Mode { mode: 0o664, .. })
        ));
        assert!(matches!(
            check_owner_mode(true, 7, 0o640, 7, 0o077),
            Err(Distrust::Mode { .. })
        ));
        assert_eq!(
            check_owner_mode(false, 7, 0o600, 7, 0o022),
            Err(Distrust::NotAFile)
        );
    }

    #[test]
    fn a_key_file_must_be_private_long_enough_and_away_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::create_dir_all(data.join("cache")).unwrap();
        let cache = data.join("cache");
        let key = secrets.join("cache.key");

        write(&key, &[7; 32], 0o600);
        let good = CacheKey::from_file(&key, &cache).unwrap();
        assert_eq!(good.origin, KeyOrigin::File(key.clone()));

        write(&key, &[7; 32], 0o644);
        assert!(matches!(
            CacheKey::from_file(&key, &cache),
            Err(KeyError::Untrusted {
                why: Distrust::Mode { .. },
                ..
            })
        ));
        write(&key, &[7; 31], 0o400);
        assert!(matches!(
            CacheKey::from_file(&key, &cache),
            Err(KeyError::TooShort { bytes: 31, .. })
        ));
        let inside = data.join("cache.key");
        write(&inside, &[7; 32], 0o600);
        assert!(matches!(
            CacheKey::from_file(&inside, &cache),
            Err(KeyError::Inside { .. })
        ));
        write(&key, &[7; 32], 0o600);
        let link = secrets.join("link.key");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(matches!(
            CacheKey::from_file(&link, &cache),
            Err(KeyError::Untrusted {
                why: Distrust::Symlink,
                ..
            })
        ));
    }

    #[test]
    fn tags_bind_the_key_the_name_and_the_code() {
        let a = CacheKey::per_process();
        let b = CacheKey::per_process();
        let tag = a.tag("x.cwasm", b"code");
        assert!(a.verify("x.cwasm", b"code", &tag));
        assert!(!b.verify("x.cwasm", b"code", &tag), "another key");
        assert!(!a.verify("y.cwasm", b"code", &tag), "another name");
        assert!(!a.verify("x.cwasm", b"cod3", &tag), "other code");
        assert!(!a.verify("x.cwasm", b"code", &tag[..31]), "a cut tag");
    }
}
