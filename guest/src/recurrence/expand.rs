//! The candidate dates of one FREQ period (a day, a WKST-based week, a month or a year).
//!
//! RFC 5545 builds the set period by period: BYMONTH, BYMONTHDAY and BYDAY either expand the
//! period into dates or limit them, depending on FREQ (the table in §3.3.10, with erratum 1913
//! for ordinal BYDAY in YEARLY), then BYSETPOS picks positions within the period's set. Values
//! the rule leaves out come from DTSTART (its weekday, day of month, month). RFC 7529 SKIP
//! decides what an invalid generated date (Feb 30) becomes; it is applied right where the day of
//! the month is generated, before BYDAY limits and BYSETPOS. All times of day are DTSTART's, so
//! this module works on dates only.
//!
//! Periods are numbered by a `key`: days since the epoch of the CE calendar (DAILY), the same
//! for the period's first day (WEEKLY), `year*12 + month0` (MONTHLY) or the year (YEARLY).
//! Consecutive periods of a rule are `step` keys apart, so the engine can jump straight to the
//! period containing any date.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::rule::{Freq, Rule, Skip, WeekdayNum};

/// The last year any computed date may have.
pub const MAX_YEAR: i32 = 9999;

/// The key of the period that contains `date`.
pub fn period_key(rule: &Rule, date: NaiveDate) -> i64 {
    match rule.freq {
        Freq::Daily => i64::from(date.num_days_from_ce()),
        Freq::Weekly => i64::from(week_start(date, rule.wkst).num_days_from_ce()),
        Freq::Monthly => i64::from(date.year()) * 12 + i64::from(date.month0()),
        Freq::Yearly => i64::from(date.year()),
    }
}

/// Key distance between one period of the rule and the next.
pub fn period_step(rule: &Rule) -> i64 {
    match rule.freq {
        Freq::Weekly => 7 * i64::from(rule.interval),
        _ => i64::from(rule.interval),
    }
}

/// Fills `out` with the period's dates, ascending and distinct, after BYSETPOS. Returns false
/// when the period starts beyond year 9999 (the caller stops there).
pub fn expand_period(rule: &Rule, dtstart: NaiveDate, key: i64, out: &mut Vec<NaiveDate>) -> bool {
    out.clear();
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
    }
    out.sort_unstable();
    out.dedup();
    apply_set_pos(&rule.by_set_pos, out);
    true
}

/// DAILY: every BY part limits. WEEKLY: BYDAY (default: DTSTART's weekday) picks days of the
/// week, BYMONTH limits (BYMONTHDAY is rejected by the parser).
fn day_passes_limits(rule: &Rule, dtstart: NaiveDate, d: NaiveDate) -> bool {
    if !rule.by_month.is_empty() && !rule.by_month.contains(&d.month()) {
        return false;
    }
    if !rule.by_month_day.is_empty() && !rule.by_month_day.iter().any(|&md| is_month_day(d, md)) {
        return false;
    }
    if rule.by_day.is_empty() {
        return rule.freq == Freq::Daily || d.weekday() == dtstart.weekday();
    }
    // Ordinals are rejected for DAILY/WEEKLY, so only the weekday matters.
    rule.by_day.iter().any(|w| w.weekday == d.weekday())
}

fn expand_year(rule: &Rule, dtstart: NaiveDate, year: i32, out: &mut Vec<NaiveDate>) {
    let (has_month, has_month_day, has_day) = (
        !rule.by_month.is_empty(),
        !rule.by_month_day.is_empty(),
        !rule.by_day.is_empty(),
    );
    if !has_month && !has_month_day && !has_day {
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

/// Whether `d` is day `md` of its month (negative: counted from the end).
fn is_month_day(d: NaiveDate, md: i32) -> bool {
    let len = days_in_month(d.year(), d.month()).unwrap_or(31) as i32;
    let day = if md > 0 { md } else { len + 1 + md };
    d.day() as i32 == day
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

/// BYSETPOS: the n-th (negative: from the end) members of the period's sorted set.
fn apply_set_pos(positions: &[i32], set: &mut Vec<NaiveDate>) {
    if positions.is_empty() {
        return;
    }
    let n = set.len() as i64;
    let mut picked: Vec<NaiveDate> = positions
        .iter()
        .filter_map(|&p| {
            let index = if p > 0 {
                i64::from(p) - 1
            } else {
                n + i64::from(p)
            };
            usize::try_from(index)
                .ok()
                .and_then(|i| set.get(i).copied())
        })
        .collect();
    picked.sort_unstable();
    picked.dedup();
    *set = picked;
}

/// The first day of the WKST-based week containing `date`.
pub fn week_start(date: NaiveDate, wkst: Weekday) -> NaiveDate {
    date.checked_sub_days(Days::new(days_until(wkst, date.weekday())))
        .unwrap_or(date)
}

/// Days from weekday `from` forward to weekday `to` (0..=6).
fn days_until(from: Weekday, to: Weekday) -> u64 {
    u64::from((to.num_days_from_monday() + 7 - from.num_days_from_monday()) % 7)
}

fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

pub fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = ymd(year, month, 1)?;
    let next = if month == 12 {
        ymd(year.checked_add(1)?, 1, 1)?
    } else {
        ymd(year, month + 1, 1)?
    };
    u32::try_from(next.signed_duration_since(first).num_days()).ok()
}
