//! Reading the app's `GET /dapr/subscribe` answer as daprd does (docs/dapr-contract.md §1).
//!
//! Decoding follows Go `encoding/json` into `SubscriptionJSON`: keys match case-insensitively,
//! unknown keys are ignored, `null` leaves a field empty, a later duplicate key wins, and a type
//! mismatch anywhere (an object instead of the array, `"rawPayload": true` as a bool) fails the
//! whole answer: [`parse`] returns `Err` and the caller subscribes to nothing.
//!
//! Per-subscription problems drop only that subscription, with an error log: no route at all,
//! a `rawPayload` that is not a Go bool, or a `match` expression outside the supported CEL subset.
//! The subset is one comparison `event.<field>[.<field>...] ==|!= "<string>"` (the shape of every
//! example in Dapr's docs); CEL's full grammar is not implemented. Rules with an empty `match`
//! always match.

use serde_json::{Map, Value};

use super::envelope::parse_go_bool;

/// One usable subscription of the embedded pubsub.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subscription {
    pub pubsub: String,
    pub topic: String,
    pub routes: Routes,
    pub dead_letter_topic: Option<String>,
    pub raw_payload: bool,
    pub bulk: Option<BulkConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BulkConfig {
    pub max_messages: usize,
    pub max_await_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Routes {
    pub rules: Vec<(Match, String)>,
    /// `routes.default`, else `route`.
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Match {
    Always,
    Compare {
        path: Vec<String>,
        value: String,
        equal: bool,
    },
}

impl Routes {
    /// The path for `event` (the delivered CloudEvent); `None`: no rule matched and no fallback.
    pub fn route(&self, event: &Value) -> Option<&str> {
        for (m, path) in &self.rules {
            let hit = match m {
                Match::Always => true,
                Match::Compare { path, value, equal } => {
                    // CEL: a missing field or a non-string is an evaluation error = no match.
                    let found = path.iter().try_fold(event, |v, k| v.get(k));
                    match found.and_then(Value::as_str) {
                        Some(s) => (s == value) == *equal,
                        None => false,
                    }
                }
            };
            if hit {
                return Some(path);
            }
        }
        self.fallback.as_deref()
    }
}

/// Decodes the answer body and keeps the subscriptions of `pubsub`.
pub(crate) fn parse(body: &[u8], pubsub: &str) -> Result<Vec<Subscription>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let items = match &doc {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(format!("expected a JSON array, got {}", kind(other))),
    };
    let mut out: Vec<Subscription> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let raw = RawSub::decode(item).map_err(|e| format!("element {i}: {e}"))?;
        if raw.pubsubname != pubsub {
            tracing::debug!(pubsub = %raw.pubsubname, topic = %raw.topic, "subscription to another pubsub ignored");
            continue;
        }
        match raw.into_subscription() {
            Ok(sub) => {
                if let Some(old) = out.iter().position(|s| s.topic == sub.topic) {
                    tracing::warn!(topic = %sub.topic, "two subscriptions for one topic: the later one replaces the earlier");
                    out.remove(old);
                }
                out.push(sub);
            }
            Err(e) => tracing::error!("subscription dropped: {e}"),
        }
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Default)]
struct RawSub {
    pubsubname: String,
    topic: String,
    route: String,
    rules: Vec<(String, String)>,
    default: String,
    dead_letter_topic: String,
    metadata: Vec<(String, String)>,
    bulk_enabled: bool,
    bulk_max_messages: i64,
    bulk_max_await_ms: i64,
}

/// Go's field matching: each key of the object, in order, is compared case-insensitively
/// with the struct's field names; later keys overwrite earlier ones.
fn fields<'a>(
    v: &'a Value,
    what: &str,
) -> Result<impl Iterator<Item = (String, &'a Value)> + 'a, String> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    let map = match v {
        Value::Null => &*EMPTY,
        Value::Object(m) => m,
        other => return Err(format!("{what} must be an object, got {}", kind(other))),
    };
    Ok(map.iter().map(|(k, v)| (k.to_lowercase(), v)))
}

fn string(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("{what} must be a string, got {}", kind(other))),
    }
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| format!("{what} must be a 32-bit integer, got {n}")),
        other => Err(format!("{what} must be a number, got {}", kind(other))),
    }
}

