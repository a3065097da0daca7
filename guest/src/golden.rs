//! Golden cases: deliveries with the exact outcome the plugin must produce for them.
//!
//! The host replays them through a new plugin version before it serves traffic (a canary) and
//! refuses the version on any difference. The plugin's own cases live in `guest/golden/
//! cases.json` (compiled in); operators can supply more in the same format.
//!
//! Format: a stream of JSON values, each either one case object or an array of case objects
//! (so a pretty-printed array, JSONL with one case per line, and a mix all parse). A case:
//!
//! ```json
//! {"name": "daily 1.0 completion",
//!  "delivery": {"id": "...", "pubsub": "kafka-pubsub", "topic": "task-events",
//!               "kind": "com.dapr.event.sent", "source": "tasks", "data": "<event JSON text>",
//!               "attempt": 1},
//!  "expected": {"done": {"dedupe_key": "...",
//!                        "emits": [{"topic": "...", "key": "...", "id": "...", "kind": "...",
//!                                   "data": "<exact emitted JSON text>"}]}}}
//! ```
//!
//! `expected` is exactly one of `{"done": {...}}`, `{"retry": problem}` or
//! `{"reject": [problem, ...]}`, a problem being `{"code", "message", "pointer"}` (`pointer`
//! may be `null` or absent). `data` values are strings and compared byte for byte. Unknown keys
//! are errors, so a typo cannot silently weaken a case.

use serde_json::{Map, Value, json};

use crate::model::{Delivery, Emit, GoldenCase, Outcome};
use crate::problem::Problem;

const FIXTURE: &str = include_str!("../golden/cases.json");

/// The plugin's own golden cases.
pub fn golden_cases() -> Vec<GoldenCase> {
    // The fixture is part of the build and a test parses it, so this cannot fail in a released
    // plugin; if it somehow did, trapping makes the host refuse this plugin version, which is
    // the right outcome for a plugin whose canary is broken.
    parse_cases(FIXTURE).unwrap_or_else(|e| panic!("guest/golden/cases.json: {e}"))
}

/// Reads cases in the format above; the error names the case (index and name) and the field.
pub fn parse_cases(text: &str) -> Result<Vec<GoldenCase>, String> {
    let mut cases = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let value = value.map_err(|e| format!("not JSON: {e}"))?;
        let items = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            let n = cases.len() + 1;
            let case = parse_case(&item).map_err(|e| {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
                format!("case {n} ({name:?}): {e}")
            })?;
            cases.push(case);
        }
    }
    Ok(cases)
}

/// One case as a single JSON line (the inverse of [`parse_cases`]).
pub fn format_case(case: &GoldenCase) -> String {
    case_to_json(case).to_string()
}

/// One case as a JSON value, keys in the documented order.
pub fn case_to_json(case: &GoldenCase) -> Value {
    let d = &case.delivery;
    let expected = match &case.expected {
        Outcome::Done { dedupe_key, emits } => json!({"done": {
            "dedupe_key": dedupe_key,
            "emits": emits.iter().map(|e| json!({
                "topic": e.topic, "key": e.key, "id": e.id, "kind": e.kind, "data": e.data,
            })).collect::<Vec<_>>(),
        }}),
        Outcome::Retry(p) => json!({"retry": problem_to_json(p)}),
        Outcome::Reject(ps) => {
            json!({"reject": ps.iter().map(problem_to_json).collect::<Vec<_>>()})
        }
    };
    json!({
        "name": case.name,
        "delivery": {"id": d.id, "pubsub": d.pubsub, "topic": d.topic, "kind": d.kind,
                     "source": d.source, "data": d.data, "attempt": d.attempt},
        "expected": expected,
    })
}

fn problem_to_json(p: &Problem) -> Value {
    json!({"code": p.code, "message": p.message, "pointer": p.pointer})
}

fn parse_case(v: &Value) -> Result<GoldenCase, String> {
    let o = object(v, "the case", &["name", "delivery", "expected"])?;
    let d = object(
        field(o, "delivery")?,
        "delivery",
        &["id", "pubsub", "topic", "kind", "source", "data", "attempt"],
    )?;
    let attempt = field(d, "attempt")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok());
    let delivery = Delivery {
        id: string(d, "id")?,
        pubsub: string(d, "pubsub")?,
        topic: string(d, "topic")?,
        kind: string(d, "kind")?,
        source: string(d, "source")?,
        data: string(d, "data")?,
        attempt: attempt.ok_or("delivery.attempt must be an integer 0..=4294967295")?,
    };
    Ok(GoldenCase {
        name: string(o, "name")?,
        delivery,
        expected: parse_outcome(field(o, "expected")?)?,
    })
}

