//! Calendar arithmetic the BY parts need: week numbers with WKST (BYWEEKNO), days of the year
//! (BYYEARDAY), days of the month counted from either end (BYMONTHDAY), and the day-level
//! limits every frequency below WEEKLY applies; plus what every expansion shares: the last year
//! a date may have, the outcome of expanding one period, and BYSETPOS.
//!
//! Week numbering follows RFC 5545 §3.3.10 (ISO 8601 generalised to any WKST): weeks start on
//! WKST, and week 1 is the first week with at least four days in the year, i.e. the week that
//! holds January 4th. A date early in January may belong to the last week of the previous year
//! and one late in December to week 1 of the next: each date is numbered in its own week-year,
//! and a negative BYWEEKNO counts back from the last week of that week-year.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, Weekday};

use super::rule::{Freq, Rule};

/// The first day of the WKST-based week containing `date`.
pub fn week_start(date: NaiveDate, wkst: Weekday) -> NaiveDate {
    date.checked_sub_days(Days::new(days_until(wkst, date.weekday())))
        .unwrap_or(date)
}

/// Days from weekday `from` forward to weekday `to` (0..=6).
pub fn days_until(from: Weekday, to: Weekday) -> u64 {
    u64::from((to.num_days_from_monday() + 7 - from.num_days_from_monday()) % 7)
}

pub fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
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

fn days_in_year(year: i32) -> i32 {
    if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366
    } else {
        365
    }
}

/// First day of week 1 of `year`: the WKST week holding January 4th.
fn week_one(year: i32, wkst: Weekday) -> Option<NaiveDate> {
    ymd(year, 1, 4).map(|jan4| week_start(jan4, wkst))
}

/// `(week number, weeks in its week-year)` of `d` with weeks starting on `wkst`.
pub fn week_number(d: NaiveDate, wkst: Weekday) -> Option<(i32, i32)> {
    let year = d.year();
    let mut week_year = year;
    if week_one(year + 1, wkst).is_some_and(|next| d >= next) {
        week_year = year + 1;
    } else if week_one(year, wkst).is_some_and(|this| d < this) {
        week_year = year - 1;
    }
    let (start, next) = (week_one(week_year, wkst)?, week_one(week_year + 1, wkst)?);
    let week = d.signed_duration_since(start).num_days() / 7 + 1;
    let weeks = next.signed_duration_since(start).num_days() / 7;
    Some((week as i32, weeks as i32))
}

/// Whether `d` is in one of the weeks `weeks` names (negative: from the week-year's end).
pub fn in_weeks(d: NaiveDate, weeks: &[i32], wkst: Weekday) -> bool {
    let Some((week, count)) = week_number(d, wkst) else {
        return false;
    };
    weeks.iter().any(|&n| {
        if n > 0 {
            n == week
        } else {
            count + 1 + n == week
        }
    })
}

/// Whether `d` is day `n` of its year (negative: counted from the end, -1 = Dec 31).
pub fn is_year_day(d: NaiveDate, n: i32) -> bool {
    let day = d.ordinal() as i32;
    if n > 0 {
        day == n
    } else {
        day == days_in_year(d.year()) + 1 + n
    }
}

/// Whether `d` is day `md` of its month (negative: counted from the end).
pub fn is_month_day(d: NaiveDate, md: i32) -> bool {
    let len = days_in_month(d.year(), d.month()).unwrap_or(31) as i32;
    let day = if md > 0 { md } else { len + 1 + md };
    d.day() as i32 == day
}

/// DAILY, WEEKLY and the sub-daily frequencies: BYMONTH, BYYEARDAY, BYMONTHDAY and BYDAY only
/// limit (ordinals are refused there by the parser). A WEEKLY rule without BYDAY keeps
/// DTSTART's weekday; the others keep every day.
pub fn day_passes_limits(rule: &Rule, dtstart: NaiveDate, d: NaiveDate) -> bool {
    if !rule.by_month.is_empty() && !rule.by_month.contains(&d.month()) {
        return false;
    }
    if !rule.by_year_day.is_empty() && !rule.by_year_day.iter().any(|&n| is_year_day(d, n)) {
        return false;
    }
    if !rule.by_month_day.is_empty() && !rule.by_month_day.iter().any(|&md| is_month_day(d, md)) {
        return false;
    }
    if rule.by_day.is_empty() {
        return rule.freq != Freq::Weekly || d.weekday() == dtstart.weekday();
    }
    rule.by_day.iter().any(|w| w.weekday == d.weekday())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        ymd(y, m, day).unwrap()
    }

    #[test]
    fn iso_weeks_with_monday_start() {
        // ISO 8601 examples: 2005-01-01 is in 2004-W53; 2008-12-29 is 2009-W01.
        assert_eq!(week_number(d(2005, 1, 1), Weekday::Mon), Some((53, 53)));
        assert_eq!(week_number(d(2008, 12, 29), Weekday::Mon), Some((1, 53)));
        assert_eq!(week_number(d(2010, 1, 3), Weekday::Mon), Some((53, 53)));
        assert_eq!(week_number(d(1997, 5, 12), Weekday::Mon), Some((20, 52)));
        assert!(in_weeks(d(2004, 12, 31), &[-1], Weekday::Mon));
    }

    #[test]
    fn year_days_both_ways() {
        assert!(is_year_day(d(2024, 12, 31), 366));
        assert!(is_year_day(d(2024, 12, 31), -1));
        assert!(is_year_day(d(2025, 1, 1), -365));
        assert!(!is_year_day(d(2025, 12, 31), 366));
    }
}

/// The last year any computed date may have.
pub const MAX_YEAR: i32 = 9999;

/// What expanding one period gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expanded {
    /// The period starts beyond year 9999: the caller stops.
    Beyond,
    /// `out` holds the period's set. `skip_to`: no period with a key below it can hold
    /// anything, so the caller may jump there (sub-daily rules skip whole days or hours).
    Set { skip_to: Option<i64> },
}

/// BYSETPOS: the n-th (negative: from the end) members of the period's sorted set.
pub fn apply_set_pos(positions: &[i32], set: &mut Vec<NaiveDateTime>) {
    if positions.is_empty() {
        return;
    }
    let n = set.len() as i64;
    let mut picked: Vec<NaiveDateTime> = positions
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