impl RawSub {
    fn decode(v: &Value) -> Result<RawSub, String> {
        let mut s = RawSub::default();
        for (k, v) in fields(v, "a subscription")? {
            match k.as_str() {
                "pubsubname" => s.pubsubname = string(v, "pubsubname")?,
                "topic" => s.topic = string(v, "topic")?,
                "route" => s.route = string(v, "route")?,
                "deadlettertopic" => s.dead_letter_topic = string(v, "deadLetterTopic")?,
                "routes" => {
                    // Decoding into an existing struct: a repeated key merges, as in Go.
                    for (k, v) in fields(v, "routes")? {
                        match k.as_str() {
                            "default" => s.default = string(v, "routes.default")?,
                            "rules" => s.rules = decode_rules(v)?,
                            _ => {}
                        }
                    }
                }
                "metadata" => {
                    // A Go map: keys are exact, not case-folded.
                    if let Value::Object(m) = v {
                        for (mk, mv) in m {
                            let val = string(mv, &format!("metadata.{mk}"))?;
                            s.metadata.retain(|(k, _)| k != mk);
                            s.metadata.push((mk.clone(), val));
                        }
                    } else if !v.is_null() {
                        return Err(format!("metadata must be an object, got {}", kind(v)));
                    }
                }
                "bulksubscribe" => {
                    for (k, v) in fields(v, "bulkSubscribe")? {
                        match k.as_str() {
                            "enabled" => {
                                s.bulk_enabled = match v {
                                    Value::Null => false,
                                    Value::Bool(b) => *b,
                                    o => {
                                        return Err(format!(
                                            "bulkSubscribe.enabled must be a bool, got {}",
                                            kind(o)
                                        ));
                                    }
                                }
                            }
                            "maxmessagescount" => s.bulk_max_messages = int(v, "maxMessagesCount")?,
                            "maxawaitdurationms" => {
                                s.bulk_max_await_ms = int(v, "maxAwaitDurationMs")?
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    fn into_subscription(self) -> Result<Subscription, String> {
        let topic = self.topic;
        let raw_payload = match self.metadata.iter().find(|(k, _)| k == "rawPayload") {
            None => false,
            Some((_, v)) if v.is_empty() => false,
            Some((_, v)) => parse_go_bool(v).ok_or_else(|| {
                format!(
                    "topic {topic:?}: rawPayload value must be a valid boolean: actual is '{v}'"
                )
            })?,
        };
        let mut rules = Vec::new();
        for (expr, path) in self.rules {
            let m = parse_match(&expr).ok_or_else(|| {
                format!(
                    "topic {topic:?}: the embedded sidecar cannot evaluate the match expression \
                     {expr:?}; it supports `event.<field> == \"<string>\"` (or !=) and an empty match"
                )
            })?;
            rules.push((m, normalize(&path)));
        }
        let fallback = [self.default, self.route]
            .into_iter()
            .find(|p| !p.is_empty())
            .map(|p| normalize(&p));
        if rules.is_empty() && fallback.is_none() {
            return Err(format!("topic {topic:?}: empty routes"));
        }
        let bulk = self.bulk_enabled.then(|| BulkConfig {
            // pubsub.kafka's defaults when the app gives none.
            max_messages: usize::try_from(self.bulk_max_messages)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(80),
            max_await_ms: u64::try_from(self.bulk_max_await_ms)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(10_000),
        });
        Ok(Subscription {
            pubsub: self.pubsubname,
            topic,
            routes: Routes { rules, fallback },
            dead_letter_topic: Some(self.dead_letter_topic).filter(|t| !t.is_empty()),
            raw_payload,
            bulk,
        })
    }
}

fn decode_rules(v: &Value) -> Result<Vec<(String, String)>, String> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "routes.rules must be an array, got {}",
                kind(other)
            ));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let (mut m, mut p) = (String::new(), String::new());
        for (k, v) in fields(item, "a routes rule")? {
            match k.as_str() {
                "match" => m = string(v, "rule.match")?,
                "path" => p = string(v, "rule.path")?,
                _ => {}
            }
        }
        out.push((m, p));
    }
    Ok(out)
}

/// daprd adds a leading `/` to route paths.
fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The supported CEL subset; `None` when the expression is outside it.
fn parse_match(expr: &str) -> Option<Match> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Some(Match::Always);
    }
    let (lhs, rhs, equal) = if let Some((l, r)) = expr.split_once("==") {
        (l, r, true)
    } else {
        let (l, r) = expr.split_once("!=")?;
        (l, r, false)
    };
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix("event.")?
        .split('.')
        .map(str::to_string)
        .collect();
    let ident =
        |s: &String| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !path.iter().all(ident) {
        return None;
    }
    let rhs = rhs.trim();
    let quote = rhs.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rhs.strip_prefix(quote)?.strip_suffix(quote)?;
    if value.contains(quote) || value.contains('\\') {
        return None;
    }
    Some(Match::Compare {
        path,
        value: value.to_string(),
        equal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subs(v: Value) -> Result<Vec<Subscription>, String> {
        parse(&serde_json::to_vec(&v).unwrap(), "ps")
    }

    #[test]
    fn decodes_like_go() {
        let s = subs(json!([
            {"PubsubName": "ps", "TOPIC": "a", "route": "a-route", "deadLetterTopic": "a-dlq",
             "metadata": {"rawPayload": "true"}, "unknown": 1},
            {"pubsubname": "other", "topic": "b", "route": "/b"},
            {"pubsubname": "ps", "topic": "c", "route": "/old",
             "routes": {"default": "/c", "rules": [{"match": "event.type == \"x\"", "path": "/x"}]},
             "bulkSubscribe": {"enabled": true, "maxMessagesCount": 5}},
            {"pubsubname": "ps", "topic": "no-route"},
            {"pubsubname": "ps", "topic": "bad-raw", "route": "/r", "metadata": {"rawPayload": "yes"}},
            {"pubsubname": "ps", "topic": "cel", "routes": {"rules": [{"match": "size(event.data) > 1", "path": "/p"}]}}
        ]))
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].topic, "a");
        assert_eq!(s[0].routes.fallback.as_deref(), Some("/a-route"));
        assert_eq!(s[0].dead_letter_topic.as_deref(), Some("a-dlq"));
        assert!(s[0].raw_payload);
        assert_eq!(
            s[1].routes.fallback.as_deref(),
            Some("/c"),
            "default beats route"
        );
        assert_eq!(
            s[1].bulk,
            Some(BulkConfig {
                max_messages: 5,
                max_await_ms: 10_000
            })
        );
        let ev = json!({"type": "x"});
        assert_eq!(s[1].routes.route(&ev), Some("/x"));
        assert_eq!(s[1].routes.route(&json!({"type": "y"})), Some("/c"));
        assert_eq!(s[1].routes.route(&json!({})), Some("/c"));
    }

    #[test]
    fn type_errors_fail_everything() {
        assert!(subs(json!({"pubsubname": "ps"})).is_err());
        assert!(subs(json!([{"pubsubname": "ps", "topic": 1, "route": "/a"}])).is_err());
        assert!(
            subs(json!([{"pubsubname": "ps", "topic": "a", "route": "/a",
                             "metadata": {"rawPayload": true}}]))
            .is_err()
        );
        assert!(parse(b"not json", "ps").is_err());
        assert_eq!(parse(b"", "ps").unwrap(), vec![]);
        assert_eq!(parse(b"null", "ps").unwrap(), vec![]);
    }

    #[test]
    fn match_subset() {
        assert_eq!(parse_match(""), Some(Match::Always));
        assert!(parse_match("event.type != 'a'").is_some());
        assert!(parse_match("event.data.kind == \"b\"").is_some());
        assert!(parse_match("event.type == \"a\" && event.source == \"b\"").is_none());
        assert!(parse_match("type == \"a\"").is_none());
        let m = parse_match("event.type != 'a'").unwrap();
        let r = Routes {
            rules: vec![(m, "/p".into())],
            fallback: None,
        };
        assert_eq!(r.route(&json!({"type": "b"})), Some("/p"));
        assert_eq!(r.route(&json!({"type": "a"})), None);
        assert_eq!(
            r.route(&json!({})),
            None,
            "missing field is a CEL error: no match"
        );
    }
}
