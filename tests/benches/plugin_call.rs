//! What one delivery costs in the plugin: the task logic natively vs the same logic as a wasm
//! component on a fresh instance (pooling allocator, InstancePre), and instantiation alone.
//! Every wasm figure has its native baseline in the same group: handle, validate, migrate,
//! occurrences-after. `plugin_profile` is the same calls in a plain loop, for profilers.
//!
//! Run: `cargo bench -p task-events-tests --bench plugin_call`. Compare ratios within one run;
//! the machine is shared and absolute numbers drift.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use task_events_host::config::Limits;
use task_events_host::plugin::bindings::Delivery;
use task_events_host::plugin::{Plugin, Runtime};

fn delivery_data() -> String {
    task_events_tests::events::daily_completion(1).to_string()
}

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new(Limits::default()).expect("wasm runtime");
    let plugin = Plugin::load(&runtime, task_events_tests::plugins::task_plugin_bytes())
        .expect("task plugin");
    let data = delivery_data();
    let wasm_delivery = Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "bench".into(),
        data: data.clone(),
        attempt: 1,
    };
    let native_delivery = task_plugin::model::Delivery {
        id: "ce-1".into(),
        pubsub: "kafka-pubsub".into(),
        topic: "task-events".into(),
        kind: "com.dapr.event.sent".into(),
        source: "bench".into(),
        data,
        attempt: 1,
    };

    let mut group = c.benchmark_group("daily completion -> next task");
    group.bench_function("native", |b| {
        b.iter(|| black_box(task_plugin::plugin::handle(black_box(&native_delivery))))
    });
    group.bench_function("wasm, fresh instance", |b| {
        b.iter(|| black_box(plugin.handle(black_box(&wasm_delivery)).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("next occurrence of FREQ=MONTHLY;BYDAY=-1FR");
    let args = (
        "FREQ=MONTHLY;BYDAY=-1FR",
        "2025-01-31T09:00:00",
        Some("Europe/London"),
        "2025-06-01T00:00:00",
        1u32,
    );
    group.bench_function("native", |b| {
        b.iter(|| {
            black_box(task_plugin::recurrence::occurrences_after(
                args.0, args.1, args.2, args.3, args.4,
            ))
        })
    });
    group.bench_function("wasm, fresh instance", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .call(|p, s| {
                        p.task_events_plugin_recurrence()
                            .call_occurrences_after(s, args.0, args.1, args.2, args.3, args.4)
                    })
                    .unwrap(),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("validate a 1.0 task.completed");
    let event = delivery_data();
    group.bench_function("native", |b| {
        b.iter(|| black_box(task_plugin::schema::validate(black_box(&event))))
    });
    group.bench_function("wasm, fresh instance", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .call(|p, s| p.task_events_plugin_schema().call_validate(s, &event))
                    .unwrap(),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("migrate a 1.0 task.completed to 2.0");
    group.bench_function("native", |b| {
        b.iter(|| black_box(task_plugin::migrate::migrate(black_box(&event), "2.0")))
    });
    group.bench_function("wasm, fresh instance", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .call(|p, s| p.task_events_plugin_schema().call_migrate(s, &event, "2.0"))
                    .unwrap(),
            )
        })
    });
    group.finish();

    c.bench_function("wasm instantiation alone", |b| {
        b.iter(|| plugin.call(|_, _| Ok(())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
