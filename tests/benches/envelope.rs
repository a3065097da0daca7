//! What decoding a delivery body costs the host, with the decoding it replaced beside it in the
//! same run: the app route's `envelope::parse_delivery` (through `fuzzing::decode_delivery`;
//! top-level fields as slices of the body,
//! the task event handed on as its own text; host/src/dapr/fields.rs) against building a
//! `serde_json::Value` tree of the whole body and writing each event's `data` back out (what the
//! route did before, docs/performance.md change 9).
//!
//! Run: `cargo bench -p task-events-tests --bench envelope`. Compare ratios within one run.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use task_events_host::fuzzing::decode_delivery;

/// A CloudEvent as daprd delivers it from Kafka (docs/dapr-contract.md §2).
fn cloud_event(n: u32) -> Value {
    json!({
        "specversion": "1.0", "id": format!("ce-{n}"), "source": "todo-app",
        "type": "com.dapr.event.sent", "datacontenttype": "application/json",
        "pubsubname": "kafka-pubsub", "topic": "task-events",
        "traceid": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "", "time": "2025-12-29T10:00:01Z",
        "data": task_events_tests::events::daily_completion(n),
    })
}

fn batch(entries: u32) -> Vec<u8> {
    let entries: Vec<Value> = (0..entries)
        .map(|n| {
            json!({"entryId": n.to_string(), "event": cloud_event(n),
                "contentType": "application/cloudevents+json", "metadata": {}})
        })
        .collect();
    serde_json::to_vec(
        &json!({"id": "b1", "topic": "task-events", "pubsubname": "kafka-pubsub",
        "type": "com.dapr.event.sent.bulk", "entries": entries, "metadata": {}}),
    )
    .unwrap()
}

/// The attributes the pipeline needs from one parsed event, as the tree decoding took them.
fn from_tree(event: &Value) -> (String, String, String, Option<String>, String) {
    let text = |k: &str| event[k].as_str().unwrap_or_default().to_string();
    let trace = event["traceparent"].as_str().map(str::to_string);
    let data = event["data"].to_string();
    (text("id"), text("type"), text("source"), trace, data)
}

fn bench(c: &mut Criterion) {
    let single = serde_json::to_vec(&cloud_event(1)).unwrap();
    let mut group = c.benchmark_group("one CloudEvent");
    group.bench_function("fields (host)", |b| {
        b.iter(|| decode_delivery(black_box(&single)))
    });
    group.bench_function("value tree (before)", |b| {
        b.iter(|| from_tree(&serde_json::from_slice::<Value>(black_box(&single)).unwrap()))
    });
    group.finish();

    let body = batch(100);
    let mut group = c.benchmark_group("bulk batch of 100");
    group.bench_function("fields (host)", |b| {
        b.iter(|| decode_delivery(black_box(&body)))
    });
    group.bench_function("value tree (before)", |b| {
        b.iter(|| {
            let tree: Value = serde_json::from_slice(black_box(&body)).unwrap();
            tree["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| from_tree(&e["event"]))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