fn parse_outcome(v: &Value) -> Result<Outcome, String> {
    let o = object(v, "expected", &["done", "retry", "reject"])?;
    if o.len() != 1 {
        return Err("expected must have exactly one of done, retry, reject".into());
    }
    if let Some(done) = o.get("done") {
        let done = object(done, "expected.done", &["dedupe_key", "emits"])?;
        let emits = field(done, "emits")?
            .as_array()
            .ok_or("expected.done.emits must be an array")?;
        return Ok(Outcome::Done {
            dedupe_key: string(done, "dedupe_key")?,
            emits: emits.iter().map(parse_emit).collect::<Result<_, _>>()?,
        });
    }
    if let Some(p) = o.get("retry") {
        return Ok(Outcome::Retry(parse_problem(p)?));
    }
    let list = field(o, "reject")?
        .as_array()
        .ok_or("expected.reject must be an array of problems")?;
    Ok(Outcome::Reject(
        list.iter().map(parse_problem).collect::<Result<_, _>>()?,
    ))
}

fn parse_emit(v: &Value) -> Result<Emit, String> {
    let e = object(v, "an emit", &["topic", "key", "id", "kind", "data"])?;
    Ok(Emit {
        topic: string(e, "topic")?,
        key: string(e, "key")?,
        id: string(e, "id")?,
        kind: string(e, "kind")?,
        data: string(e, "data")?,
    })
}

fn parse_problem(v: &Value) -> Result<Problem, String> {
    let p = object(v, "a problem", &["code", "message", "pointer"])?;
    let pointer = match p.get("pointer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("problem.pointer must be a string or null".into()),
    };
    Ok(Problem {
        code: string(p, "code")?,
        message: string(p, "message")?,
        pointer,
    })
}

fn object<'a>(
    v: &'a Value,
    what: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{what} must be an object"))?;
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what} has unknown key '{k}' (allowed: {allowed:?})"
        )),
        None => Ok(o),
    }
}

fn field<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a Value, String> {
    o.get(key).ok_or_else(|| format!("'{key}' is missing"))
}

fn string(o: &Map<String, Value>, key: &str) -> Result<String, String> {
    field(o, key)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("'{key}' must be a string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::handle;

    #[test]
    fn fixture_parses_and_covers_the_brief() {
        let cases = golden_cases();
        assert!((5..=10).contains(&cases.len()), "{} cases", cases.len());
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cases.len(), "case names must be unique");
    }

    /// The canary, natively: the plugin as built must reproduce every pinned outcome.
    #[test]
    fn plugin_reproduces_every_golden_case() {
        for case in golden_cases() {
            assert_eq!(
                handle(&case.delivery),
                case.expected,
                "golden case {:?}",
                case.name
            );
        }
    }

    #[test]
    fn format_and_parse_round_trip_as_jsonl() {
        let cases = golden_cases();
        let jsonl: String = cases.iter().map(|c| format_case(c) + "\n").collect();
        assert_eq!(parse_cases(&jsonl), Ok(cases.clone()));
        // A stream mixing an array and single objects also parses.
        let mixed = format!("[{}]\n{}", format_case(&cases[0]), format_case(&cases[1]));
        assert_eq!(parse_cases(&mixed).map(|c| c.len()), Ok(2));
    }

    #[test]
    fn malformed_cases_are_named() {
        let err = |text: &str| parse_cases(text).unwrap_err();
        assert!(err("{").starts_with("not JSON"));
        assert!(err(r#"{"name":"x"}"#).contains("case 1 (\"x\"): 'delivery' is missing"));
        let case = format_case(&golden_cases()[0]);
        let typo = case.replacen("\"dedupe_key\"", "\"dedupe\"", 1);
        assert!(
            err(&typo).contains("unknown key 'dedupe'"),
            "{}",
            err(&typo)
        );
        let two = case.replacen(
            "{\"done\":",
            "{\"retry\":{\"code\":\"x\",\"message\":\"y\"},\"done\":",
            1,
        );
        assert!(err(&two).contains("exactly one"), "{}", err(&two));
        let problem = r#"{"name":"r","delivery":{"id":"i","pubsub":"p","topic":"t","kind":"k","source":"s","data":"{}","attempt":1},"expected":{"reject":[{"code":"c","message":"m"}]}}"#;
        let parsed = parse_cases(problem).unwrap();
        assert_eq!(
            parsed[0].expected,
            Outcome::Reject(vec![Problem::new("c", "m")])
        );
    }
}
