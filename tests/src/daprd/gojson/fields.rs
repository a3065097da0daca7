//! Go struct decoding rules for the few daprd structs the stand-in reads (subscriptions, app
//! responses, state items): case-insensitive key matching with Go's fold, last match wins,
//! `null` leaves a field untouched, and any type mismatch fails the decode.

use super::{GoValue, dedup_last};

/// Go's key folding for struct-field matching (`encoding/json` `foldName`).
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_ascii_uppercase()
            } else {
                let lower = single(c.to_lowercase()).unwrap_or(c);
                single(lower.to_uppercase()).unwrap_or(lower)
            }
        })
        .collect()
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// Whether JSON key `key` decodes into the Go struct field tagged `name`.
pub(crate) fn key_matches(key: &str, name: &str) -> bool {
    key == name || fold(key) == fold(name)
}

/// The value Go would decode into struct field `name`: the last key that matches it, exactly
/// or case-insensitively, skipping `null`s (a JSON null leaves a Go field untouched).
pub(crate) fn field<'a>(pairs: &'a [(String, GoValue)], name: &str) -> Option<&'a GoValue> {
    pairs
        .iter()
        .filter(|(k, v)| key_matches(k, name) && *v != GoValue::Null)
        .map(|(_, v)| v)
        .next_back()
}

/// Decode a Go `string` field.
pub(crate) fn string_field(pairs: &[(String, GoValue)], name: &str) -> Result<String, String> {
    match field(pairs, name) {
        None => Ok(String::new()),
        Some(GoValue::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error(other, name, "string")),
    }
}

/// Decode a Go `bool` field.
pub(crate) fn bool_field(pairs: &[(String, GoValue)], name: &str) -> Result<bool, String> {
    match field(pairs, name) {
        None => Ok(false),
        Some(GoValue::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error(other, name, "bool")),
    }
}

/// Decode a Go `int32` field (Go refuses fractions, exponents and out-of-range values).
pub(crate) fn i32_field(pairs: &[(String, GoValue)], name: &str) -> Result<i32, String> {
    match field(pairs, name) {
        None => Ok(0),
        Some(GoValue::Number(n)) => n.parse::<i32>().map_err(|_| {
            format!("json: cannot unmarshal number {n} into Go struct field .{name} of type int32")
        }),
        Some(other) => Err(type_error(other, name, "int32")),
    }
}

/// Decode a Go `map[string]string` field; `None` when absent or null.
pub(crate) fn string_map_field(
    pairs: &[(String, GoValue)],
    name: &str,
) -> Result<Option<Vec<(String, String)>>, String> {
    match field(pairs, name) {
        None => Ok(None),
        Some(GoValue::Map(items)) => {
            let mut out: Vec<(String, String)> = Vec::new();
            for (k, v) in dedup_last(items) {
                let s = match v {
                    GoValue::String(s) => s.clone(),
                    GoValue::Null => String::new(),
                    other => return Err(type_error(other, &format!("{name}.{k}"), "string")),
                };
                out.push((k.to_string(), s));
            }
            Ok(Some(out))
        }
        Some(other) => Err(type_error(other, name, "map[string]string")),
    }
}

pub(crate) fn type_error(v: &GoValue, field: &str, go_type: &str) -> String {
    let kind = match v {
        GoValue::Null => "null",
        GoValue::Bool(_) => "bool",
        GoValue::Number(_) => "number",
        GoValue::String(_) => "string",
        GoValue::Array(_) => "array",
        GoValue::Map(_) | GoValue::Struct(_) => "object",
    };
    format!("json: cannot unmarshal {kind} into Go struct field .{field} of type {go_type}")
}
