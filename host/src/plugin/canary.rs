//! The canary: golden cases a plugin must reproduce exactly before it serves.
//!
//! Contract: `run` replays the plugin's own cases (`handler.golden-cases`) and then the
//! operator's (`--canary-file`), in order, each on a fresh instance under the production limits
//! (the same runtime, memory limit and call deadline as deliveries). The first case that traps,
//! hits a limit, or returns an outcome that is not exactly the expected one fails the canary; the
//! error names the case and shows expected against got (JSON, cut around the first difference).
//! A case whose outcome publishes what the plugin's effect policy refuses (`effects`) fails it
//! too, so such a plugin is refused at load rather than dead-lettering in production.
//! A canary with no case at all (no golden cases, no operator cases) cannot be passed by
//! accident: it fails unless the operator allowed it (`--allow-empty-canary`), and then the
//! report says it was skipped. The report lists every case that ran.
//! Calls are synchronous: run it off the async executor, holding one instance permit.
//!
//! Operator file format (guest/src/golden.rs, parsed here independently): JSON lines, one case
//! per line; a JSON array of cases, or a mix, is read the same way. A case is
//! `{"name", "delivery": {"id","pubsub","topic","kind","source","data","attempt"}, "expected":
//! {"done": {"dedupe_key", "emits": [{"topic","key","id","kind","data"}]}} | {"retry": problem} |
//! {"reject": [problem]}}`, a problem being `{"code","message","pointer"?}`. Unknown keys are
//! errors, so a typo cannot silently weaken a case. The file is read again for every load, so
//! it can be updated together with the plugin.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bindings::{Delivery, Emit, GoldenCase, Handled, Outcome, Problem, Subscription};
use super::effects::EffectViolation;
use super::loaded::{CallError, Plugin};

/// Longest excerpt of an outcome shown in a rejection reason.
const EXCERPT: usize = 240;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CanaryError {
    #[error("the canary file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the plugin's golden-cases() failed: {0}")]
    GoldenCases(CallError),
    #[error("canary case {case:?} ({source_name}) failed: {error}")]
    Call {
        case: String,
        source_name: &'static str,
        error: CallError,
    },
    #[error(
        "canary case {case:?} ({source_name}): the outcome differs from the expected one\n  expected: {expected}\n  got:      {got}"
    )]
    Mismatch {
        case: String,
        source_name: &'static str,
        expected: String,
        got: String,
    },
    #[error("canary case {case:?} ({source_name}) publishes what the host refuses: {violation}")]
    Effects {
        case: String,
        source_name: &'static str,
        violation: EffectViolation,
    },
    #[error(
        "the canary has no case to run: the plugin ships no golden cases and no --canary-file cases were given; add cases, or pass --allow-empty-canary to serve it unverified"
    )]
    Empty,
}

impl CanaryError {
    /// The rejection reason as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            CanaryError::File { .. } => "canary-file",
            CanaryError::GoldenCases(_) => "canary-golden-cases",
            CanaryError::Call { error, .. } => match error {
                CallError::Trap { .. } => "canary-trap",
                CallError::Deadline { .. } | CallError::MemoryLimit { .. } => "canary-limit",
            },
            CanaryError::Mismatch { .. } => "canary-mismatch",
            CanaryError::Effects { .. } => "canary-effects",
            CanaryError::Empty => "canary-empty",
        }
    }
}

/// What a passed canary ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CanaryReport {
    pub plugin_cases: usize,
    pub operator_cases: usize,
    /// Every case that ran, in order: `plugin: <name>` or `canary-file: <name>`.
    pub ran: Vec<String>,
    /// No case ran and `--allow-empty-canary` let the plugin through unverified.
    pub skipped: bool,
}

/// Replays the plugin's golden cases, then `operator_cases`, through `plugin`. With no case at
/// all, fails unless `allow_empty`.
pub fn run(
    plugin: &Plugin,
    operator_cases: &[GoldenCase],
    allow_empty: bool,
) -> Result<CanaryReport, CanaryError> {
    let own = plugin.golden_cases().map_err(CanaryError::GoldenCases)?;
    if own.is_empty() && operator_cases.is_empty() {
        if !allow_empty {
            return Err(CanaryError::Empty);
        }
        tracing::warn!(
            plugin = plugin.label(),
            "the canary has no case to run; --allow-empty-canary lets the plugin serve unverified"
        );
    }
    let mut ran = Vec::with_capacity(own.len() + operator_cases.len());
    for (cases, source_name, tag) in [
        (own.as_slice(), "the plugin's own", "plugin"),
        (operator_cases, "--canary-file", "canary-file"),
    ] {
        for case in cases {
            ran.push(format!("{tag}: {}", case.name));
            let got = plugin
                .handle(&case.delivery)
                .map_err(|error| CanaryError::Call {
                    case: case.name.clone(),
                    source_name,
                    error,
                })?;
            if got != case.expected {
                let (expected, got) =
                    excerpts(&outcome_to_json(&case.expected), &outcome_to_json(&got));
                return Err(CanaryError::Mismatch {
                    case: case.name.clone(),
                    source_name,
                    expected,
                    got,
                });
            }
            if let Outcome::Done(handled) = &got {
                let served = Subscription {
                    pubsub: case.delivery.pubsub.clone(),
                    topic: case.delivery.topic.clone(),
                    route: String::new(),
                    dead_letter_topic: None,
                };
                plugin
                    .effects
                    .check(&served, &handled.emits)
                    .map_err(|violation| CanaryError::Effects {
                        case: case.name.clone(),
                        source_name,
                        violation,
                    })?;
            }
        }
    }
    Ok(CanaryReport {
        plugin_cases: own.len(),
        operator_cases: operator_cases.len(),
        skipped: ran.is_empty(),
        ran,
    })
}

