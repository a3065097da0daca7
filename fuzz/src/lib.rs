//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (fuzz_targets/, nightly) and the
//! corpus replay on stable (tests/e2e/fuzz_corpus.rs includes this file as a module).
//!
//! Each target takes any bytes and panics only when the code under test breaks its contract:
//! a panic inside that code, or an output the contract rules out. Structured inputs are cut
//! from the bytes at `\n` (fields) so a corpus file stays readable text. docs/security.md
//! records how long each ran and what it found.

use serde_json::Value;
use task_events_host::config::EffectLimits;
use task_events_host::fuzzing;
use task_events_host::plugin::bindings::{Emit, Manifest, RetryPolicy, Subscription};
use task_events_host::plugin::{canary, effects};

/// The fields of `data`, cut at `\n`, lossy UTF-8.
fn fields(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == b'\n')
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn field(fields: &[String], i: usize) -> &str {
    fields.get(i).map_or("", String::as_str)
}

/// A delivery body on a subscription route: a CloudEvent or a bulk batch (host/src/dapr).
pub fn app_delivery(data: &[u8]) {
    fuzzing::app_delivery(data);
}

/// A publish to the embedded sidecar: line 1 the content type, line 2 `k=v&k=v` metadata, the
/// rest the body (host/src/embedded/envelope.rs).
pub fn embedded_publish(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let content_type = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let metadata = String::from_utf8_lossy(parts.next().unwrap_or_default())
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = parts.next().unwrap_or_default();
    fuzzing::embedded_publish(&content_type, metadata, body);
}

/// What a plugin returns across the WIT boundary, checked by the host's effect policy
/// (host/src/plugin/effects.rs). Line 1: limits (bytes: max emits, max emit bytes / 16, max
/// retry delays, whether undeclared topics are allowed); line 2: subscriptions as
/// `topic,deadletter;...`; line 3: declared topics `a,b` (`-` for none, i.e. a 1.0 plugin);
/// line 4: retry delays in ms `1,2,3`; then emits, five lines each (topic, key, id, kind, data).
pub fn plugin_output(data: &[u8]) {
    let f = fields(data);
    let knobs = field(&f, 0).as_bytes();
    let knob = |i: usize| usize::from(*knobs.get(i).unwrap_or(&8));
    let limits = EffectLimits {
        max_emits: knob(0),
        max_emit_bytes: knob(1) * 16,
        max_retry_delays: knob(2),
        max_retry_total: std::time::Duration::from_secs(knob(3) as u64 * 60),
        allow_undeclared_topics: knob(4) % 2 == 1,
    };
    let subscriptions: Vec<Subscription> = field(&f, 1)
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (topic, dlq) = s.split_once(',').unwrap_or((s, ""));
            Subscription {
                pubsub: "pubsub".into(),
                topic: topic.into(),
                route: format!("/events/{topic}"),
                dead_letter_topic: (!dlq.is_empty()).then(|| dlq.to_string()),
            }
        })
        .collect();
    let declared = match field(&f, 2) {
        "-" => None,
        list => Some(
            list.split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
        ),
    };
    let delays_ms = field(&f, 3)
        .split(',')
        .filter_map(|d| d.parse::<u32>().ok())
        .collect();
    let manifest = Manifest {
        name: "fuzz".into(),
        version: "0.0.0".into(),
        schema_versions: vec![],
        subscriptions: subscriptions.clone(),
        retry_policies: vec![RetryPolicy {
            event_type: "*".into(),
            delays_ms,
        }],
    };
    let Ok(policy) = effects::EffectPolicy::new(&manifest, declared, limits) else {
        return;
    };
    let emits: Vec<Emit> = f[4.min(f.len())..]
        .chunks(5)
        .map(|c| Emit {
            topic: field(c, 0).into(),
            key: field(c, 1).into(),
            id: field(c, 2).into(),
            kind: field(c, 3).into(),
            data: field(c, 4).into(),
        })
        .collect();
    let served = subscriptions.first().cloned().unwrap_or(Subscription {
        pubsub: "pubsub".into(),
        topic: "in".into(),
        route: "/events/in".into(),
        dead_letter_topic: Some("in-dlq".into()),
    });
    if policy.check(&served, &emits).is_ok() {
        // What the policy lets through must be within every limit it enforces.
        assert!(emits.len() <= limits.max_emits, "too many emits passed");
        let dead_letters: Vec<&str> = subscriptions
            .iter()
            .chain([&served])
            .filter_map(|s| s.dead_letter_topic.as_deref())
            .collect();
        for emit in &emits {
            assert!(
                effects::topic_ok(&emit.topic).is_ok(),
                "bad topic passed: {:?}",
                emit.topic
            );
            assert!(
                !dead_letters.contains(&emit.topic.as_str()),
                "dead-letter topic passed"
            );
            assert!(emit.key.len() <= effects::MAX_KEY_LEN, "long key passed");
        }
    }
}

/// Golden cases as an operator's canary file holds them (host/src/plugin/canary.rs): parsed,
/// written back and parsed again, the cases must be the same.
pub fn canary_cases(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cases) = canary::parse_cases(text) else {
        return;
    };
    let written: Vec<Value> = cases.iter().map(canary::case_to_json).collect();
    let again = canary::parse_cases(&Value::Array(written).to_string())
        .unwrap_or_else(|e| panic!("a written case does not parse again: {e}"));
    assert_eq!(
        again, cases,
        "cases changed on the way through the file format"
    );
}

/// The guest's validate and migrate (native, guest/src/schema, guest/src/migrate): line 1 the
/// target version, the rest the event. An event migrated without problems must validate.
pub fn guest_validate_migrate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (target, event) = text.split_once('\n').unwrap_or(("2.0", &text));
    let _ = task_plugin::schema::validate(event);
    if let Ok(migrated) = task_plugin::migrate::migrate(event, target) {
        assert!(
            serde_json::from_str::<Value>(&migrated).is_ok(),
            "migrate wrote invalid JSON: {migrated}"
        );
        if let Err(problems) = task_plugin::schema::validate(&migrated) {
            panic!(
                "migrated to {target:?} but the result does not validate: {problems:?}\n{migrated}"
            );
        }
    }
}

/// The guest's recurrence engine (guest/src/recurrence): lines rule, dtstart, tz (`-` for
/// none), after, limit. The answer is ascending, strictly after `after`, at most `limit` long.
pub fn guest_occurrences(data: &[u8]) {
    let f = fields(data);
    let tz = match field(&f, 2) {
        "-" => None,
        tz => Some(tz),
    };
    // Small limits: the engine's cost is bounded per occurrence, not what is fuzzed here.
    let limit = field(&f, 4).parse::<u32>().unwrap_or(3) % 64;
    let after = field(&f, 3);
    let Ok(found) =
        task_plugin::recurrence::occurrences_after(field(&f, 0), field(&f, 1), tz, after, limit)
    else {
        return;
    };
    assert!(
        found.len() <= limit as usize,
        "{} occurrences for limit {limit}",
        found.len()
    );
    for pair in found.windows(2) {
        if pair[0].len() == pair[1].len() {
            assert!(pair[0] < pair[1], "not ascending: {pair:?}");
        }
    }
}
