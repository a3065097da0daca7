//! The recurrence of a task as an event states it: where each field lives per version, what
//! values it may take, which combinations contradict each other.
//!
//! Layout:
//! - every version: `payload.recurring_pattern`, the seed's shorthand `DAILY|WEEKLY|MONTHLY|
//!   YEARLY` (read by `series::expand_shorthand`, so its spelling rules are the engine's).
//! - 1.0: the series fields ([`SERIES_FIELDS`]: `dtstart`, `series_id`, `occurrence_index`)
//!   sit flat in the payload, which 1.0 treats as a free-form object; `payload.recurrence` does
//!   not exist.
//! - 1.1 and 2.0: `payload.recurrence` holds [`RECURRENCE_KEYS`] (the series fields included);
//!   other keys in it are refused so a typo never silently changes a schedule.
//!
//! `exdates` and `rdates` (1.1+) are arrays of date values (date-only, local or instant, like
//! `dtstart`), at most [`MAX_EXCEPTIONS`] together: occurrences removed from and added to the
//! rule's, as iCalendar's EXDATE and RDATE (`crate::recurrence::exceptions`).
//!
//! `rrule` wins over `recurring_pattern` when both are present. `interval` only qualifies the
//! shorthand (an RRULE states its own INTERVAL). Defaults (applied by the handler, echoed
//! explicitly into every `task.created`): anchor `schedule`, missed `skip`, month_overflow
//! `clamp` for the shorthand and `skip` (RFC 5545) for an explicit RRULE.

use chrono_tz::Tz;

use super::clock::Clock;
use super::codes;
use super::fields::{Obj, Problems};
use super::time::{DateKind, DateValue, format_local};
use super::version::Version;
use crate::recurrence;
use crate::recurrence::exceptions::MAX_EXCEPTIONS;
use crate::series::{self, Anchor, Missed, MonthOverflow};

/// Series bookkeeping fields: flat in a 1.0 payload, inside `payload.recurrence` from 1.1.
pub const SERIES_FIELDS: [&str; 3] = ["dtstart", "series_id", "occurrence_index"];

/// Keys of `payload.recurrence` (1.1+), in the order emitted events write them.
pub const RECURRENCE_KEYS: [&str; 13] = [
    "rrule",
    "interval",
    "dtstart",
    "tzid",
    "anchor",
    "missed",
    "month_overflow",
    "until",
    "count",
    "exdates",
    "rdates",
    "series_id",
    "occurrence_index",
];

/// Keys of `payload.recurrence` that hold a list of date values.
pub const EXCEPTION_KEYS: [&str; 2] = ["exdates", "rdates"];

/// The seed's shorthand frequencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Pattern {
    pub const ALL: [Pattern; 4] = [
        Pattern::Daily,
        Pattern::Weekly,
        Pattern::Monthly,
        Pattern::Yearly,
    ];

    /// Same spelling rules as `series::expand_shorthand` (case-insensitive, trimmed).
    pub fn parse(s: &str) -> Option<Pattern> {
        let s = s.trim();
        Pattern::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Daily => "DAILY",
            Pattern::Weekly => "WEEKLY",
            Pattern::Monthly => "MONTHLY",
            Pattern::Yearly => "YEARLY",
        }
    }

    /// Whether month overflow (the 31st, Feb 29) can happen at this frequency.
    pub fn overflow_matters(self) -> bool {
        matches!(self, Pattern::Monthly | Pattern::Yearly)
    }
}

/// What an event says about its recurrence: explicit values only, defaults resolved by methods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecurrenceSpec {
    /// `recurring_pattern` as written, and its meaning.
    pub pattern: Option<(String, Pattern)>,
    pub rrule: Option<String>,
    pub interval: Option<u32>,
    pub dtstart: Option<DateValue>,
    pub tzid: Option<Tz>,
    pub anchor: Option<Anchor>,
    pub missed: Option<Missed>,
    pub month_overflow: Option<MonthOverflow>,
    pub until: Option<DateValue>,
    pub count: Option<u32>,
    /// EXDATE values, as written.
    pub exdates: Vec<DateValue>,
    /// RDATE values, as written.
    pub rdates: Vec<DateValue>,
    pub series_id: Option<String>,
    pub occurrence_index: Option<u32>,
}

