//! RFC 5545 recurrence rules (plus RFC 7529 RSCALE/SKIP), evaluated in local wall-clock time.
//!
//! Contract of [`occurrences_after`] (also wit/plugin.wit `recurrence.occurrences-after`):
//! * Every RRULE part of RFC 5545 §3.3.10: FREQ SECONDLY..YEARLY, INTERVAL, COUNT, UNTIL, BYDAY
//!   (ordinals for MONTHLY/YEARLY; a list is a union), BYMONTHDAY, BYYEARDAY, BYWEEKNO (with
//!   WKST), BYMONTH, BYHOUR, BYMINUTE, BYSECOND, BYSETPOS, WKST (default MO), and RFC 7529
//!   `RSCALE=GREGORIAN;SKIP=OMIT|BACKWARD|FORWARD` (RSCALE may precede FREQ, as RFC 7529
//!   writes it). Refused with a problem naming the part: `invalid-rrule` (what the RFC forbids),
//!   `unsupported-rrule` (only what lies outside RFC 5545: another RSCALE, BYEASTER; and a
//!   sub-daily search that ran out of work, see below), `invalid-datetime`,
//!   `unknown-timezone`; the pointer is None (callers re-root it).
//! * Results are `YYYY-MM-DDTHH:MM:SS` wall-clock strings, ascending and strictly after `after`,
//!   compared as instants (zoned) or as written (floating). DTSTART belongs to the set only
//!   when it matches the rule. Invalid dates are skipped unless SKIP says otherwise; a
//!   generated second 60 is skipped too.
//! * DST: a time in a gap keeps its nominal wall-clock time in the output and is the instant
//!   RFC 5545 §3.3.5 gives it (the offset before the gap, so as much later as the gap is
//!   long). When that instant is one the set already holds, or earlier than the previous
//!   occurrence (sub-daily rules stepping through the gap), it is not repeated: the set never
//!   lists one moment twice nor goes back in time. A time that occurs twice is its first
//!   instance; rules step on the wall clock, so the repeated hour is not produced again.
//! * UNTIL is inclusive; COUNT counts the set from DTSTART.
//! * Bounded work: at most [`MAX_LIMIT`] results, years 1..=9999, and the search gives up after
//!   a run of empty periods (see `max_empty_periods`; 50 calendar years for sub-daily rules),
//!   so a rule that never matches (Feb 30) returns an empty list quickly. Sub-daily searches
//!   skip whole days and hours that fail a limit, and visit at most [`MAX_SUB_DAILY_VISITS`]
//!   periods; past that (a rule that matches rarely on its own grid, or COUNT asked about a
//!   time far from DTSTART) the answer is an `unsupported-rrule` problem naming FREQ rather
//!   than a slow or wrong list. Without COUNT the search starts at the period containing
//!   `after`, so the cost does not grow with the distance from DTSTART.
//!
//! Files: `rule` parses and validates, `expand` builds one period's set (`sub_daily` for
//! periods under a day, `calendar` for week numbers and day arithmetic), `zone` converts
//! wall-clock times to instants, `exceptions` adds EXDATE/RDATE. Task semantics (anchor,
//! missed, clamp) live in `crate::series`.

pub(crate) mod calendar;
pub(crate) mod exceptions;
pub(crate) mod expand;
pub(crate) mod rule;
pub(crate) mod sub_daily;
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

use chrono::{Datelike, NaiveDateTime, TimeDelta};

use crate::problem::Problem;
use calendar::{Expanded, MAX_YEAR};
use expand::{expand_period, period_key, period_step};
use rule::{Freq, Rule, Until};
use zone::Zone;
pub use zone::{format_date, format_local, parse_local};

/// The most occurrences one call returns, whatever `limit` asks for.
pub const MAX_LIMIT: u32 = 10_000;

/// Periods a sub-daily search may visit in one call. Empty days and hours are skipped in one
/// visit each, so only rules whose matches are rare on their own grid (or a COUNT rule asked
/// about a time far from DTSTART) reach it; they get a problem instead of a slow answer.
pub const MAX_SUB_DAILY_VISITS: u32 = 500_000;

/// Consecutive periods without a single date after which a search gives up: about 50 years
/// for DAILY, WEEKLY and MONTHLY, and a whole 400-year Gregorian cycle for YEARLY (cheap, and
/// exact: a yearly pattern that is empty for 400 years is empty forever). Sub-daily rules give
/// up after 50 years without a match too, measured on the calendar (see `quiet_limit`).
fn max_empty_periods(freq: Freq) -> u32 {
    match freq {
        Freq::Daily => 50 * 366,
        Freq::Weekly => 50 * 53,
        Freq::Monthly => 50 * 12,
        Freq::Yearly => 400,
        Freq::Hourly | Freq::Minutely | Freq::Secondly => u32::MAX,
    }
}

