//! What one delivery came to under a plugin, and the readable difference between two of them.
//!
//! Contract: an `Observation` is the verdict the host would act on (`done`, `retry`, `reject`,
//! `refused` when the host's effect policy would dead-letter a done outcome, or the call's
//! failure: `trap`, `deadline`, `memory`) and a JSON body with every detail, emit `data` parsed
//! as JSON (so key order and whitespace never count as a difference). `diff` lists the changes
//! from the serving plugin's observation to the candidate's: a different verdict is one change
//! showing both bodies; otherwise every value that differs, by JSON pointer into the body
//! (`/emits/0/data/payload/due_date`), with old and new values. Emits are paired by their id
//! first (a candidate that adds one emit in front does not show every later one as changed),
//! then in order; an unpaired emit is added or removed. Nothing is truncated.

use std::fmt;

use serde_json::{Map, Value};

use crate::plugin::bindings::{Outcome, Problem};

/// A delivery's result under one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub verdict: &'static str,
    pub body: Value,
}

impl Observation {
    /// A returned outcome; `refused` is the effect policy's reason for a done outcome it refuses.
    pub fn outcome(outcome: &Outcome, refused: Option<String>) -> Observation {
        let problems = |ps: &[Problem]| Value::Array(ps.iter().map(problem).collect());
        match outcome {
            Outcome::Done(handled) => {
                let mut body = Map::new();
                if let Some(reason) = refused {
                    body.insert("refused".into(), Value::String(reason));
                }
                body.insert("dedupe_key".into(), handled.dedupe_key.clone().into());
                let emits = handled.emits.iter().map(|e| {
                    serde_json::json!({"topic": e.topic, "key": e.key, "id": e.id,
                                       "kind": e.kind, "data": parsed(&e.data)})
                });
                body.insert("emits".into(), Value::Array(emits.collect()));
                let verdict = if body.contains_key("refused") {
                    "refused"
                } else {
                    "done"
                };
                Observation {
                    verdict,
                    body: Value::Object(body),
                }
            }
            Outcome::Retry(p) => Observation {
                verdict: "retry",
                body: problem(p),
            },
            Outcome::Reject(ps) => Observation {
                verdict: "reject",
                body: problems(ps),
            },
        }
    }

    /// A call that did not return: `kind` as `CallError::kind`, `details` without the
    /// plugin's name (two versions failing alike agree).
    pub fn failed(kind: &'static str, details: Value) -> Observation {
        Observation {
            verdict: kind,
            body: details,
        }
    }

    /// One line for an event both plugins agree on, e.g. `done, 1 emit`.
    pub fn summary(&self) -> String {
        match (self.verdict, &self.body) {
            ("done" | "refused", body) => {
                let n = body["emits"].as_array().map_or(0, Vec::len);
                format!(
                    "{}, {n} emit{}",
                    self.verdict,
                    if n == 1 { "" } else { "s" }
                )
            }
            ("retry", body) => format!("retry ({})", body["code"].as_str().unwrap_or("?")),
            ("reject", Value::Array(ps)) => {
                let codes: Vec<&str> = ps.iter().filter_map(|p| p["code"].as_str()).collect();
                format!("reject ({})", codes.join(", "))
            }
            (verdict, _) => verdict.to_string(),
        }
    }
}

/// Emit data as JSON when it is JSON (it should be), else the text itself.
fn parsed(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
}

fn problem(p: &Problem) -> Value {
    serde_json::json!({"code": p.code, "message": p.message, "pointer": p.pointer})
}

/// Kinds of difference, as the summary counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Verdict,
    EmitAdded,
    EmitRemoved,
    Field,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Verdict,
        Kind::EmitAdded,
        Kind::EmitRemoved,
        Kind::Field,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Verdict => "verdict changed",
            Kind::EmitAdded => "emits added",
            Kind::EmitRemoved => "emits removed",
            Kind::Field => "fields changed",
        }
    }
}