impl RecurrenceSpec {
    /// The RRULE the series runs: the explicit one, else the expanded shorthand.
    pub fn rule_text(&self) -> Option<String> {
        if let Some(r) = &self.rrule {
            return Some(r.clone());
        }
        let (raw, _) = self.pattern.as_ref()?;
        series::expand_shorthand(raw, self.interval).ok()
    }

    /// Clamp for the shorthand, RFC skip for an explicit RRULE, unless stated.
    pub fn effective_overflow(&self) -> MonthOverflow {
        self.month_overflow.unwrap_or(if self.rrule.is_some() {
            MonthOverflow::Skip
        } else {
            MonthOverflow::Clamp
        })
    }
}

/// The parts of an RRULE as upper-case `(NAME, VALUE)` pairs; only for questions the schema asks
/// (does it carry COUNT? is it a bare shorthand?). Validity is the engine's business.
pub fn rule_parts(rrule: &str) -> Vec<(String, String)> {
    rrule
        .trim()
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_uppercase(), v.trim().to_ascii_uppercase()),
            None => (part.trim().to_ascii_uppercase(), String::new()),
        })
        .collect()
}

/// The shorthand an RRULE is exactly equal to (`FREQ=X`, optionally `INTERVAL=1`), if any.
pub fn shorthand_of(rrule: &str) -> Option<Pattern> {
    let parts = rule_parts(rrule);
    let mut freq = None;
    for (name, value) in &parts {
        match (name.as_str(), value.as_str()) {
            ("FREQ", v) if freq.is_none() => freq = Some(Pattern::parse(v)?),
            ("INTERVAL", "1") => {}
            _ => return None,
        }
    }
    freq
}

/// Reads the recurrence of `payload` for `version`; None when the task does not recur.
pub(super) fn read(payload: Obj<'_>, version: Version, p: &mut Problems) -> Option<RecurrenceSpec> {
    let mut spec = RecurrenceSpec::default();
    if let Some(raw) = p.opt_str(payload, "recurring_pattern") {
        match series::expand_shorthand(raw, None) {
            Ok(_) => spec.pattern = Pattern::parse(raw).map(|pat| (raw.to_string(), pat)),
            Err(e) => p.0.push(e.under(&payload.ptr("recurring_pattern"))),
        }
    }
    let rec_ptr = payload.ptr("recurrence");
    // Whether the event declares a series beyond the bare shorthand, and whether it names a
    // rule at all (even a malformed one, which has its own problem already).
    let declared;
    let mut rule_given = payload.get("recurring_pattern").is_some();
    if version.has_recurrence_object() {
        // Presence, not value, decides the layout: a `null` here would collide with the
        // field of the same name when migrating down to 1.0.
        for key in SERIES_FIELDS {
            if payload.map.contains_key(key) {
                let msg = format!("in event_version {version}, {key} lives at {rec_ptr}/{key}");
                p.push(codes::UNKNOWN_FIELD, payload.ptr(key), msg);
            }
        }
        let Some(rec) = p.opt_object(payload, "recurrence") else {
            return spec.pattern.is_some().then_some(spec);
        };
        let rec = Obj::new(rec, &rec_ptr);
        for key in rec
            .map
            .keys()
            .filter(|k| !RECURRENCE_KEYS.contains(&k.as_str()))
        {
            let msg =
                format!("'{key}' is not a recurrence field (expected one of {RECURRENCE_KEYS:?})");
            p.push(codes::UNKNOWN_FIELD, rec.ptr(key), msg);
        }
        read_series_fields(rec, &mut spec, p);
        read_rule_fields(rec, &mut spec, p);
        rule_given |= rec.get("rrule").is_some();
        declared = true;
    } else {
        if payload.map.contains_key("recurrence") {
            let msg = "payload.recurrence needs event_version 1.1 or later (1.0 has recurring_pattern only)";
            p.push(codes::UNKNOWN_FIELD, rec_ptr.clone(), msg);
        }
        declared = SERIES_FIELDS.iter().any(|k| payload.map.contains_key(*k));
        read_series_fields(payload, &mut spec, p);
    }
    if spec.pattern.is_none() && !declared {
        return None;
    }
    check_combinations(payload, &rec_ptr, version, &spec, rule_given, p);
    Some(spec)
}

