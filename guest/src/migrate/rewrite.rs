//! Position-preserving edits of a JSON object, so a migrated event keeps its field order (byte
//! output stays stable and reviewable) and a round trip restores the original layout.

use serde_json::{Map, Value};

/// `map` with the entry `key` replaced, at its position, by `entries` (in order). A spliced
/// key that already exists elsewhere gets the spliced value: in place if it comes earlier, at
/// the splice position if later. Unchanged if `key` is absent.
pub fn splice(
    map: Map<String, Value>,
    key: &str,
    entries: Vec<(String, Value)>,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut pending = Some(entries);
    for (k, v) in map {
        if k == key {
            for (nk, nv) in pending.take().unwrap_or_default() {
                out.insert(nk, nv);
            }
        } else if !out.contains_key(&k) {
            out.insert(k, v);
        }
    }
    out
}

/// `map` with every key in `keys` removed and, at the position of the first of them, `key`
/// holding those entries as an object (in their original order). Unchanged if none is present.
pub fn gather(map: Map<String, Value>, keys: &[&str], key: &str) -> Map<String, Value> {
    if !keys.iter().any(|k| map.contains_key(*k)) {
        return map;
    }
    let mut gathered = Map::new();
    let mut out = Map::new();
    for (k, v) in map {
        if keys.contains(&k.as_str()) {
            if gathered.is_empty() {
                // Placeholder that keeps the position; filled below.
                out.insert(key.to_string(), Value::Null);
            }
            gathered.insert(k, v);
        } else {
            out.insert(k, v);
        }
    }
    out.insert(key.to_string(), Value::Object(gathered));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn gather_then_splice_restores_order() {
        let flat =
            obj(json!({"title": "t", "series_id": "s", "due_date": "d", "occurrence_index": 2}));
        let nested = gather(
            flat.clone(),
            &["dtstart", "series_id", "occurrence_index"],
            "recurrence",
        );
        assert_eq!(
            Value::Object(nested.clone()).to_string(),
            r#"{"title":"t","recurrence":{"series_id":"s","occurrence_index":2},"due_date":"d"}"#
        );
        let inner: Vec<(String, Value)> = nested["recurrence"]
            .as_object()
            .cloned()
            .unwrap()
            .into_iter()
            .collect();
        let back = splice(nested, "recurrence", inner);
        assert_eq!(
            Value::Object(back).to_string(),
            r#"{"title":"t","series_id":"s","occurrence_index":2,"due_date":"d"}"#
        );
        assert_eq!(gather(flat.clone(), &["nope"], "r"), flat);
    }
}
