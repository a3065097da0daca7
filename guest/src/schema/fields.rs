//! Reading fields of a JSON object while collecting problems.
//!
//! Every reader returns the typed value or `None`, and records at most one problem per field, so
//! a validator can read every field and report everything that is wrong in one pass. `null`
//! counts as absent: producers such as the seed's Python serialise unset optionals as `null`.

use serde_json::{Map, Value};

use super::codes;
use crate::problem::Problem;

/// A JSON object and the JSON pointer (RFC 6901) of where it sits in the event.
#[derive(Clone, Copy)]
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub at: &'a str,
}

impl<'a> Obj<'a> {
    pub fn new(map: &'a Map<String, Value>, at: &'a str) -> Self {
        Obj { map, at }
    }

    /// The value of `key`, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Pointer of `key` inside this object.
    pub fn ptr(&self, key: &str) -> String {
        pointer(self.at, key)
    }
}

/// `base` + `/` + `key`, with `~` and `/` escaped as RFC 6901 requires.
pub fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The problem list a validator fills.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, code: &str, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::at(code, at, message));
    }

    pub fn missing(&mut self, at: String) {
        let msg = format!("{at} is required");
        self.push(codes::MISSING_FIELD, at, msg);
    }

    pub fn wrong_type(&mut self, at: String, expected: &str, found: &Value) {
        let msg = format!("{at} must be {expected}, not {}", type_name(found));
        self.push(codes::WRONG_TYPE, at, msg);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A string field that must be present.
    pub fn req_str<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a str> {
        match o.get(key) {
            None => {
                self.missing(o.ptr(key));
                None
            }
            Some(v) => self.as_str(o.ptr(key), v),
        }
    }

    /// A string field that may be absent.
    pub fn opt_str<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a str> {
        o.get(key).and_then(|v| self.as_str(o.ptr(key), v))
    }

    /// A non-empty string field that may be absent (empty -> `empty-field`).
    pub fn opt_nonempty_str<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a str> {
        let s = self.opt_str(o, key)?;
        if s.is_empty() {
            self.push(
                codes::EMPTY_FIELD,
                o.ptr(key),
                format!("{} must not be empty", o.ptr(key)),
            );
            return None;
        }
        Some(s)
    }

    /// A positive integer that fits u32 (indexes, counts, intervals).
    pub fn opt_positive(&mut self, o: Obj<'_>, key: &str) -> Option<u32> {
        let v = o.get(key)?;
        match v.as_u64() {
            Some(n) if n >= 1 => match u32::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    let msg = format!("{} must be at most {}", o.ptr(key), u32::MAX);
                    self.push(codes::INVALID_RECURRENCE, o.ptr(key), msg);
                    None
                }
            },
            _ => {
                self.wrong_type(o.ptr(key), "a positive integer", v);
                None
            }
        }
    }

    /// An object field that may be absent.
    pub fn opt_object<'a>(&mut self, o: Obj<'a>, key: &str) -> Option<&'a Map<String, Value>> {
        let v = o.get(key)?;
        let found = v.as_object();
        if found.is_none() {
            self.wrong_type(o.ptr(key), "an object", v);
        }
        found
    }

    fn as_str<'a>(&mut self, at: String, v: &'a Value) -> Option<&'a str> {
        let s = v.as_str();
        if s.is_none() {
            self.wrong_type(at, "a string", v);
        }
        s
    }
}

/// JSON type names for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a non-integer number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_rfc6901() {
        assert_eq!(pointer("/payload", "a/b~c"), "/payload/a~1b~0c");
        assert_eq!(pointer("", "task_id"), "/task_id");
    }
}
