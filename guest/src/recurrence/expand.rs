//! The candidate occurrences of one FREQ period (a second, minute, hour, day, WKST-based week,
//! month or year).
//!
//! RFC 5545 builds the set period by period: each BY part either expands the period or limits
//! it, depending on FREQ (the table in §3.3.10, with erratum 1913 for ordinal BYDAY in YEARLY),
//! then BYSETPOS picks positions within the period's set. Values the rule leaves out come from
//! DTSTART (its weekday, day of month, month, hour, minute, second). RFC 7529 SKIP decides what
//! an invalid generated date (Feb 30) becomes; it is applied right where the day of the month
//! is generated, before BYDAY limits and BYSETPOS. A generated second 60 is not a civil time
//! and is dropped like Feb 30.
//!
//! Days (DAILY..YEARLY) are built here; the times of each day are DTSTART's or the product of
//! BYHOUR × BYMINUTE × BYSECOND, which expand at these frequencies. Periods shorter than a day
//! live in `sub_daily`.
//!
//! Periods are numbered by a `key`: days since the epoch of the CE calendar (DAILY), the same
//! for the period's first day (WEEKLY), `year*12 + month0` (MONTHLY), the year (YEARLY), or
//! hours/minutes/seconds since that epoch (sub-daily, on the naive wall clock). Consecutive
//! periods of a rule are `step` keys apart, so the engine can jump straight to the period
//! containing any time.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use super::calendar::{
    Expanded, MAX_YEAR, apply_set_pos, day_passes_limits, days_in_month, days_until, in_weeks,
    is_month_day, is_year_day, week_start, ymd,
};
use super::rule::{Freq, Rule, Skip, WeekdayNum};
use super::sub_daily;

/// The key of the period that contains `t`.
pub fn period_key(rule: &Rule, t: NaiveDateTime) -> i64 {
    let date = t.date();
    match rule.freq {
        Freq::Daily => i64::from(date.num_days_from_ce()),
        Freq::Weekly => i64::from(week_start(date, rule.wkst).num_days_from_ce()),
        Freq::Monthly => i64::from(date.year()) * 12 + i64::from(date.month0()),
        Freq::Yearly => i64::from(date.year()),
        Freq::Hourly | Freq::Minutely | Freq::Secondly => sub_daily::key_of(rule.freq, t),
    }
}

/// Key distance between one period of the rule and the next.
pub fn period_step(rule: &Rule) -> i64 {
    match rule.freq {
        Freq::Weekly => 7 * i64::from(rule.interval),
        _ => i64::from(rule.interval),
    }
}

/// Fills `out` with the period's occurrences, ascending and distinct, after BYSETPOS.
pub fn expand_period(
    rule: &Rule,
    dtstart: NaiveDateTime,
    key: i64,
    out: &mut Vec<NaiveDateTime>,
) -> Expanded {
    out.clear();
    if rule.is_sub_daily() {
        return sub_daily::expand(rule, dtstart, key, out);
    }
    let mut dates = Vec::new();
    if !period_dates(rule, dtstart.date(), key, &mut dates) {
        return Expanded::Beyond;
    }
    let times = times_of_day(rule, dtstart.time());
    for date in dates {
        out.extend(times.iter().map(|t| date.and_time(*t)));
    }
    out.sort_unstable();
    out.dedup();
    apply_set_pos(&rule.by_set_pos, out);
    Expanded::Set { skip_to: None }
}

/// The times of day of DAILY..YEARLY occurrences: BYHOUR, BYMINUTE and BYSECOND expand, and
/// each missing one is DTSTART's. Ascending.
fn times_of_day(rule: &Rule, start: NaiveTime) -> Vec<NaiveTime> {
    let or = |v: &Vec<u32>, d: u32| if v.is_empty() { vec![d] } else { v.clone() };
    let hours = or(&rule.by_hour, start.hour());
    let minutes = or(&rule.by_minute, start.minute());
    let seconds = or(&rule.by_second, start.second());
    let mut times = Vec::with_capacity(hours.len() * minutes.len() * seconds.len());
    for &h in &hours {
        for &m in &minutes {
            // Second 60 (leap second) has no civil time: from_hms_opt refuses it, so it drops.
            times.extend(
                seconds
                    .iter()
                    .filter_map(|&s| NaiveTime::from_hms_opt(h, m, s)),
            );
        }
    }
    times.sort_unstable();
    times.dedup();
    times
}

