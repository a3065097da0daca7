//! Reading request bodies the way daprd's Go code does, on top of serde_json.
//!
//! Go's `encoding/json` matches an object's keys to struct fields case-insensitively, and when
//! several keys match one field the last one in the document wins. Dapr's SDKs rely on it: the
//! JavaScript SDK sends `entryID` where daprd's struct says `entryId`. serde_json matches names
//! exactly, so every field this sidecar reads from a request body goes through [`field`].
//! Path segments are unescaped like Go's `url.QueryUnescape` ([`query_unescape`]), and
//! durations read like Go's `time.ParseDuration` ([`go_duration`]).

use std::time::Duration;

use serde_json::Value;

/// The value of `name` in the JSON object `obj`, matched as Go matches struct fields: any case,
/// the last match in document order. `None` when absent or when `obj` is not an object.
pub(crate) fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .rfind(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// [`field`] as a string; `None` for absent, `null` or a non-string value.
pub(crate) fn str_field<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    field(obj, name).and_then(Value::as_str)
}

/// Go's `url.QueryUnescape`, lenient: an invalid `%` escape is kept as written.
pub(crate) fn query_unescape(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Go duration (`300ms`, `1.5h`, `1h30m`), as Go's `time.ParseDuration` reads it; `None`
/// for a negative or malformed one.
pub(crate) fn go_duration(raw: &str) -> Option<Duration> {
    let mut rest = raw.trim();
    if rest.is_empty() || rest.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unescapes_like_go_query_unescape() {
        assert_eq!(query_unescape("a%2Fb+c"), "a/b c");
        assert_eq!(query_unescape("100%"), "100%");
        assert_eq!(query_unescape("%zz"), "%zz");
        assert_eq!(query_unescape("%41"), "A");
    }

    #[test]
    fn any_case_last_match_wins() {
        let v = json!({"entryID": "a", "EntryId": "b"});
        assert_eq!(str_field(&v, "entryId"), Some("b"));
        assert_eq!(str_field(&json!({"entryid": "x"}), "entryId"), Some("x"));
        assert_eq!(field(&json!({"other": 1}), "entryId"), None);
        assert_eq!(field(&json!([1]), "entryId"), None);
        assert_eq!(str_field(&json!({"entryId": 1}), "entryId"), None);
    }
}