fn read_series_fields(o: Obj<'_>, spec: &mut RecurrenceSpec, p: &mut Problems) {
    spec.dtstart = read_date(o, "dtstart", p);
    spec.series_id = p.opt_nonempty_str(o, "series_id").map(str::to_string);
    spec.occurrence_index = p.opt_positive(o, "occurrence_index");
}

fn read_rule_fields(rec: Obj<'_>, spec: &mut RecurrenceSpec, p: &mut Problems) {
    spec.rrule = p.opt_str(rec, "rrule").map(str::to_string);
    spec.interval = p.opt_positive(rec, "interval");
    if let Some(name) = p.opt_str(rec, "tzid") {
        spec.tzid = name.parse::<Tz>().ok();
        if spec.tzid.is_none() {
            let msg = format!("'{name}' is not an IANA time zone name (e.g. 'Europe/London')");
            p.push(codes::UNKNOWN_TIMEZONE, rec.ptr("tzid"), msg);
        }
    }
    spec.anchor = read_choice(
        rec,
        "anchor",
        &[
            ("schedule", Anchor::Schedule),
            ("completion", Anchor::Completion),
        ],
        p,
    );
    spec.missed = read_choice(
        rec,
        "missed",
        &[("skip", Missed::Skip), ("catch_up", Missed::CatchUp)],
        p,
    );
    let overflow = [
        ("clamp", MonthOverflow::Clamp),
        ("skip", MonthOverflow::Skip),
    ];
    spec.month_overflow = read_choice(rec, "month_overflow", &overflow, p);
    spec.until = read_date(rec, "until", p);
    spec.count = p.opt_positive(rec, "count");
    spec.exdates = read_dates(rec, "exdates", p);
    spec.rdates = read_dates(rec, "rdates", p);
    let total = spec.exdates.len() + spec.rdates.len();
    if total > MAX_EXCEPTIONS {
        let msg = format!("{total} exdates and rdates: at most {MAX_EXCEPTIONS} together");
        p.push(codes::INVALID_RECURRENCE, rec.at, msg);
    }
}

/// An optional array of date values (`exdates`, `rdates`); each bad item is reported at its
/// own pointer.
fn read_dates(o: Obj<'_>, key: &str, p: &mut Problems) -> Vec<DateValue> {
    let Some(value) = o.get(key) else {
        return Vec::new();
    };
    let Some(items) = value.as_array() else {
        p.wrong_type(o.ptr(key), "array of date strings", value);
        return Vec::new();
    };
    let at = o.ptr(key);
    let mut dates = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_at = format!("{at}/{i}");
        let Some(raw) = item.as_str() else {
            p.wrong_type(item_at, "string", item);
            continue;
        };
        match DateValue::parse(raw) {
            Some(date) => dates.push(date),
            None => {
                let msg = format!(
                    "'{raw}' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or an RFC 3339 date-time"
                );
                p.push(codes::INVALID_TIMESTAMP, item_at, msg);
            }
        }
    }
    dates
}