/// Reads an operator canary file.
pub fn read_file(path: &Path) -> Result<Vec<GoldenCase>, CanaryError> {
    let error = |reason: String| CanaryError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot be read: {e}")))?;
    parse_cases(&text).map_err(error)
}

/// Parses cases in the format above; the error names the line, the case and the field.
pub fn parse_cases(text: &str) -> Result<Vec<GoldenCase>, String> {
    let mut cases = Vec::new();
    for (line, item) in json_items(text).map_err(|(_, e)| format!("not JSON: {e}"))? {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let case: CaseJson = serde_json::from_value(item)
            .map_err(|e| format!("case {} ({name:?}, line {line}): {e}", cases.len() + 1))?;
        cases.push(case.into());
    }
    Ok(cases)
}

/// The JSON values of a text of JSON lines (or of values one after another, or arrays of them,
/// flattened), each with the line it starts on; `Err` has the line of the first that is not JSON.
pub fn json_items(text: &str) -> Result<Vec<(usize, Value)>, (usize, serde_json::Error)> {
    let mut items = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let rest = &text[stream.byte_offset()..];
        let line = 1 + text[..text.len() - rest.trim_start().len()]
            .matches('\n')
            .count();
        match stream.next() {
            None => return Ok(items),
            Some(Err(e)) => return Err((line, e)),
            Some(Ok(Value::Array(values))) => items.extend(values.into_iter().map(|v| (line, v))),
            Some(Ok(value)) => items.push((line, value)),
        }
    }
}

/// One delivery in the file format (`{"id","pubsub","topic","kind","source","data","attempt"}`,
/// unknown keys refused), for tools that take deliveries as input (`canary record`, `replay`).
pub fn parse_delivery(value: Value) -> Result<Delivery, String> {
    serde_json::from_value::<DeliveryJson>(value)
        .map(Delivery::from)
        .map_err(|e| e.to_string())
}

impl From<DeliveryJson> for Delivery {
    fn from(d: DeliveryJson) -> Delivery {
        Delivery {
            id: d.id,
            pubsub: d.pubsub,
            topic: d.topic,
            kind: d.kind,
            source: d.source,
            data: d.data,
            attempt: d.attempt,
        }
    }
}

/// One case as a JSON value in the file format (for writing canary files).
pub fn case_to_json(case: &GoldenCase) -> Value {
    let d = &case.delivery;
    serde_json::json!({
        "name": case.name,
        "delivery": {"id": d.id, "pubsub": d.pubsub, "topic": d.topic, "kind": d.kind,
                     "source": d.source, "data": d.data, "attempt": d.attempt},
        "expected": outcome_to_json(&case.expected),
    })
}

/// An outcome in the file format.
pub fn outcome_to_json(outcome: &Outcome) -> Value {
    let problem = |p: &Problem| serde_json::json!({"code": p.code, "message": p.message, "pointer": p.pointer});
    match outcome {
        Outcome::Done(h) => serde_json::json!({"done": {
            "dedupe_key": h.dedupe_key,
            "emits": h.emits.iter().map(|e| serde_json::json!({
                "topic": e.topic, "key": e.key, "id": e.id, "kind": e.kind, "data": e.data,
            })).collect::<Vec<_>>(),
        }}),
        Outcome::Retry(p) => serde_json::json!({"retry": problem(p)}),
        Outcome::Reject(ps) => {
            serde_json::json!({"reject": ps.iter().map(problem).collect::<Vec<_>>()})
        }
    }
}

/// The two outcomes as JSON text, each cut to a window around their first difference.
fn excerpts(expected: &Value, got: &Value) -> (String, String) {
    let (a, b) = (expected.to_string(), got.to_string());
    let first_difference = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let start = first_difference.saturating_sub(EXCERPT / 4);
    (window(&a, start), window(&b, start))
}