/// One difference from the serving plugin (old) to the candidate (new).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Verdict {
        old: Observation,
        new: Observation,
    },
    EmitAdded {
        pointer: String,
        emit: Value,
    },
    EmitRemoved {
        pointer: String,
        emit: Value,
    },
    /// `None` on one side: the value is missing there.
    Field {
        pointer: String,
        old: Option<Value>,
        new: Option<Value>,
    },
}

impl Change {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Verdict { .. } => Kind::Verdict,
            Change::EmitAdded { .. } => Kind::EmitAdded,
            Change::EmitRemoved { .. } => Kind::EmitRemoved,
            Change::Field { .. } => Kind::Field,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Verdict { old, new } => write!(
                f,
                "verdict: {} → {}\n        serving:   {}\n        candidate: {}",
                old.verdict, new.verdict, old.body, new.body
            ),
            Change::EmitAdded { pointer, emit } => write!(f, "+ {pointer} (emit added): {emit}"),
            Change::EmitRemoved { pointer, emit } => {
                write!(f, "- {pointer} (emit removed): {emit}")
            }
            Change::Field {
                pointer,
                old: Some(old),
                new: Some(new),
            } => {
                write!(f, "~ {pointer}: {old} → {new}")
            }
            Change::Field {
                pointer,
                old: Some(old),
                new: None,
            } => {
                write!(f, "- {pointer}: {old} (field removed)")
            }
            Change::Field {
                pointer,
                old: None,
                new: Some(new),
            } => {
                write!(f, "+ {pointer}: {new} (field added)")
            }
            Change::Field { pointer, .. } => write!(f, "~ {pointer}"),
        }
    }
}

/// The changes from `old` (serving) to `new` (candidate); empty when they agree.
pub fn diff(old: &Observation, new: &Observation) -> Vec<Change> {
    let mut changes = Vec::new();
    if old.verdict != new.verdict {
        changes.push(Change::Verdict {
            old: old.clone(),
            new: new.clone(),
        });
    } else if matches!(old.verdict, "done" | "refused") {
        for key in ["refused", "dedupe_key"] {
            values(
                &format!("/{key}"),
                old.body.get(key),
                new.body.get(key),
                &mut changes,
            );
        }
        let none = Vec::new();
        let emits = |o: &Observation| o.body["emits"].as_array().unwrap_or(&none).clone();
        let (a, b) = (emits(old), emits(new));
        for pair in pair_emits(&a, &b) {
            match pair {
                (Some(i), Some(j)) => values(
                    &format!("/emits/{i}"),
                    Some(&a[i]),
                    Some(&b[j]),
                    &mut changes,
                ),
                (Some(i), None) => changes.push(Change::EmitRemoved {
                    pointer: format!("/emits/{i}"),
                    emit: a[i].clone(),
                }),
                (None, Some(j)) => changes.push(Change::EmitAdded {
                    pointer: format!("/emits/{j}"),
                    emit: b[j].clone(),
                }),
                (None, None) => {}
            }
        }
    } else {
        values("", Some(&old.body), Some(&new.body), &mut changes);
    }
    changes
}

/// Pairs old and new emits: equal ids first, then the rest in order; the leftovers unpaired.
fn pair_emits(old: &[Value], new: &[Value]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut taken = vec![false; new.len()];
    let mut pairs = Vec::with_capacity(old.len().max(new.len()));
    for (i, emit) in old.iter().enumerate() {
        let j = (0..new.len()).find(|&j| !taken[j] && new[j]["id"] == emit["id"]);
        if let Some(j) = j {
            taken[j] = true;
        }
        pairs.push((Some(i), j));
    }
    let mut rest = (0..new.len()).filter(|&j| !taken[j]);
    for pair in pairs.iter_mut().filter(|p| p.1.is_none()) {
        pair.1 = rest.next();
    }
    pairs.extend(rest.map(|j| (None, Some(j))));
    pairs
}