fn check_combinations(
    payload: Obj<'_>,
    rec_ptr: &str,
    version: Version,
    spec: &RecurrenceSpec,
    rule_given: bool,
    p: &mut Problems,
) {
    let at = |key: &str| format!("{rec_ptr}/{key}");
    if !rule_given {
        if version.has_recurrence_object() {
            let msg = format!(
                "a recurrence needs an rrule (or {})",
                payload.ptr("recurring_pattern")
            );
            p.push(codes::MISSING_FIELD, at("rrule"), msg);
        } else {
            let msg = format!(
                "{SERIES_FIELDS:?} describe a recurring task: recurring_pattern is required with them"
            );
            p.push(codes::MISSING_FIELD, payload.ptr("recurring_pattern"), msg);
        }
    }
    if let Some(n) = spec.interval {
        if spec.rrule.is_some() {
            p.push(
                codes::INVALID_RECURRENCE,
                at("interval"),
                "interval qualifies recurring_pattern only: put INTERVAL in the rrule",
            );
        } else if let Some((raw, _)) = &spec.pattern
            && let Err(e) = series::expand_shorthand(raw, Some(n))
        {
            p.0.push(e.under(&at("interval")));
        }
    }
    if spec.until.is_some() && spec.count.is_some() {
        p.push(
            codes::INVALID_RECURRENCE,
            rec_ptr,
            "until and count are exclusive: give one end condition",
        );
    }
    if let Some(rrule) = &spec.rrule {
        let parts = rule_parts(rrule);
        let has = |name: &str| parts.iter().any(|(n, _)| n == name);
        for (key, present) in [
            ("until", spec.until.is_some()),
            ("count", spec.count.is_some()),
        ] {
            if present && (has("COUNT") || has("UNTIL")) {
                let msg = format!(
                    "the rrule already has an end (COUNT or UNTIL); remove {key} or the rule's end"
                );
                p.push(codes::INVALID_RECURRENCE, at(key), msg);
            }
        }
        if spec.month_overflow.is_some() && has("SKIP") {
            let msg = "the rrule's SKIP decides month overflow; remove month_overflow or SKIP";
            p.push(codes::INVALID_RECURRENCE, at("month_overflow"), msg);
        }
    }
}

/// A date value field (`due_date`, `dtstart`, `until`, ...): `invalid-timestamp` if unparsable.
pub(super) fn read_date(o: Obj<'_>, key: &str, p: &mut Problems) -> Option<DateValue> {
    let raw = p.opt_str(o, key)?;
    let value = DateValue::parse(raw);
    if value.is_none() {
        let msg =
            format!("'{raw}' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or an RFC 3339 date-time");
        p.push(codes::INVALID_TIMESTAMP, o.ptr(key), msg);
    }
    value
}

fn read_choice<T: Copy>(
    o: Obj<'_>,
    key: &str,
    choices: &[(&str, T)],
    p: &mut Problems,
) -> Option<T> {
    let raw = p.opt_str(o, key)?;
    let found = choices
        .iter()
        .find(|(name, _)| *name == raw)
        .map(|(_, v)| *v);
    if found.is_none() {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        p.push(
            codes::INVALID_RECURRENCE,
            o.ptr(key),
            format!("'{raw}' is not one of {names:?}"),
        );
    }
    found
}

/// Where the rule's problems are reported.
pub const RRULE_POINTER: &str = "/payload/recurrence/rrule";

/// Asks the engine whether an explicit RRULE is valid for this series (its zone decides, for
/// example, which UNTIL form is allowed), reporting its problem at [`RRULE_POINTER`].
/// `reference` is the due date (else the completion) when known. Runs even when other fields
/// are broken: with no zone to go by, only the zone-independent checks run, so no problem is
/// invented.
pub(super) fn check_rule(spec: &RecurrenceSpec, reference: Option<DateKind>, p: &mut Problems) {
    let Some(rrule) = &spec.rrule else { return };
    // With a tzid the clock is known, and any date will do as a start if none is usable.
    let any_date = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).map(DateKind::Date);
    let reference = if spec.tzid.is_some() {
        reference.or(any_date)
    } else {
        reference
    };
    let result = match reference {
        None => recurrence::validate_rule(rrule),
        Some(reference) => {
            let clock = Clock::resolve(spec.tzid, &reference);
            let start = spec.dtstart.as_ref().map(|d| d.kind).unwrap_or(reference);
            let start = format_local(clock.wall(&start));
            recurrence::occurrences_after(rrule, &start, clock.engine_tz().as_deref(), &start, 1)
                .map(|_| ())
        }
    };
    if let Err(e) = result {
        p.0.push(e.under(RRULE_POINTER));
    }
}
