//! 1.0 <-> 1.1: `payload.recurrence` appears.
//!
//! Up: the series fields a 1.0 payload keeps flat (`dtstart`, `series_id`, `occurrence_index`)
//! move into `payload.recurrence`, at the position of the first of them. Nothing else changes:
//! `recurring_pattern` stays where it is, as 1.1's shorthand.
//!
//! Down: the series fields move back out, in place of `recurrence`. Every other recurrence
//! field must be something 1.0 already implies, or it is a `lossy-migration` at its pointer:
//! - `rrule` must be a bare shorthand (`FREQ=X`, optionally `INTERVAL=1`) agreeing with any
//!   `recurring_pattern` (which it then becomes if absent);
//! - month overflow must be `clamp` (1.0's shorthand behaviour) for MONTHLY and YEARLY: an
//!   explicit RRULE defaults to RFC skipping, so it needs `month_overflow: "clamp"` to go down;
//! - `interval` 1, `anchor` schedule, `missed` skip, no `tzid`, no `until`, no `count`, no
//!   `exdates` or `rdates` (an empty list is dropped: it says nothing).

use serde_json::{Map, Value};

use super::rewrite::{gather, splice};
use super::set_version;
use crate::problem::Problem;
use crate::schema::recurrence::{EXCEPTION_KEYS, Pattern, SERIES_FIELDS, shorthand_of};
use crate::schema::{Version, codes};

const PAYLOAD: &str = "payload";
const REC: &str = "/payload/recurrence";

pub fn up(mut event: Map<String, Value>) -> Map<String, Value> {
    set_version(&mut event, Version::V1_1);
    if let Some(Value::Object(payload)) = event.get_mut(PAYLOAD) {
        *payload = gather(std::mem::take(payload), &SERIES_FIELDS, "recurrence");
    }
    event
}

pub fn down(mut event: Map<String, Value>) -> (Map<String, Value>, Vec<Problem>) {
    set_version(&mut event, Version::V1_0);
    let Some(Value::Object(payload)) = event.get(PAYLOAD).cloned() else {
        return (event, Vec::new());
    };
    let rec = match payload.get("recurrence") {
        Some(Value::Object(rec)) => rec.clone(),
        // `null` means no recurrence in 1.1, and the key does not exist in 1.0.
        Some(_) => Map::new(),
        None => return (event, Vec::new()),
    };
    let pattern = payload
        .get("recurring_pattern")
        .and_then(Value::as_str)
        .and_then(Pattern::parse);
    let (new_pattern, problems) = check_expressible(&rec, pattern);
    let mut flat: Vec<(String, Value)> = Vec::new();
    if let Some(p) = new_pattern {
        flat.push(("recurring_pattern".into(), Value::String(p.as_str().into())));
    }
    flat.extend(
        rec.into_iter()
            .filter(|(k, _)| SERIES_FIELDS.contains(&k.as_str())),
    );
    let payload = splice(payload, "recurrence", flat);
    // `insert` on an existing key keeps its position (`remove` would not: it swaps).
    event.insert(PAYLOAD.into(), Value::Object(payload));
    (event, problems)
}

/// What in `rec` 1.0 cannot say, and the shorthand to write when the rule is an RRULE and the
/// payload has no `recurring_pattern` yet.
fn check_expressible(
    rec: &Map<String, Value>,
    pattern: Option<Pattern>,
) -> (Option<Pattern>, Vec<Problem>) {
    let get = |k: &str| rec.get(k).filter(|v| !v.is_null());
    let text = |k: &str| get(k).and_then(Value::as_str);
    let mut problems = Vec::new();
    let mut lossy = |key: &str, why: String| {
        problems.push(Problem::at(
            codes::LOSSY_MIGRATION,
            format!("{REC}/{key}"),
            format!("1.0 cannot express {why}"),
        ));
    };
    let mut effective = pattern;
    let mut new_pattern = None;
    if let Some(rrule) = text("rrule") {
        // Once the rule itself cannot go down, its overflow behaviour is moot (one problem).
        match (shorthand_of(rrule), pattern) {
            (None, _) => {
                effective = None;
                lossy(
                    "rrule",
                    format!("the rule '{rrule}' (only DAILY, WEEKLY, MONTHLY, YEARLY)"),
                );
            }
            (Some(s), Some(p)) if s != p => {
                effective = None;
                lossy(
                    "rrule",
                    format!(
                        "the rule '{rrule}' next to recurring_pattern {} (1.0 has one)",
                        p.as_str()
                    ),
                );
            }
            (Some(s), found) => {
                effective = Some(s);
                new_pattern = found.is_none().then_some(s);
            }
        }
    }
    // An explicit RRULE skips overflowing dates unless told to clamp; 1.0's shorthand clamps.
    let overflow = text("month_overflow").unwrap_or(if get("rrule").is_some() {
        "skip"
    } else {
        "clamp"
    });
    if overflow == "skip" && effective.is_some_and(Pattern::overflow_matters) {
        let at = if get("month_overflow").is_some() {
            "month_overflow"
        } else {
            "rrule"
        };
        lossy(
            at,
            "skipping short months (1.0's MONTHLY and YEARLY clamp to the month's last day)".into(),
        );
    }
    if let Some(n) = get("interval").and_then(Value::as_u64).filter(|n| *n != 1) {
        lossy("interval", format!("interval {n}"));
    }
    if let Some(tz) = text("tzid") {
        lossy("tzid", format!("a time zone ('{tz}')"));
    }
    for (key, implied) in [("anchor", "schedule"), ("missed", "skip")] {
        if let Some(v) = text(key).filter(|v| *v != implied) {
            lossy(key, format!("{key} '{v}' (1.0 always means '{implied}')"));
        }
    }
    for key in ["until", "count"] {
        if get(key).is_some() {
            lossy(key, format!("an end condition ({key})"));
        }
    }
    // An empty list says nothing 1.0 cannot; any date in it would be silently lost.
    for key in EXCEPTION_KEYS {
        if get(key).is_some_and(|v| v.as_array().is_none_or(|dates| !dates.is_empty())) {
            lossy(key, format!("exceptions to the rule ({key})"));
        }
    }
    (new_pattern, problems)
}
