//! Go `encoding/json` semantics, as far as daprd's observable behaviour depends on them.
//!
//! Contract (dapr-contract.md §1, §2, §2.1, §3, §4): daprd decodes and encodes JSON with Go's
//! standard library, and several visible behaviours follow from that rather than from the JSON
//! spec:
//! - `json.NewDecoder(r).Decode(&v)` reads the **first** value and ignores what follows; an empty
//!   body is `io.EOF` (an error). `json.Unmarshal` requires the whole input to be one value.
//! - Object keys match struct fields **case-insensitively** (Go's fold: ASCII upper-casing, and
//!   `ToUpper(ToLower(r))` for other runes); the last matching key wins; unknown keys are ignored;
//!   a JSON `null` leaves a field untouched; any type mismatch fails the whole decode.
//! - Decoding into `any` gives `float64` numbers, except with `UseNumber` (the publish envelope),
//!   where the literal digits survive.
//! - `json.Marshal` of a map sorts keys bytewise at every level, writes compact output and
//!   escapes `<`, `>`, `&`, U+2028 and U+2029; struct fields keep declaration order.
//!
//! [`GoValue`] keeps object pairs in input order, duplicates included, so every one of those
//! rules can be applied where the real code applies it. Nothing here panics on hostile input.

mod fields;
mod parse;

pub(crate) use fields::{
    bool_field, field, i32_field, key_matches, string_field, string_map_field, type_error,
};
pub(crate) use parse::{decode_first, unmarshal};

use std::fmt::Write as _;

/// A decoded JSON value. Numbers keep their literal text; objects keep every pair in order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum GoValue {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<GoValue>),
    /// A Go `map[string]…`: marshalled with sorted keys, duplicate keys resolved last-wins.
    Map(Vec<(String, GoValue)>),
    /// A Go struct: marshalled in field order (used for bulk entries).
    Struct(Vec<(String, GoValue)>),
}

/// Why a decode failed. `Eof` is Go's `io.EOF`: the input held no value at all.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DecodeError {
    Eof,
    Syntax(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Eof => f.write_str("EOF"),
            DecodeError::Syntax(m) => f.write_str(m),
        }
    }
}

/// `json.Marshal` (HTML escaping on, maps sorted, compact).
pub(crate) fn marshal(v: &GoValue) -> Vec<u8> {
    let mut out = String::new();
    write_go(&mut out, v);
    out.into_bytes()
}

fn write_go(out: &mut String, v: &GoValue) {
    match v {
        GoValue::Null => out.push_str("null"),
        GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        GoValue::Number(n) => out.push_str(n),
        GoValue::String(s) => write_go_string(out, s),
        GoValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go(out, item);
            }
            out.push(']');
        }
        GoValue::Map(pairs) => {
            let mut pairs = dedup_last(pairs);
            pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            write_pairs(out, pairs.into_iter());
        }
        GoValue::Struct(fields) => write_pairs(out, fields.iter().map(|(k, v)| (k.as_str(), v))),
    }
}

fn write_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a GoValue)>) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_string(out, k);
        out.push(':');
        write_go(out, v);
    }
    out.push('}');
}

/// What a Go map holds after decoding `pairs`: one entry per key, the last value winning.
pub(crate) fn dedup_last(pairs: &[(String, GoValue)]) -> Vec<(&str, &GoValue)> {
    let mut out: Vec<(&str, &GoValue)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match out.iter_mut().find(|(ok, _)| *ok == k.as_str()) {
            Some(slot) => slot.1 = v,
            None => out.push((k.as_str(), v)),
        }
    }
    out
}

/// Go's `encodeState.string` with `escapeHTML` (Go ≥ 1.22 writes `\b` and `\f` short forms).
pub(crate) fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number literal as Go's `float64` decoding sees it; `None` when it overflows (Go reports an
/// `UnmarshalTypeError` for such numbers).
pub(crate) fn go_float(literal: &str) -> Option<f64> {
    literal.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `encoding/json`'s float64 encoder: shortest digits, `'e'` format outside [1e-6, 1e21).
pub(crate) fn format_go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-7` (after its e-07 cleanup).
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

/// Re-shape a `UseNumber`-style value as plain `json.Unmarshal` into `any` would have produced
/// it: every number goes through float64. Fails where Go fails (a number out of range).
pub(crate) fn to_float64_numbers(v: &GoValue) -> Result<GoValue, String> {
    Ok(match v {
        GoValue::Number(n) => match go_float(n) {
            Some(f) => GoValue::Number(format_go_float(f)),
            None => return Err(format!("json: cannot unmarshal number {n} into Go value")),
        },
        GoValue::Array(items) => GoValue::Array(
            items
                .iter()
                .map(to_float64_numbers)
                .collect::<Result<_, _>>()?,
        ),
        GoValue::Map(pairs) | GoValue::Struct(pairs) => GoValue::Map(
            pairs
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_float64_numbers(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Look up a key in a decoded Go map (last duplicate wins).
pub(crate) fn map_get<'a>(v: &'a GoValue, key: &str) -> Option<&'a GoValue> {
    match v {
        GoValue::Map(pairs) | GoValue::Struct(pairs) => {
            pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        _ => None,
    }
}

/// Set a key in a decoded Go map, replacing every earlier duplicate.
pub(crate) fn map_set(pairs: &mut Vec<(String, GoValue)>, key: &str, v: GoValue) {
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), v));
}

/// A Go string value.
pub(crate) fn s(v: impl Into<String>) -> GoValue {
    GoValue::String(v.into())
}
