//! Programmatic subscriptions: the one `GET /dapr/subscribe` and what daprd makes of the answer.
//!
//! Contract (dapr-contract.md §1):
//! - Method GET only, headers `content-type: application/json`, `dapr-app-id`, and
//!   `dapr-api-token` when APP_API_TOKEN is set. Fetched once per process.
//! - Transport errors are retried 3 times, exponentially from 500 ms; any HTTP answer is final.
//! - 200: the body is decoded as a Go `[]SubscriptionJSON` (first JSON value, keys matched
//!   case-insensitively, unknown keys ignored, type mismatches fatal; an empty body is no
//!   subscriptions). 404: none. Any other status: an error, and none.
//! - A body that does not decode, or a rule whose `match` does not compile, fails the whole
//!   fetch: daprd then starts no subscription at all.
//! - Routes: the rules in order, then `routes.default`, else `route`, as a catch-all rule.
//!   A subscription without any route is dropped. `metadata` values must be strings; only the
//!   exact key `rawPayload` matters, parsed like Go's `strconv.ParseBool` at delivery time.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Inner;
use super::app;
use super::cel;
use super::gojson::{self, DecodeError, GoValue};

/// A subscription as daprd holds it after the fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    pub pubsubname: String,
    pub topic: String,
    /// Routing rules in evaluation order; the catch-all (no `match`) comes last if present.
    pub rules: Vec<Rule>,
    pub dead_letter_topic: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub bulk_subscribe: BulkSubscribe,
}

/// One routing rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The CEL expression (trimmed); `None` always matches.
    pub match_expr: Option<String>,
    pub path: String,
    pub(crate) compiled: Option<cel::Expr>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.match_expr == other.match_expr && self.path == other.path
    }
}

/// `bulkSubscribe` as the app sent it (0 means the component default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkSubscribe {
    pub enabled: bool,
    pub max_messages_count: i32,
    pub max_await_duration_ms: i32,
}

