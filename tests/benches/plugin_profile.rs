//! A fixed loop of one plugin call, for profilers (`valgrind --tool=callgrind`, `perf`) and for
//! counting what one call costs in time and page faults; the criterion bench (benches/plugin_call)
//! is the number to quote, this is the thing to look inside.
//!
//! Usage: `cargo bench -p task-events-tests --bench plugin_profile -- <call> [iterations]`, or
//! the built binary (target/release/deps/plugin_profile-*) under a profiler; `<call>` one of `handle`, `validate`, `migrate`,
//! `occurrences`, `instantiate`, `native-handle`. Prints mean wall time and minor page faults
//! per call of this thread (from /proc/thread-self/stat), after a warm-up of 200 calls.
//! `PLUGIN_PROFILE_WASM=<file>` runs another build of the task plugin instead of the bundled one.

use std::hint::black_box;
use std::time::Instant;

use task_events_host::config::Limits;
use task_events_host::plugin::bindings::Delivery;
use task_events_host::plugin::{Plugin, Runtime};

fn main() {
    // `cargo bench` passes `--bench`; it means nothing here.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let what = args.next().unwrap_or_else(|| "handle".into());
    let iterations: u32 = args
        .next()
        .map_or(2_000, |n| n.parse().expect("iterations"));

    let runtime = Runtime::new(Limits::default()).expect("wasm runtime");
    let plugin = load(&runtime);
    let data = task_events_tests::events::daily_completion(1).to_string();
    let delivery = Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "profile".into(),
        data: data.clone(),
        attempt: 1,
    };
    let native = task_plugin::model::Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "profile".into(),
        data: data.clone(),
        attempt: 1,
    };

    let call = |_: u32| match what.as_str() {
        "handle" => drop(black_box(plugin.handle(&delivery).unwrap())),
        "native-handle" => drop(black_box(task_plugin::plugin::handle(&native))),
        "validate" => drop(black_box(
            plugin
                .call(|p, s| p.task_events_plugin_schema().call_validate(s, &data))
                .unwrap(),
        )),
        "migrate" => drop(black_box(
            plugin
                .call(|p, s| p.task_events_plugin_schema().call_migrate(s, &data, "2.0"))
                .unwrap(),
        )),
        "occurrences" => drop(black_box(
            plugin
                .call(|p, s| {
                    p.task_events_plugin_recurrence().call_occurrences_after(
                        s,
                        "FREQ=MONTHLY;BYDAY=-1FR",
                        "2025-01-31T09:00:00",
                        Some("Europe/London"),
                        "2025-06-01T00:00:00",
                        1,
                    )
                })
                .unwrap(),
        )),
        "instantiate" => plugin.call(|_, _| Ok(())).unwrap(),
        other => panic!("unknown call {other}"),
    };

    (0..200).for_each(call);
    let before = thread_stat();
    let start = Instant::now();
    measured(iterations, call);
    let elapsed = start.elapsed();
    let after = thread_stat();
    let per_call = |a: u64, b: u64| (b - a) as f64 / f64::from(iterations);
    // Clock ticks are 10 ms: user/sys split is only meaningful over a second or more of calls.
    println!(
        "{what}: {:.2} µs/call wall, {:.1} µs user + {:.1} µs sys, {:.1} minor faults/call ({iterations} calls)",
        elapsed.as_secs_f64() * 1e6 / f64::from(iterations),
        per_call(before.utime, after.utime) * 1e4,
        per_call(before.stime, after.stime) * 1e4,
        per_call(before.minflt, after.minflt),
    );
}

/// The measured loop, a function of its own so `valgrind --tool=callgrind
/// --toggle-collect='*plugin_profile::measured*'` counts only it.
#[inline(never)]
fn measured(iterations: u32, call: impl FnMut(u32)) {
    (0..iterations).for_each(call);
}

/// The task plugin (or the build at `PLUGIN_PROFILE_WASM`, for a before/after in one run),
/// compiled once into a file under the system temp dir when `PLUGIN_PROFILE_CACHE=1` (so
/// valgrind runs do not spend their time in Cranelift).
fn load(runtime: &Runtime) -> Plugin {
    let other = std::env::var_os("PLUGIN_PROFILE_WASM")
        .map(|path| std::fs::read(path).expect("reading PLUGIN_PROFILE_WASM"));
    let bytes = other
        .as_deref()
        .unwrap_or(task_events_tests::plugins::task_plugin_bytes());
    if std::env::var_os("PLUGIN_PROFILE_CACHE").is_none() {
        return Plugin::load(runtime, bytes).expect("task plugin");
    }
    let sha = task_events_host::plugin::loaded::sha256_hex(bytes);
    let path = std::env::temp_dir().join(format!("plugin-profile-{}.cwasm", &sha[..16]));
    if !path.exists() {
        let component = wasmtime::component::Component::new(runtime.engine(), bytes).unwrap();
        std::fs::write(&path, component.serialize().unwrap()).unwrap();
    }
    // SAFETY: the file was written by this program's own engine configuration just above (or by
    // an earlier run of it); a profiling tool, never run on untrusted files.
    let component =
        unsafe { wasmtime::component::Component::deserialize_file(runtime.engine(), &path) }
            .expect("cached component");
    Plugin::from_component(runtime, component, sha).expect("task plugin")
}

struct ThreadStat {
    minflt: u64,
    utime: u64,
    stime: u64,
}

/// Minor faults and user/system clock ticks of this thread (fields 10, 14, 15 of
/// /proc/thread-self/stat).
fn thread_stat() -> ThreadStat {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; fields after it start past its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    ThreadStat {
        minflt: field(10),
        utime: field(14),
        stime: field(15),
    }
}