/// The dates of one DAILY..YEARLY period, unsorted. False when it starts beyond year 9999.
fn period_dates(rule: &Rule, dtstart: NaiveDate, key: i64, out: &mut Vec<NaiveDate>) -> bool {
    match rule.freq {
        Freq::Daily | Freq::Weekly => {
            let Some(first) = i32::try_from(key)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
            else {
                return false;
            };
            if first.year() > MAX_YEAR {
                return false;
            }
            let days = if rule.freq == Freq::Daily { 1 } else { 7 };
            for d in (0..days).filter_map(|i| first.checked_add_days(Days::new(i))) {
                if day_passes_limits(rule, dtstart, d) {
                    out.push(d);
                }
            }
        }
        Freq::Monthly => {
            let Ok(year) = i32::try_from(key.div_euclid(12)) else {
                return false;
            };
            if year > MAX_YEAR {
                return false;
            }
            let month = key.rem_euclid(12) as u32 + 1;
            if rule.by_month.is_empty() || rule.by_month.contains(&month) {
                expand_month(rule, dtstart, year, month, Scope::Month, out);
            }
        }
        Freq::Yearly => {
            let Ok(year) = i32::try_from(key) else {
                return false;
            };
            if year > MAX_YEAR {
                return false;
            }
            expand_year(rule, dtstart, year, out);
        }
        Freq::Hourly | Freq::Minutely | Freq::Secondly => return false,
    }
    true
}

fn expand_year(rule: &Rule, dtstart: NaiveDate, year: i32, out: &mut Vec<NaiveDate>) {
    let (has_month, has_month_day, has_day) = (
        !rule.by_month.is_empty(),
        !rule.by_month_day.is_empty(),
        !rule.by_day.is_empty(),
    );
    if !rule.by_week_no.is_empty() || !rule.by_year_day.is_empty() {
        year_by_weeks_or_days(rule, year, out);
    } else if !has_month && !has_month_day && !has_day {
        // Plain YEARLY: DTSTART's month and day.
        out.extend(resolve_month_day(
            year,
            dtstart.month(),
            dtstart.day() as i32,
            rule.skip,
        ));
    } else if !has_month && !has_month_day {
        // BYDAY alone expands over the whole year; ordinals count within the year (20MO).
        if let (Some(first), Some(last)) = (ymd(year, 1, 1), ymd(year, 12, 31)) {
            expand_by_day(&rule.by_day, first, last, out);
        }
    } else {
        // Month by month; an ordinal BYDAY counts within the month when BYMONTH is present.
        let scope = if has_month { Scope::Month } else { Scope::Year };
        let months: Vec<u32> = if has_month {
            rule.by_month.clone()
        } else {
            (1..=12).collect()
        };
        for month in months {
            expand_month(rule, dtstart, year, month, scope, out);
        }
    }
}

/// YEARLY with BYWEEKNO or BYYEARDAY: those expand to days of the year, and every other day
/// part limits them (BYMONTH, BYMONTHDAY, and BYDAY: within the week for BYWEEKNO, where
/// ordinals are refused; a limit otherwise, its ordinal counted in the month with BYMONTH and
/// in the year without). Only days of the period's own calendar year belong to it.
fn year_by_weeks_or_days(rule: &Rule, year: i32, out: &mut Vec<NaiveDate>) {
    let (Some(first), Some(last)) = (ymd(year, 1, 1), ymd(year, 12, 31)) else {
        return;
    };
    let scope = if rule.by_month.is_empty() {
        Scope::Year
    } else {
        Scope::Month
    };
    for d in first.iter_days().take_while(|d| *d <= last) {
        let keep = (rule.by_month.is_empty() || rule.by_month.contains(&d.month()))
            && (rule.by_week_no.is_empty() || in_weeks(d, &rule.by_week_no, rule.wkst))
            && (rule.by_year_day.is_empty() || rule.by_year_day.iter().any(|&n| is_year_day(d, n)))
            && (rule.by_month_day.is_empty()
                || rule.by_month_day.iter().any(|&md| is_month_day(d, md)))
            && (rule.by_day.is_empty() || rule.by_day.iter().any(|w| matches_by_day(d, *w, scope)));
        if keep {
            out.push(d);
        }
    }
}