impl Subscription {
    /// The catch-all route path (`routes.default`, else `route`), if any.
    pub fn default_route(&self) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.match_expr.is_none())
            .map(|r| r.path.as_str())
    }

    /// `metadata.rawPayload` as daprd reads it (`Err` when it is not a Go bool).
    pub fn raw_payload(&self) -> Result<bool, String> {
        match self.metadata.get("rawPayload").filter(|v| !v.is_empty()) {
            None => Ok(false),
            Some(v) => super::parse_go_bool(v)
                .ok_or_else(|| format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
        }
    }

    /// daprd `findMatchingRoute`: `Ok(None)` when no rule matches.
    pub(crate) fn route_for(&self, event: &GoValue) -> Result<Option<&str>, String> {
        for rule in &self.rules {
            match &rule.compiled {
                None => return Ok(Some(&rule.path)),
                Some(e) => {
                    if cel::eval_bool(e, event)? {
                        return Ok(Some(&rule.path));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// A stuck app must not hang a test: daprd itself would wait, the stand-in gives up (and, like
/// any transport error, retries) after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetch and decode the app's subscriptions.
pub(crate) async fn fetch(inner: &Inner) -> Result<Vec<Subscription>, String> {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("dapr-app-id".to_string(), inner.cfg.app_id.clone()),
    ];
    if let Some(t) = &inner.cfg.app_api_token {
        headers.push(("dapr-api-token".into(), t.clone()));
    }
    // DaprBuiltInInitializationRetries: transport errors only, 500 ms doubling, 3 retries.
    let mut delay = Duration::from_millis(500);
    let mut tries = 0;
    let reply = loop {
        let call = app::call(
            inner,
            reqwest::Method::GET,
            "/dapr/subscribe",
            &headers,
            Vec::new(),
            Some(FETCH_TIMEOUT),
        );
        match call.await {
            Ok(r) => break r,
            Err(e) if tries >= 3 || inner.shutdown.is_cancelled() => {
                return Err(format!("error getting topic list from app: {e}"));
            }
            Err(_) => {
                tries += 1;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = inner.shutdown.cancelled() => return Err("shutting down".into()),
                }
                delay *= 2;
            }
        }
    };
    match reply.status {
        200 => decode(&reply.body),
        404 => Ok(Vec::new()),
        s => Err(format!(
            "app returned http status code {s} from subscription endpoint"
        )),
    }
}

/// `json.NewDecoder(body).Decode(&[]SubscriptionJSON)` plus daprd's rule building.
pub(crate) fn decode(body: &[u8]) -> Result<Vec<Subscription>, String> {
    let items = match gojson::decode_first(body) {
        Err(DecodeError::Eof) => return Ok(Vec::new()),
        Err(e) => return Err(format!("error getting topics from app: {e}")),
        Ok(GoValue::Null) => return Ok(Vec::new()),
        Ok(GoValue::Array(items)) => items,
        Ok(other) => {
            let e = gojson::type_error(&other, "", "[]pubsub.SubscriptionJSON");
            return Err(format!("error getting topics from app: {e}"));
        }
    };
    let mut subs = Vec::new();
    for item in &items {
        let sub = decode_item(item).map_err(|e| format!("error getting topics from app: {e}"))?;
        if sub.rules.is_empty() {
            // daprd: "topic %s has an empty routes. removing from subscriptions list"
            continue;
        }
        subs.push(sub);
    }
    Ok(subs)
}

fn object<'a>(v: &'a GoValue, what: &str) -> Result<&'a [(String, GoValue)], String> {
    match v {
        GoValue::Map(p) => Ok(p),
        GoValue::Null => Ok(&[]),
        other => Err(gojson::type_error(other, what, "object")),
    }
}

fn decode_item(item: &GoValue) -> Result<Subscription, String> {
    let p = object(item, "")?;
    let routes = gojson::field(p, "routes")
        .map(|r| object(r, "routes"))
        .transpose()?
        .unwrap_or(&[]);
    let mut rules = Vec::new();
    if let Some(list) = gojson::field(routes, "rules") {
        let GoValue::Array(list) = list else {
            return Err(gojson::type_error(
                list,
                "routes.rules",
                "[]*pubsub.RuleJSON",
            ));
        };
        for r in list {
            if *r == GoValue::Null {
                // A nil *RuleJSON: daprd dereferences it; refuse the answer instead.
                return Err("null routing rule".into());
            }
            let rp = object(r, "routes.rules")?;
            let m = gojson::string_field(rp, "match")?;
            let m = m.trim();
            let compiled = if m.is_empty() {
                None
            } else {
                Some(cel::compile(m)?)
            };
            let match_expr = compiled.as_ref().map(|_| m.to_string());
            rules.push(Rule {
                match_expr,
                path: gojson::string_field(rp, "path")?,
                compiled,
            });
        }
    }
    let default = gojson::string_field(routes, "default")?;
    let route = gojson::string_field(p, "route")?;
    let catch_all = if !default.is_empty() { default } else { route };
    if !catch_all.is_empty() {
        rules.push(Rule {
            match_expr: None,
            path: catch_all,
            compiled: None,
        });
    }
    let bulk = gojson::field(p, "bulkSubscribe")
        .map(|b| object(b, "bulkSubscribe"))
        .transpose()?
        .unwrap_or(&[]);
    let dlq = gojson::string_field(p, "deadLetterTopic")?;
    Ok(Subscription {
        pubsubname: gojson::string_field(p, "pubsubname")?,
        topic: gojson::string_field(p, "topic")?,
        rules,
        dead_letter_topic: (!dlq.is_empty()).then_some(dlq),
        metadata: gojson::string_map_field(p, "metadata")?
            .unwrap_or_default()
            .into_iter()
            .collect(),
        bulk_subscribe: BulkSubscribe {
            enabled: gojson::bool_field(bulk, "enabled")?,
            max_messages_count: gojson::i32_field(bulk, "maxMessagesCount")?,
            max_await_duration_ms: gojson::i32_field(bulk, "maxAwaitDurationMs")?,
        },
    })
}
