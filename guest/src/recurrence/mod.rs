//! RFC 5545 recurrence rules (plus RFC 7529 RSCALE/SKIP), evaluated in local wall-clock time.
//!
//! Contract of [`occurrences_after`] (also wit/plugin.wit `recurrence.occurrences-after`):
//! * FREQ DAILY/WEEKLY/MONTHLY/YEARLY with INTERVAL, COUNT, UNTIL, BYDAY (ordinals for
//!   MONTHLY/YEARLY; a list is a union), BYMONTHDAY, BYMONTH, BYSETPOS, WKST (default MO) and
//!   `RSCALE=GREGORIAN;SKIP=OMIT|BACKWARD|FORWARD`. Everything else is refused with a problem
//!   naming the part: `invalid-rrule`, `unsupported-rrule`, `invalid-datetime`,
//!   `unknown-timezone`; the pointer is None (callers re-root it).
//! * Results are DTSTART's time of day on the rule's dates, as `YYYY-MM-DDTHH:MM:SS` wall-clock
//!   strings, ascending, strictly after `after` compared as instants (zoned) or as written
//!   (floating). DTSTART belongs to the set only when it matches the rule. Invalid dates are
//!   skipped unless SKIP says otherwise. A time in a DST gap keeps its nominal wall-clock time
//!   in the output and is compared as the instant §3.3.5 gives it (shifted by the gap).
//! * UNTIL is inclusive; COUNT counts the set from DTSTART.
//! * Bounded work: at most [`MAX_LIMIT`] results, years 1..=9999, and the search gives up after
//!   a run of empty periods (see `MAX_EMPTY_PERIODS`), so a rule that never matches (Feb 30)
//!   returns an empty list quickly. Without COUNT the search starts at the period containing
//!   `after`, so the cost does not grow with the distance from DTSTART.
//!
//! Files: `rule` parses and validates, `expand` builds one period's dates, `zone` converts
//! wall-clock times to instants. Task semantics (anchor, missed, clamp) live in `crate::series`.

pub(crate) mod expand;
pub(crate) mod rule;
pub(crate) mod zone;

#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_invalid;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_rfc;
#[cfg(test)]
mod tests_series;
#[cfg(test)]
mod tests_series_inputs;

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use crate::problem::Problem;
use expand::{MAX_YEAR, expand_period, period_key, period_step};
use rule::{Freq, Rule, Until};
use zone::Zone;
pub use zone::{format_local, parse_local};

/// The most occurrences one call returns, whatever `limit` asks for.
pub const MAX_LIMIT: u32 = 10_000;

/// Consecutive periods without a single date after which a search gives up: about 50 years
/// for DAILY, WEEKLY and MONTHLY, and a whole 400-year Gregorian cycle for YEARLY (cheap, and
/// exact: a yearly pattern that is empty for 400 years is empty forever).
fn max_empty_periods(freq: Freq) -> u32 {
    match freq {
        Freq::Daily => 50 * 366,
        Freq::Weekly => 50 * 53,
        Freq::Monthly => 50 * 12,
        Freq::Yearly => 400,
    }
}

/// The first `limit` occurrences of `rule` strictly after `after`, ascending; see the module
/// doc and wit/plugin.wit `recurrence.occurrences-after` for the full contract.
pub fn occurrences_after(
    rule: &str,
    dtstart: &str,
    tz: Option<&str>,
    after: &str,
    limit: u32,
) -> Result<Vec<String>, Problem> {
    let zone = Zone::parse(tz)?;
    let rule = Rule::parse(rule)?;
    let dtstart = parse_local("dtstart", dtstart)?;
    let after = parse_local("after", after)?;
    let found = occurrences(&rule, dtstart, zone, zone.key(after), limit)?;
    Ok(found.into_iter().map(format_local).collect())
}

/// Checks an RRULE value on its own (syntax, ranges, combinations of parts), without DTSTART.
/// The UNTIL form is checked against the zone only by [`occurrences_after`].
pub fn validate_rule(rule: &str) -> Result<(), Problem> {
    Rule::parse(rule).map(|_| ())
}

/// Checks a time zone name: `Ok` for a known IANA name, `unknown-timezone` otherwise.
pub fn validate_timezone(tz: &str) -> Result<(), Problem> {
    Zone::parse(Some(tz)).map(|_| ())
}

