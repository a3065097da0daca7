//! State API with the Redis state store's semantics: ETags, first-write, re-encoded values.
//!
//! Contract (dapr-contract.md §5 "State"), following components-contrib `state/redis`:
//! - Keys are stored as `<appId>||<key>`; a key containing `||` is 400 `ERR_MALFORMED_REQUEST`;
//!   an unknown store is 400 `ERR_STATE_STORE_NOT_FOUND`, no stores 500
//!   `ERR_STATE_STORE_NOT_CONFIGURED`.
//! - Save (`POST|PUT /v1.0/state/{store}`): a JSON array, decoded with Go rules (400
//!   `ERR_MALFORMED_REQUEST` otherwise). Each item runs Redis' set script: it writes when the key
//!   is missing, when the ETag equals the stored version, or when no ETag is given and the key
//!   was never written with first-write. A failing item with an ETag is 409 `ERR_STATE_SAVE`;
//!   **without an ETag it is 500** ("failed to set key": first-write on an existing key). A
//!   non-numeric ETag (with first-write or default concurrency) is 400; last-write ignores the
//!   ETag. Versions count "1", "2", ... per key and restart after a delete.
//! - Values are decoded as Go `any` (float64 numbers) and stored as jsoniter `ConfigFastest`
//!   writes them: 6 fractional digits for floats up to 0x4ffffff, **object keys in random
//!   order** (Go map order), no HTML escaping. GET returns those bytes.
//! - Get: 200 + `ETag` header + value; missing key 204 with no ETag.
//! - Delete: ETag from `If-Match`, compared as a string; mismatch 409 `ERR_STATE_DELETE`.
//! - `metadata.ttlInSeconds` expires a key (<= 0 persists it); a bad value is 500.
//!
//! `Faults::state_fail_next` turns the next store operations into 500s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::Inner;
use super::api::Reply;
use super::gojson::{self, GoValue};
use super::redis_value::jsoniter_fastest;

#[derive(Clone, Debug)]
struct Entry {
    data: Vec<u8>,
    version: u64,
    first_write: bool,
    expires: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct Store {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl Store {
    fn live(&self, store: &str, key: &str) -> Option<Entry> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let k = (store.to_string(), key.to_string());
        if map.get(&k)?.expires.is_some_and(|t| t <= Instant::now()) {
            map.remove(&k);
            return None;
        }
        map.get(&k).cloned()
    }

    /// For tests: the value (as JSON) and ETag of `<app_id>||key`.
    pub(crate) fn peek(&self, store: &str, full_key: &str) -> Option<(serde_json::Value, String)> {
        let e = self.live(store, full_key)?;
        let v = serde_json::from_slice(&e.data).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&e.data).into_owned())
        });
        Some((v, e.version.to_string()))
    }
}

fn check_store(inner: &Inner, store: &str) -> Result<(), Reply> {
    if inner.cfg.state_stores.is_empty() {
        let msg = "state store is not configured";
        return Err(Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_CONFIGURED",
            msg,
        ));
    }
    if !inner.cfg.state_stores.iter().any(|s| s == store) {
        let msg = format!("state store {store} is not found");
        return Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "ERR_STATE_STORE_NOT_FOUND",
            &msg,
        ));
    }
    Ok(())
}

fn full_key(inner: &Inner, key: &str) -> Result<String, Reply> {
    if key.contains("||") {
        let msg = format!("input key/keyPrefix '{key}' can't contain '||'");
        return Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            &msg,
        ));
    }
    Ok(format!("{}||{}", inner.cfg.app_id, key))
}

fn injected(inner: &Inner, code: &str) -> Option<Reply> {
    let msg = "injected state store failure (stand-in fault)";
    inner
        .faults
        .take_state_failure()
        .then(|| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, code, msg))
}