/// Every difference between two JSON values, by pointer; objects compared key by key (order
/// never counts), arrays index by index.
fn values(pointer: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<Change>) {
    match (old, new) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            for (key, value) in a {
                values(&child(pointer, key), Some(value), b.get(key), out);
            }
            for (key, value) in b.iter().filter(|(key, _)| !a.contains_key(*key)) {
                values(&child(pointer, key), None, Some(value), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                values(&child(pointer, &i.to_string()), a.get(i), b.get(i), out);
            }
        }
        (None, None) => {}
        (old, new) => out.push(Change::Field {
            pointer: if pointer.is_empty() {
                "/".into()
            } else {
                pointer.into()
            },
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

/// `pointer/key` with the key escaped per RFC 6901.
fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Emit, Handled};

    fn emit(id: &str, data: &str) -> Emit {
        Emit {
            topic: "task-events".into(),
            key: "u".into(),
            id: id.into(),
            kind: "task.created".into(),
            data: data.into(),
        }
    }

    fn done(emits: Vec<Emit>) -> Observation {
        Observation::outcome(
            &Outcome::Done(Handled {
                dedupe_key: "d".into(),
                emits,
            }),
            None,
        )
    }

    #[test]
    fn key_order_and_spacing_of_emit_data_are_not_differences() {
        let a = done(vec![emit("1", r#"{"a":1,"b":{"c":2}}"#)]);
        let b = done(vec![emit("1", r#"{ "b": {"c": 2}, "a": 1 }"#)]);
        assert_eq!(diff(&a, &b), vec![]);
        assert_eq!(a.summary(), "done, 1 emit");
    }

    #[test]
    fn a_changed_field_is_named_by_its_pointer_with_old_and_new_values() {
        let a = done(vec![emit("1", r#"{"payload":{"due":"x","a/b":1}}"#)]);
        let b = done(vec![emit("1", r#"{"payload":{"due":"y","new":true}}"#)]);
        let shown: Vec<String> = diff(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"~ /emits/0/data/payload/due: "x" → "y""#,
                "- /emits/0/data/payload/a~1b: 1 (field removed)",
                "+ /emits/0/data/payload/new: true (field added)",
            ]
        );
    }

    #[test]
    fn emits_pair_by_id_so_an_added_one_is_just_added() {
        let a = done(vec![emit("1", "{}"), emit("2", "{}")]);
        let b = done(vec![emit("0", "{}"), emit("1", "{}"), emit("2", "{}")]);
        let changes = diff(&a, &b);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].kind(), Kind::EmitAdded);
        assert!(
            changes[0]
                .to_string()
                .starts_with("+ /emits/0 (emit added)")
        );
        let back = diff(&b, &a);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].kind(), Kind::EmitRemoved);
    }

    #[test]
    fn a_new_verdict_shows_both_outcomes() {
        let problem = Problem {
            code: "bad".into(),
            message: "m".into(),
            pointer: None,
        };
        let rejected = Observation::outcome(&Outcome::Reject(vec![problem]), None);
        let changes = diff(&done(vec![]), &rejected);
        assert_eq!(changes.len(), 1);
        let shown = changes[0].to_string();
        assert!(shown.starts_with("verdict: done → reject"), "{shown}");
        assert!(shown.contains(r#""code":"bad""#), "{shown}");
        assert_eq!(rejected.summary(), "reject (bad)");

        let refused = Observation::outcome(
            &Outcome::Done(Handled {
                dedupe_key: "d".into(),
                emits: vec![],
            }),
            Some("topic x is not declared".into()),
        );
        assert_eq!(diff(&done(vec![]), &refused)[0].kind(), Kind::Verdict);
        let trapped = Observation::failed("trap", serde_json::json!({"reason": "x"}));
        assert_eq!(diff(&trapped, &trapped.clone()), vec![]);
    }
}