/// How long a sub-daily search may go without a match: its time-of-day pattern repeats within
/// 125 days (INTERVAL ≤ 1000 hours), and its day limits within a year or a leap cycle, so 50
/// years of nothing means never.
fn quiet_limit() -> TimeDelta {
    TimeDelta::days(50 * 366)
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
/// `after_key`. Used by `occurrences_after` and by `crate::series` (through `exceptions`).
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
    let base = period_key(rule, dtstart);
    let step = period_step(rule);
    // COUNT numbers the set from DTSTART, so every period from the first one must be counted,
    // unless each period is known to hold exactly one occurrence: then skipping k periods
    // skips k.
    let walk_from_start = rule.count.is_some() && !one_per_period(rule, dtstart, zone);
    let first_period = if walk_from_start {
        0
    } else {
        jump_period(rule, dtstart, base, step, zone.local_of_key(after_key))
    };

    // Members of the set so far (for COUNT).
    let mut seen = u32::try_from(first_period).unwrap_or(u32::MAX);
    // The last member, as written and as an instant: the set never repeats or goes back.
    let mut last: Option<(NaiveDateTime, NaiveDateTime)> = None;
    let mut empty_run = 0u32;
    let mut visits = 0u32;
    let mut quiet_since: Option<NaiveDateTime> = None;
    let mut set = Vec::new();
    let mut period = first_period;
    let key_of = |period: i64| period.checked_mul(step).and_then(|o| o.checked_add(base));
    while let Some(key) = key_of(period) {
        let skip_to = match expand_period(rule, dtstart, key, &mut set) {
            Expanded::Beyond => break,
            Expanded::Set { skip_to } => skip_to,
        };
        if rule.is_sub_daily() {
            visits += 1;
            if visits > MAX_SUB_DAILY_VISITS {
                return Err(too_sparse(rule));
            }
        }
        if set.is_empty() {
            empty_run += 1;
            if empty_run >= max_empty_periods(rule.freq) {
                break;
            }
        } else {
            empty_run = 0;
            quiet_since = None;
        }
        for &t in &set {
            // The set starts at DTSTART; SKIP=FORWARD/BACKWARD can move a date into a
            // neighbouring period, and a DST gap can move a time onto (or before) an instant
            // already in the set: never repeat or go back.
            let instant = zone.key(t);
            if t < dtstart
                || t.year() > MAX_YEAR
                || last.is_some_and(|(l, li)| t <= l || instant <= li)
            {
                continue;
            }
            last = Some((t, instant));
            if past_until(rule.until, zone, t) {
                return Ok(found);
            }
            seen = seen.saturating_add(1);
            if rule.count.is_some_and(|count| seen > count) {
                return Ok(found);
            }
            if instant > after_key {
                found.push(t);
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
        period = match skip_to {
            Some(target) => (period + 1).max(first_period_at_or_after(target, base, step)),
            None => period + 1,
        };
        if rule.is_sub_daily()
            && set.is_empty()
            && let Some(now) = sub_daily::start_of(rule.freq, key)
        {
            let since = *quiet_since.get_or_insert(now);
            if now.signed_duration_since(since) > quiet_limit() {
                break;
            }
        }
    }
    Ok(found)
}

/// The smallest period number whose key is at least `target`.
fn first_period_at_or_after(target: i64, base: i64, step: i64) -> i64 {
    let distance = target.saturating_sub(base);
    let periods = distance.div_euclid(step) + i64::from(distance.rem_euclid(step) != 0);
    periods.max(0)
}

fn too_sparse(rule: &Rule) -> Problem {
    Problem::new(
        "unsupported-rrule",
        format!(
            "RRULE part FREQ: the FREQ={} search gave up after {MAX_SUB_DAILY_VISITS} periods \
             without reaching the requested occurrences; the rule matches too rarely for its \
             frequency (or COUNT is asked about a time far from DTSTART). Use a coarser FREQ \
             with BYHOUR/BYMINUTE.",
            rule.freq.name()
        ),
    )
}

/// The first period worth expanding for a search after `after_local`: the one containing a
/// time two days earlier (a DST shift moves an instant by hours, never days), minus one more
/// period (SKIP can move a date into the next month), never before DTSTART's period.
fn jump_period(
    rule: &Rule,
    start: NaiveDateTime,
    base: i64,
    step: i64,
    after_local: NaiveDateTime,
) -> i64 {
    let probe = after_local
        .checked_sub_signed(TimeDelta::days(2))
        .unwrap_or(after_local);
    if probe <= start {
        return 0;
    }
    let distance = period_key(rule, probe) - base;
    (distance.div_euclid(step) - 1).max(0)
}

/// Whether every period of the rule holds exactly one occurrence, on or after DTSTART: no BY
/// parts, DTSTART's day exists in every month (or SKIP moves it to a valid, distinct day), and
/// for sub-daily rules in a zone, no DST gap can fold two periods onto one instant (steps
/// longer than a day).
fn one_per_period(rule: &Rule, start: NaiveDateTime, zone: Zone) -> bool {
    if rule.has_by_parts() {
        return false;
    }
    let moved = rule.skip != rule::Skip::Omit;
    match rule.freq {
        Freq::Daily | Freq::Weekly => true,
        Freq::Monthly => moved || start.day() <= 28,
        Freq::Yearly => moved || !(start.month() == 2 && start.day() == 29),
        Freq::Hourly | Freq::Minutely | Freq::Secondly => {
            zone == Zone::Floating
                || sub_daily::unit_seconds(rule.freq) * i64::from(rule.interval) > 86_400
        }
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