pub(crate) fn get(inner: &Inner, store: &str, key: &str) -> Reply {
    let fk = match check_store(inner, store).and_then(|_| full_key(inner, key)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if let Some(r) = injected(inner, "ERR_STATE_GET") {
        return r;
    }
    match inner.state.live(store, &fk) {
        None => Reply::empty(StatusCode::NO_CONTENT),
        Some(e) => Reply {
            etag: Some(e.version.to_string()),
            ..Reply::json(StatusCode::OK, e.data)
        },
    }
}

pub(crate) fn delete(
    inner: &Inner,
    store: &str,
    key: &str,
    etag: Option<&str>,
    query: &[(String, String)],
) -> Reply {
    let fk = match check_store(inner, store).and_then(|_| full_key(inner, key)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let opt = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    if let Err(e) = check_options(opt("concurrency"), opt("consistency")) {
        let msg = format!("failed deleting state with key {key}: {e}");
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "ERR_STATE_DELETE", &msg);
    }
    if let Some(r) = injected(inner, "ERR_STATE_DELETE") {
        return r;
    }
    let current = inner.state.live(store, &fk);
    let arg = etag.unwrap_or("0");
    // Redis delete script: deletes when missing, when the version matches, or without an ETag.
    let ok = current
        .as_ref()
        .is_none_or(|e| e.version.to_string() == arg || arg == "0");
    if !ok {
        let msg = format!(
            "failed deleting state with key {key}: possible etag mismatch. error from state store: failed to delete {fk}"
        );
        return Reply::error(StatusCode::CONFLICT, "ERR_STATE_DELETE", &msg);
    }
    let mut map = inner
        .state
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.remove(&(store.to_string(), fk));
    Reply::empty(StatusCode::NO_CONTENT)
}

/// One decoded save item.
struct Item {
    key: String,
    value: GoValue,
    etag: Option<String>,
    metadata: BTreeMap<String, String>,
    concurrency: String,
    consistency: String,
}

pub(crate) fn save(
    inner: &Inner,
    store: &str,
    body: &[u8],
    query_md: &BTreeMap<String, String>,
) -> Reply {
    if let Err(r) = check_store(inner, store) {
        return r;
    }
    let items = match decode_items(body) {
        Ok(items) => items,
        Err(e) => {
            let msg = format!("failed deserializing HTTP body: {e}");
            return Reply::error(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", &msg);
        }
    };
    let mut keys = Vec::with_capacity(items.len());
    for item in &items {
        if item.key.is_empty() {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                "state key is empty",
            );
        }
        match full_key(inner, &item.key) {
            Ok(k) => keys.push(k),
            Err(r) => return r,
        }
    }
    // daprd's bulk save runs every item and joins the errors; an ETag error decides the code.
    let mut first_err: Option<(StatusCode, String)> = None;
    for (item, fk) in items.into_iter().zip(keys) {
        if let Err((code, msg)) = set(inner, store, &fk, item, query_md) {
            let etag_kind = code != StatusCode::INTERNAL_SERVER_ERROR;
            if first_err
                .as_ref()
                .is_none_or(|(c, _)| *c == StatusCode::INTERNAL_SERVER_ERROR && etag_kind)
            {
                first_err = Some((code, msg));
            }
        }
    }
    match first_err {
        None => Reply::empty(StatusCode::NO_CONTENT),
        Some((code, msg)) => {
            let msg = format!("failed saving state in state store {store}: {msg}");
            Reply::error(code, "ERR_STATE_SAVE", &msg)
        }
    }
}

fn check_options(concurrency: &str, consistency: &str) -> Result<(), String> {
    if !matches!(consistency, "" | "strong" | "eventual") {
        return Err(format!("unrecognized consistency model '{consistency}'"));
    }
    if !matches!(concurrency, "" | "first-write" | "last-write") {
        return Err(format!("unrecognized concurrency model '{concurrency}'"));
    }
    Ok(())
}

/// components-contrib redis `Set`, with its Lua script inlined.
fn set(
    inner: &Inner,
    store: &str,
    fk: &str,
    mut item: Item,
    query_md: &BTreeMap<String, String>,
) -> Result<(), (StatusCode, String)> {
    let internal = |m: String| (StatusCode::INTERNAL_SERVER_ERROR, m);
    check_options(&item.concurrency, &item.consistency).map_err(internal)?;
    item.metadata
        .extend(query_md.iter().map(|(k, v)| (k.clone(), v.clone())));
    let ver: i64 = match item.etag.as_deref() {
        _ if item.concurrency == "last-write" => 0,
        None | Some("") => 0,
        Some(e) => e.parse::<i64>().map_err(|err| {
            (
                StatusCode::BAD_REQUEST,
                format!("invalid etag value: strconv.Atoi: parsing {e:?}: {err}"),
            )
        })?,
    };
    let ttl: Option<i64> = match item.metadata.get("ttlInSeconds").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| internal(format!("failed to parse ttl from metadata: {v}")))?,
        ),
    };
    if inner.faults.take_state_failure() {
        return Err(internal(
            "injected state store failure (stand-in fault)".into(),
        ));
    }
    let data = jsoniter_fastest(&item.value).map_err(internal)?;
    let mut map = inner
        .state
        .entries
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let k = (store.to_string(), fk.to_string());
    if map
        .get(&k)
        .is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now()))
    {
        map.remove(&k);
    }
    let current = map.get(&k);
    let writable = match current {
        None => true,
        Some(e) => e.version.to_string() == ver.to_string() || (!e.first_write && ver == 0),
    };
    if !writable {
        let err = format!("ERR Error running script: failed to set key {fk}");
        return Err(if item.etag.is_some() {
            (
                StatusCode::CONFLICT,
                format!("possible etag mismatch. error from state store: {err}"),
            )
        } else {
            internal(format!("failed to set key {fk}: {err}"))
        });
    }
    let entry = Entry {
        data,
        version: current.map_or(0, |e| e.version) + 1,
        first_write: current.is_some_and(|e| e.first_write) || item.concurrency == "first-write",
        expires: match ttl {
            Some(t) if t > 0 => Some(Instant::now() + Duration::from_secs(t.unsigned_abs())),
            Some(_) => None,
            None => current.and_then(|e| e.expires),
        },
    };
    map.insert(k, entry);
    Ok(())
}