/// Where an ordinal BYDAY used as a limit counts: within the date's month or its year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Month,
    Year,
}

/// One month of a MONTHLY or YEARLY rule: BYMONTHDAY expands (then BYDAY limits), else BYDAY
/// expands, else DTSTART's day of the month.
fn expand_month(
    rule: &Rule,
    dtstart: NaiveDate,
    year: i32,
    month: u32,
    scope: Scope,
    out: &mut Vec<NaiveDate>,
) {
    if !rule.by_month_day.is_empty() {
        for &md in &rule.by_month_day {
            if let Some(d) = resolve_month_day(year, month, md, rule.skip)
                && (rule.by_day.is_empty()
                    || rule.by_day.iter().any(|w| matches_by_day(d, *w, scope)))
            {
                out.push(d);
            }
        }
    } else if !rule.by_day.is_empty() {
        let last = days_in_month(year, month).and_then(|len| ymd(year, month, len));
        if let (Some(first), Some(last)) = (ymd(year, month, 1), last) {
            expand_by_day(&rule.by_day, first, last, out);
        }
    } else {
        out.extend(resolve_month_day(
            year,
            month,
            dtstart.day() as i32,
            rule.skip,
        ));
    }
}

/// The dates in `first..=last` that a BYDAY list selects: a union of its entries.
fn expand_by_day(days: &[WeekdayNum], first: NaiveDate, last: NaiveDate, out: &mut Vec<NaiveDate>) {
    for w in days {
        let first_match = first.checked_add_days(Days::new(days_until(first.weekday(), w.weekday)));
        let last_match = last.checked_sub_days(Days::new(days_until(w.weekday, last.weekday())));
        match w.ordinal {
            None => {
                let mut d = first_match;
                while let Some(day) = d.filter(|day| *day <= last) {
                    out.push(day);
                    d = day.checked_add_days(Days::new(7));
                }
            }
            Some(n) if n > 0 => {
                let weeks = Days::new(7 * (n as u64 - 1));
                out.extend(
                    first_match
                        .and_then(|d| d.checked_add_days(weeks))
                        .filter(|d| *d <= last),
                );
            }
            Some(n) => {
                let weeks = Days::new(7 * (n.unsigned_abs() as u64 - 1));
                out.extend(
                    last_match
                        .and_then(|d| d.checked_sub_days(weeks))
                        .filter(|d| *d >= first),
                );
            }
        }
    }
}

/// Whether `d` is selected by one BYDAY entry used as a limit.
fn matches_by_day(d: NaiveDate, w: WeekdayNum, scope: Scope) -> bool {
    if d.weekday() != w.weekday {
        return false;
    }
    let Some(n) = w.ordinal else { return true };
    let (index0, len) = match scope {
        Scope::Month => (d.day0(), days_in_month(d.year(), d.month()).unwrap_or(31)),
        Scope::Year => (d.ordinal0(), if d.leap_year() { 366 } else { 365 }),
    };
    if n > 0 {
        index0 / 7 + 1 == n as u32
    } else {
        (len - 1 - index0) / 7 + 1 == n.unsigned_abs()
    }
}

/// Day `md` of a month (negative: from the end); an invalid one goes through SKIP (RFC 7529).
fn resolve_month_day(year: i32, month: u32, md: i32, skip: Skip) -> Option<NaiveDate> {
    let len = days_in_month(year, month)? as i32;
    let day = if md > 0 { md } else { len + 1 + md };
    if (1..=len).contains(&day) {
        return ymd(year, month, day as u32);
    }
    let first = ymd(year, month, 1)?;
    let last = ymd(year, month, len as u32)?;
    match (skip, day > len) {
        (Skip::Omit, _) => None,
        // Past the end (Feb 30): the last day, or the first day of the next month.
        (Skip::Backward, true) => Some(last),
        (Skip::Forward, true) => last.succ_opt(),
        // Before the start (-31 in a 30-day month): the previous month's last day, or the 1st.
        (Skip::Backward, false) => first.pred_opt(),
        (Skip::Forward, false) => Some(first),
    }
}
