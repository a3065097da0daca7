//! The compile cache: hits, misses, pruning, and every forgery a writer of the cache directory
//! could plant, none of which is ever deserialized.

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
    let cache = CompileCache::open(&dir.path().join("cache"), None, &engine).unwrap();
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
    let cache = CompileCache::open(dir.path(), None, &engine).unwrap();
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
    let cache_a = CompileCache::open(dir.path(), None, &a).unwrap();
    cache_a.load_or_compile(&a, &bytes, &sha).unwrap();
    let cache_b = CompileCache::open(dir.path(), None, &b).unwrap();
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
    let cache = CompileCache::open(dir.path(), None, &engine).unwrap();
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

/// A component importing one function called `name`: two of them are told apart by their
/// imports, so a test sees which bytes were deserialized.
fn named(name: &str) -> Vec<u8> {
    format!("(component (import \"{name}\" (func)))").into_bytes()
}

fn imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn forged_entries_are_deleted_and_never_deserialized() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let cache = CompileCache::open(&dir.path().join("cache"), None, &engine).unwrap();
    let (victim, other) = (named("victim"), named("forged"));
    let (victim_sha, other_sha) = (sha256_hex(&victim), sha256_hex(&other));
    let entry = cache.entry(&victim_sha);

    // What a forger can get hold of: the raw code wasmtime serializes, an entry tagged with
    // another key, a genuine entry of another plugin, and this plugin's genuine entry.
    let raw = Component::new(&engine, &other)
        .unwrap()
        .serialize()
        .unwrap();
    let elsewhere = CompileCache::open(&dir.path().join("other"), None, &engine).unwrap();
    elsewhere
        .load_or_compile(&engine, &other, &other_sha)
        .unwrap();
    let other_key = std::fs::read(elsewhere.entry(&other_sha)).unwrap();
    cache.load_or_compile(&engine, &other, &other_sha).unwrap();
    let other_genuine = std::fs::read(cache.entry(&other_sha)).unwrap();
    cache
        .load_or_compile(&engine, &victim, &victim_sha)
        .unwrap();
    let victim_genuine = std::fs::read(&entry).unwrap();
    let copy = dir.path().join("copy.cwasm");
    std::fs::write(&copy, &victim_genuine).unwrap();

    type Forgery<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let plant: [Forgery; 5] = [
        (
            "raw serialized code",
            Box::new(|| std::fs::write(&entry, &raw).unwrap()),
        ),
        (
            "tagged with another key",
            Box::new(|| std::fs::write(&entry, &other_key).unwrap()),
        ),
        (
            "another plugin's genuine entry, renamed",
            Box::new(|| std::fs::write(&entry, &other_genuine).unwrap()),
        ),
        (
            "a symlink to a genuine entry",
            Box::new(|| std::os::unix::fs::symlink(&copy, &entry).unwrap()),
        ),
        (
            "a genuine entry others can write",
            Box::new(|| {
                std::fs::write(&entry, &victim_genuine).unwrap();
                let mode = std::fs::Permissions::from_mode(0o666);
                std::fs::set_permissions(&entry, mode).unwrap();
            }),
        ),
    ];
    for (what, plant) in plant {
        std::fs::remove_file(&entry).unwrap();
        plant();
        let (component, how) = cache
            .load_or_compile(&engine, &victim, &victim_sha)
            .unwrap();
        assert_eq!(how, Compiled::Fresh { stored: true }, "{what}");
        assert_eq!(imports(&engine, &component), ["victim"], "{what}");
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        assert!(
            meta.is_file() && meta.permissions().mode() & 0o777 == 0o600,
            "{what}"
        );
    }
    assert!(copy.exists(), "a symlink is removed, not its target");
    // The entry the host wrote itself is used.
    let (component, how) = cache
        .load_or_compile(&engine, &victim, &victim_sha)
        .unwrap();
    assert_eq!(
        (how, imports(&engine, &component)),
        (Compiled::FromCache, vec!["victim".to_string()])
    );
}

#[test]
fn entries_survive_a_restart_only_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let bytes = named("x");
    let sha = sha256_hex(&bytes);
    let key = CacheKey::per_process();
    let first = CompileCache::with_key(dir.path(), key.clone(), &engine).unwrap();
    first.load_or_compile(&engine, &bytes, &sha).unwrap();
    let again = CompileCache::with_key(dir.path(), key, &engine).unwrap();
    assert_eq!(
        again.load_or_compile(&engine, &bytes, &sha).unwrap().1,
        Compiled::FromCache
    );
    let other = CompileCache::open(dir.path(), None, &engine).unwrap();
    assert_eq!(
        other.load_or_compile(&engine, &bytes, &sha).unwrap().1,
        Compiled::Fresh { stored: true }
    );
}

/// `Component::new` accepts the text format (the `wat` feature); the cache keys on whatever
/// bytes it is given.
fn wat_bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}