/// The engine on typed inputs: occurrences whose comparison key (see [`Zone::key`]) is after
/// `after_key`. Used by `occurrences_after` and by `crate::series`.
pub(crate) fn occurrences(
    rule: &Rule,
    dtstart: NaiveDateTime,
    zone: Zone,
    after_key: NaiveDateTime,
    limit: u32,
) -> Result<Vec<NaiveDateTime>, Problem> {
    rule.check_until_form(zone)?;
    let limit = limit.min(MAX_LIMIT) as usize;
    let mut found = Vec::new();
    if limit == 0 {
        return Ok(found);
    }
    let start_date = dtstart.date();
    let time = dtstart.time();
    let base = period_key(rule, start_date);
    let step = period_step(rule);
    // COUNT numbers the set from DTSTART, so every period from the first one must be counted,
    // unless each period is known to hold exactly one date: then skipping k periods skips k.
    let walk_from_start = rule.count.is_some() && !one_per_period(rule, start_date);
    let first_period = if walk_from_start {
        0
    } else {
        jump_period(
            rule,
            start_date,
            base,
            step,
            zone.local_of_key(after_key).date(),
        )
    };

    // Members of the set so far (for COUNT).
    let mut seen = u32::try_from(first_period).unwrap_or(u32::MAX);
    let mut last: Option<NaiveDate> = None;
    let mut empty_run = 0u32;
    let mut dates = Vec::new();
    let mut period = first_period;
    let key_of = |period: i64| period.checked_mul(step).and_then(|o| o.checked_add(base));
    while let Some(key) = key_of(period) {
        if !expand_period(rule, start_date, key, &mut dates) {
            break;
        }
        if dates.is_empty() {
            empty_run += 1;
            if empty_run >= max_empty_periods(rule.freq) {
                break;
            }
        } else {
            empty_run = 0;
        }
        for &date in &dates {
            // The set starts at DTSTART; SKIP=FORWARD/BACKWARD can move a date into a
            // neighbouring period, so never repeat or go back.
            if date < start_date || date.year() > MAX_YEAR || last.is_some_and(|l| date <= l) {
                continue;
            }
            last = Some(date);
            let occurrence = date.and_time(time);
            if past_until(rule.until, zone, occurrence) {
                return Ok(found);
            }
            seen = seen.saturating_add(1);
            if rule.count.is_some_and(|count| seen > count) {
                return Ok(found);
            }
            if zone.key(occurrence) > after_key {
                found.push(occurrence);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
        period += 1;
    }
    Ok(found)
}

/// The first period worth expanding for a search after `after_date`: the one containing a date
/// two days earlier (a DST shift moves an instant by hours, never days), minus one more period
/// (SKIP can move a date into the next month), never before DTSTART's period.
fn jump_period(rule: &Rule, start: NaiveDate, base: i64, step: i64, after_date: NaiveDate) -> i64 {
    let probe = after_date
        .checked_sub_days(chrono::Days::new(2))
        .unwrap_or(after_date);
    if probe <= start {
        return 0;
    }
    let distance = period_key(rule, probe) - base;
    (distance.div_euclid(step) - 1).max(0)
}

/// Whether every period of the rule holds exactly one date, on or after DTSTART: no BY parts,
/// and DTSTART's day exists in every month (or SKIP moves it to a valid, distinct day).
fn one_per_period(rule: &Rule, start: NaiveDate) -> bool {
    if rule.has_by_parts() {
        return false;
    }
    let moved = rule.skip != rule::Skip::Omit;
    match rule.freq {
        Freq::Daily | Freq::Weekly => true,
        Freq::Monthly => moved || start.day() <= 28,
        Freq::Yearly => moved || !(start.month() == 2 && start.day() == 29),
    }
}

/// Whether an occurrence lies beyond the inclusive UNTIL.
fn past_until(until: Option<Until>, zone: Zone, occurrence: NaiveDateTime) -> bool {
    match until {
        None => false,
        Some(Until::Date(date)) => occurrence.date() > date,
        Some(Until::Floating(limit)) => occurrence > limit,
        // Only reachable with a zone (check_until_form), so the key is the UTC instant.
        Some(Until::Utc(limit)) => zone.key(occurrence) > limit,
    }
}