/// daprd decodes the body with `json.Unmarshal` into a slice of structs.
fn decode_items(body: &[u8]) -> Result<Vec<Item>, String> {
    let v = gojson::unmarshal(body).map_err(|e| e.to_string())?;
    let list = match v {
        GoValue::Array(items) => items,
        GoValue::Null => Vec::new(),
        other => return Err(gojson::type_error(&other, "", "[]state.SetRequest")),
    };
    list.iter()
        .map(|item| {
            let pairs: &[(String, GoValue)] = match item {
                GoValue::Map(p) => p,
                GoValue::Null => &[],
                other => return Err(gojson::type_error(other, "", "state.SetRequest")),
            };
            let value = gojson::field(pairs, "value")
                .cloned()
                .unwrap_or(GoValue::Null);
            let etag = match gojson::field(pairs, "etag") {
                None => None,
                Some(GoValue::String(s)) => Some(s.clone()),
                Some(other) => return Err(gojson::type_error(other, "etag", "string")),
            };
            let (concurrency, consistency) = match gojson::field(pairs, "options") {
                None => (String::new(), String::new()),
                Some(GoValue::Map(o)) => (
                    gojson::string_field(o, "concurrency")?,
                    gojson::string_field(o, "consistency")?,
                ),
                Some(other) => {
                    return Err(gojson::type_error(other, "options", "state.SetStateOption"));
                }
            };
            Ok(Item {
                key: gojson::string_field(pairs, "key")?,
                // Go's `any` holds float64 numbers: big integers lose digits here, as in daprd.
                value: gojson::to_float64_numbers(&value)?,
                etag,
                metadata: gojson::string_map_field(pairs, "metadata")?
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                concurrency,
                consistency,
            })
        })
        .collect()
}
