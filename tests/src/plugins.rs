//! The plugin files the tests load: the real task plugin and the hostile fixture.

use std::path::{Path, PathBuf};

use task_events_host::config::Limits;
use task_events_host::plugin::bindings::{Delivery, GoldenCase};
use task_events_host::plugin::{Plugin, Runtime, canary};

/// The hostile fixture plugin (tests/plugins/hostile), built by this package's build script.
pub const HOSTILE_WASM: &str = env!("HOSTILE_PLUGIN_WASM");

/// A plugin built against task-events:plugin@1.0.0 (tests/plugins/hostile/legacy): declares no
/// topics, ships no golden cases, asks for an endless retry schedule.
pub const LEGACY_WASM: &str = env!("LEGACY_PLUGIN_WASM");

/// The task plugin's bytes, as bundled with the host.
pub fn task_plugin_bytes() -> &'static [u8] {
    task_events_host::BUNDLED_PLUGIN
}

/// Writes the task plugin into `dir` and returns its path (for `--guest`).
pub fn task_plugin_file(dir: &Path) -> PathBuf {
    let path = dir.join("task_plugin.wasm");
    std::fs::write(&path, task_plugin_bytes()).expect("writing the task plugin");
    path
}

/// The hostile fixture's bytes.
pub fn hostile_bytes() -> Vec<u8> {
    std::fs::read(HOSTILE_WASM).expect("reading the hostile plugin")
}

/// `bytes` with a custom section (id 0: name, payload) appended: still a valid component with
/// the same behaviour, but a different sha256, i.e. "another build" of the same plugin.
pub fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

/// The task plugin as build `n`: the same code with a custom section naming `n`.
pub fn task_plugin_variant(n: u32) -> Vec<u8> {
    with_custom_section(
        task_plugin_bytes(),
        "task-events-test-build",
        n.to_string().as_bytes(),
    )
}

/// Writes `bytes` to `path` the safe way: a temporary file in the same directory, renamed over.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("tmp-upload");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A canary case for the task plugin: `data` delivered to it, with the outcome the task plugin
/// gives (computed here, in-process, by the host library itself).
pub async fn task_plugin_case(name: &str, data: &str) -> String {
    let (name, data) = (name.to_string(), data.to_string());
    tokio::task::spawn_blocking(move || {
        let runtime = Runtime::new(Limits::default()).expect("a wasm runtime");
        let plugin = Plugin::load(&runtime, task_plugin_bytes()).expect("the task plugin loads");
        let delivery = Delivery {
            id: "canary-1".into(),
            pubsub: "kafka-pubsub".into(),
            topic: "task-events".into(),
            kind: "com.dapr.event.sent".into(),
            source: "operator".into(),
            data,
            attempt: 1,
        };
        let expected = plugin
            .handle(&delivery)
            .expect("the task plugin handles the case");
        canary::case_to_json(&GoldenCase {
            name,
            delivery,
            expected,
        })
        .to_string()
            + "\n"
    })
    .await
    .unwrap()
}