fn window(text: &str, start: usize) -> String {
    let mut from = start.min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (from + EXCERPT).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    let before = if from > 0 { "…" } else { "" };
    let after = if to < text.len() { "…" } else { "" };
    format!("{before}{}{after}", &text[from..to])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseJson {
    name: String,
    delivery: DeliveryJson,
    expected: OutcomeJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryJson {
    id: String,
    pubsub: String,
    topic: String,
    kind: String,
    source: String,
    data: String,
    attempt: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum OutcomeJson {
    Done(HandledJson),
    Retry(ProblemJson),
    Reject(Vec<ProblemJson>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandledJson {
    dedupe_key: String,
    emits: Vec<EmitJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitJson {
    topic: String,
    key: String,
    id: String,
    kind: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProblemJson {
    code: String,
    message: String,
    #[serde(default)]
    pointer: Option<String>,
}

impl From<CaseJson> for GoldenCase {
    fn from(c: CaseJson) -> GoldenCase {
        GoldenCase {
            name: c.name,
            delivery: c.delivery.into(),
            expected: match c.expected {
                OutcomeJson::Done(h) => Outcome::Done(Handled {
                    dedupe_key: h.dedupe_key,
                    emits: h
                        .emits
                        .into_iter()
                        .map(|e| Emit {
                            topic: e.topic,
                            key: e.key,
                            id: e.id,
                            kind: e.kind,
                            data: e.data,
                        })
                        .collect(),
                }),
                OutcomeJson::Retry(p) => Outcome::Retry(p.into()),
                OutcomeJson::Reject(ps) => {
                    Outcome::Reject(ps.into_iter().map(Into::into).collect())
                }
            },
        }
    }
}

impl From<ProblemJson> for Problem {
    fn from(p: ProblemJson) -> Problem {
        Problem {
            code: p.code,
            message: p.message,
            pointer: p.pointer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: &str = r#"{"name":"one","delivery":{"id":"i","pubsub":"p","topic":"t","kind":"k","source":"s","data":"{}","attempt":1},"expected":{"done":{"dedupe_key":"d","emits":[{"topic":"t","key":"u","id":"x","kind":"task.created","data":"{\"a\":1}"}]}}}"#;
    const REJECT: &str = r#"{"name":"two","delivery":{"id":"i","pubsub":"p","topic":"t","kind":"k","source":"s","data":"{}","attempt":1},"expected":{"reject":[{"code":"c","message":"m"}]}}"#;

    #[test]
    fn jsonl_arrays_and_blank_lines_parse() {
        let text = format!("{DONE}\n\n{REJECT}\n[{DONE},{REJECT}]\n");
        let cases = parse_cases(&text).unwrap();
        assert_eq!(cases.len(), 4);
        assert_eq!(
            cases[1].expected,
            Outcome::Reject(vec![Problem {
                code: "c".into(),
                message: "m".into(),
                pointer: None
            }])
        );
    }

    #[test]
    fn written_cases_read_back_the_same() {
        let cases = parse_cases(&format!("{DONE}\n{REJECT}")).unwrap();
        let text: String = cases
            .iter()
            .map(|c| case_to_json(c).to_string() + "\n")
            .collect();
        assert_eq!(parse_cases(&text).unwrap(), cases);
    }

    #[test]
    fn mistakes_name_the_case_and_the_line() {
        let typo = DONE.replace("dedupe_key", "dedupe");
        let err = parse_cases(&format!("{REJECT}\n{typo}")).unwrap_err();
        assert!(
            err.contains("case 2 (\"one\", line 2)") && err.contains("unknown field `dedupe`"),
            "{err}"
        );
        let two = REJECT.replace(
            r#"{"reject""#,
            r#"{"retry":{"code":"x","message":"y"},"reject""#,
        );
        assert!(parse_cases(&two).is_err());
        assert!(parse_cases("{").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn the_bundled_plugin_passes_its_own_cases_and_fails_a_changed_one() {
        let plugin = crate::plugin::testing::bundled_plugin();
        let report = run(&plugin, &[], false).unwrap();
        assert!(
            report.plugin_cases > 0,
            "the task plugin ships golden cases"
        );
        assert_eq!(report.ran.len(), report.plugin_cases);
        assert!(report.ran[0].starts_with("plugin: ") && !report.skipped);

        let mut case = plugin.golden_cases().unwrap().remove(0);
        assert_eq!(
            run(&plugin, std::slice::from_ref(&case), false)
                .unwrap()
                .operator_cases,
            1
        );
        if let Outcome::Done(handled) = &mut case.expected {
            handled.dedupe_key.push_str("-changed");
        } else {
            panic!("the first golden case is a done outcome");
        }
        case.name = "changed".into();
        let err = run(&plugin, &[case], false).unwrap_err();
        assert_eq!(err.kind(), "canary-mismatch");
        let message = err.to_string();
        assert!(
            message.contains("\"changed\" (--canary-file)") && message.contains("-changed"),
            "{message}"
        );
    }

    #[test]
    fn excerpts_show_the_first_difference() {
        let long = "x".repeat(1000);
        let (a, b) = excerpts(
            &serde_json::json!({"a": long, "b": 1}),
            &serde_json::json!({"a": long, "b": 2}),
        );
        assert!(
            a.starts_with('…') && a.ends_with("1}") && b.ends_with("2}"),
            "{a} / {b}"
        );
        assert!(a.chars().count() <= EXCERPT + 2);
    }
}
