//! The few top-level fields of a JSON object the host reads, as slices of the body, without
//! building a tree of the rest.
//!
//! A delivery body is mostly the task event, which only the plugin reads; parsing it into a
//! `serde_json::Value` and writing it back out was ~15% of the host's CPU in bulk batches
//! (docs/performance.md, change 9). This walks the object once, keeps the named fields as
//! `RawValue`s borrowed from the body and skips everything else unparsed. A field given twice
//! keeps its last value, as a parsed object would.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::http_limits::{MAX_JSON_DEPTH, json_too_deep};

/// What [`fields`] found: the raw value of each asked name, in the order asked.
pub type Found<'a, const N: usize> = [Option<&'a RawValue>; N];

/// Why [`fields`] could not read `body`.
#[derive(Debug)]
pub enum FieldsError {
    /// Not JSON text.
    NotJson(serde_json::Error),
    /// Nested deeper than [`MAX_JSON_DEPTH`] ([`fields_of_body`] only).
    TooDeep,
    /// JSON, but not an object.
    NotAnObject,
}

impl fmt::Display for FieldsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            FieldsError::NotJson(e) => e.fmt(f),
            FieldsError::TooDeep => write!(
                f,
                "nested deeper than {MAX_JSON_DEPTH} levels (recursion limit exceeded)"
            ),
            FieldsError::NotAnObject => f.write_str("not a JSON object"),
        }
    }
}

/// [`fields`] of a body as it arrived: refused when nested deeper than [`MAX_JSON_DEPTH`].
/// Skipped values are not parsed, so the depth is checked here, once, and every value handed
/// on (and every part of it read with [`fields`] later) parses (as the embedded publish API
/// promises for what it stores).
pub fn fields_of_body<'a, const N: usize>(
    body: &'a [u8],
    names: [&str; N],
) -> Result<Found<'a, N>, FieldsError> {
    match json_too_deep(body) {
        true => Err(FieldsError::TooDeep),
        false => fields(body, names),
    }
}

/// The raw values of `names` in the JSON object `body` (`None` for a name it lacks).
pub fn fields<'a, const N: usize>(
    body: &'a [u8],
    names: [&str; N],
) -> Result<Found<'a, N>, FieldsError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = de
        .deserialize_any(Named { names })
        .map_err(FieldsError::NotJson)?;
    de.end().map_err(FieldsError::NotJson)?;
    found.ok_or(FieldsError::NotAnObject)
}

/// The text of a raw JSON string; `None` for any other JSON value.
pub fn text(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    match raw.get().starts_with('"') {
        true => serde_json::from_str(raw.get()).ok(),
        false => None,
    }
}

struct Named<'n, const N: usize> {
    names: [&'n str; N],
}

impl<'de, const N: usize> Visitor<'de> for Named<'_, N> {
    /// `None`: the value was JSON, but not an object.
    type Value = Option<Found<'de, N>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Found<'de, N> = [None; N];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.names.iter().position(|n| *n == key) {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        Ok(Some(found))
    }

    // Any other JSON value is read through and reported as "not an object".
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_fields_are_kept_raw_and_the_last_of_duplicates_wins() {
        let body = br#"{"a": {"x": [1, 2]}, "skip": {"deep": [{}]}, "b": "t\u00e9", "a": 3}"#;
        let [a, b, c] = fields(body, ["a", "b", "c"]).unwrap();
        assert_eq!(a.unwrap().get(), "3");
        assert_eq!(text(b).as_deref(), Some("té"));
        assert!(c.is_none());
        assert_eq!(text(a), None, "a number is not text");
    }

    #[test]
    fn non_objects_and_broken_json_are_told_apart() {
        for body in [&b"[1, {\"a\": 2}]"[..], b"\"s\"", b"null", b"12"] {
            assert!(matches!(fields(body, ["a"]), Err(FieldsError::NotAnObject)));
        }
        for body in [&b"{\"a\": "[..], b"{} x", b""] {
            assert!(matches!(fields(body, ["a"]), Err(FieldsError::NotJson(_))));
        }
        let deep = format!(
            "{{\"a\": {}{}}}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(matches!(
            fields_of_body(deep.as_bytes(), ["a"]),
            Err(FieldsError::TooDeep)
        ));
        assert!(
            fields(deep.as_bytes(), ["a"]).is_ok(),
            "skipping has no depth limit"
        );
    }
}
