//! Periods shorter than a day: FREQ=HOURLY, MINUTELY and SECONDLY.
//!
//! A period is one hour, minute or second of the naive wall clock, counted from the CE epoch
//! like the longer periods (so INTERVAL steps in wall-clock units, as every RFC 5545
//! implementation does, and a DST change does not shift the grid). Per the §3.3.10 table,
//! BYMONTH, BYYEARDAY, BYMONTHDAY and BYDAY limit; BYHOUR limits; BYMINUTE limits for MINUTELY
//! and SECONDLY and expands for HOURLY; BYSECOND limits for SECONDLY and expands otherwise.
//! A part that is missing and finer than FREQ takes DTSTART's value (HOURLY from 09:15:30 runs
//! at :15:30 of each hour). BYSETPOS picks within the period.
//!
//! A period that fails a limit tells the engine how far it can skip (`Expanded::Set::skip_to`):
//! to the next hour or minute the limits allow, or to the next day. That keeps a rule like
//! `FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29` to one step per day rather than 86,400.

use chrono::{DateTime, Datelike, Days, NaiveDateTime, NaiveTime, Timelike};

use super::calendar::{Expanded, MAX_YEAR, apply_set_pos, day_passes_limits};
use super::rule::{Freq, Rule};

/// Seconds in one period of `freq` (sub-daily frequencies only; 1 for anything else).
pub fn unit_seconds(freq: Freq) -> i64 {
    match freq {
        Freq::Hourly => 3600,
        Freq::Minutely => 60,
        _ => 1,
    }
}

/// The key of the period of `freq` containing `t`: whole units since 1970-01-01T00:00:00 on
/// the naive wall clock (negative before it).
pub fn key_of(freq: Freq, t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(unit_seconds(freq))
}

/// The naive wall-clock start of period `key`.
pub fn start_of(freq: Freq, key: i64) -> Option<NaiveDateTime> {
    let seconds = key.checked_mul(unit_seconds(freq))?;
    DateTime::from_timestamp(seconds, 0).map(|t| t.naive_utc())
}

/// The occurrences of the period `key`; see the module doc.
pub fn expand(
    rule: &Rule,
    dtstart: NaiveDateTime,
    key: i64,
    out: &mut Vec<NaiveDateTime>,
) -> Expanded {
    let Some(start) = start_of(rule.freq, key) else {
        return Expanded::Beyond;
    };
    if start.year() > MAX_YEAR {
        return Expanded::Beyond;
    }
    if let Some(next) = first_allowed_after_failure(rule, dtstart, start) {
        return Expanded::Set {
            skip_to: Some(key_of(rule.freq, next)),
        };
    }
    let (date, hour, minute) = (start.date(), start.hour(), start.minute());
    let or = |v: &Vec<u32>, d: u32| if v.is_empty() { vec![d] } else { v.clone() };
    match rule.freq {
        Freq::Hourly => {
            let seconds = or(&rule.by_second, dtstart.second());
            for m in or(&rule.by_minute, dtstart.minute()) {
                out.extend(
                    seconds
                        .iter()
                        .filter_map(|&s| NaiveTime::from_hms_opt(hour, m, s))
                        .map(|t| date.and_time(t)),
                );
            }
        }
        Freq::Minutely => out.extend(
            or(&rule.by_second, dtstart.second())
                .into_iter()
                .filter_map(|s| NaiveTime::from_hms_opt(hour, minute, s))
                .map(|t| date.and_time(t)),
        ),
        _ => out.push(start),
    }
    out.sort_unstable();
    out.dedup();
    apply_set_pos(&rule.by_set_pos, out);
    Expanded::Set { skip_to: None }
}

/// None when the period starting at `start` passes every limit; otherwise the earliest time
/// that could: the next allowed second, minute or hour, or the next day.
fn first_allowed_after_failure(
    rule: &Rule,
    dtstart: NaiveDateTime,
    start: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let date = start.date();
    let next_day = || {
        date.checked_add_days(Days::new(1))
            .map(|d| d.and_time(NaiveTime::MIN))
    };
    if !day_passes_limits(rule, dtstart.date(), date) {
        return next_day().or(Some(NaiveDateTime::MAX));
    }
    let at = |h: u32, m: u32, s: u32| NaiveTime::from_hms_opt(h, m, s).map(|t| date.and_time(t));
    let (h, m, s) = (start.hour(), start.minute(), start.second());
    let next_in = |allowed: &[u32], now: u32| allowed.iter().copied().filter(|v| *v > now).min();
    if !rule.by_hour.is_empty() && !rule.by_hour.contains(&h) {
        let next = next_in(&rule.by_hour, h).and_then(|nh| at(nh, 0, 0));
        return next.or_else(next_day).or(Some(NaiveDateTime::MAX));
    }
    let limits_minute = matches!(rule.freq, Freq::Minutely | Freq::Secondly);
    if limits_minute && !rule.by_minute.is_empty() && !rule.by_minute.contains(&m) {
        let next = match next_in(&rule.by_minute, m) {
            Some(nm) => at(h, nm, 0),
            None => at(h, 0, 0).and_then(|t| t.checked_add_signed(chrono::TimeDelta::hours(1))),
        };
        return next.or(Some(NaiveDateTime::MAX));
    }
    if rule.freq == Freq::Secondly && !rule.by_second.is_empty() && !rule.by_second.contains(&s) {
        let next = match next_in(&rule.by_second, s).filter(|ns| *ns < 60) {
            Some(ns) => at(h, m, ns),
            None => at(h, m, 0).and_then(|t| t.checked_add_signed(chrono::TimeDelta::minutes(1))),
        };
        return next.or(Some(NaiveDateTime::MAX));
    }
    None
}
