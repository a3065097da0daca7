//! Parsing and validating an RRULE value (RFC 5545 §3.3.10, RFC 7529 RSCALE/SKIP).
//!
//! `Rule::parse` turns the text into a typed rule or returns one `Problem` naming the offending
//! part: code `invalid-rrule` for a rule the RFC forbids or that can never mean anything, and
//! `unsupported-rrule` only for what lies outside RFC 5545 and RFC 7529's Gregorian scale
//! (a non-Gregorian RSCALE, python-dateutil's BYEASTER). Every RFC 5545 part is accepted,
//! with the combinations §3.3.10 allows (BYWEEKNO only with YEARLY, BYYEARDAY not with DAILY,
//! WEEKLY or MONTHLY, BYMONTHDAY not with WEEKLY, BYDAY ordinals only with MONTHLY and YEARLY
//! and not next to BYWEEKNO). Names and enumerated values are case-insensitive (RFC 5545 §2);
//! numbers are plain decimal. Checks that need DTSTART's zone (the form of UNTIL) live in
//! `check_until_form`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use super::zone::Zone;
use crate::problem::Problem;

/// Largest accepted INTERVAL: larger values are almost certainly typos, and bounding them
/// keeps period arithmetic small.
pub const MAX_INTERVAL: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Secondly,
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Freq {
    /// The RRULE spelling, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Freq::Secondly => "SECONDLY",
            Freq::Minutely => "MINUTELY",
            Freq::Hourly => "HOURLY",
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
            Freq::Yearly => "YEARLY",
        }
    }
}

/// RFC 7529 handling of an invalid generated date such as Feb 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Ignore it (RFC 5545 default).
    Omit,
    /// Use the previous valid day (Feb 30 -> Feb 28/29): month-end clamping.
    Backward,
    /// Use the next valid day (Feb 30 -> Mar 1).
    Forward,
}

/// One BYDAY entry: a weekday, optionally the n-th (negative: from the end) of its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayNum {
    pub ordinal: Option<i32>,
    pub weekday: Weekday,
}

/// UNTIL, in the form it was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// `YYYYMMDDTHHMMSSZ`: an instant (required with a zoned DTSTART).
    Utc(NaiveDateTime),
    /// `YYYYMMDDTHHMMSS`: floating wall clock (required with a floating DTSTART).
    Floating(NaiveDateTime),
    /// `YYYYMMDD`: the last local date of the set (accepted with either kind of DTSTART).
    Date(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: u32,
    pub count: Option<u32>,
    pub until: Option<Until>,
    pub by_day: Vec<WeekdayNum>,
    pub by_month_day: Vec<i32>,
    pub by_month: Vec<u32>,
    /// Day of the year, ±1..366 (negative: from the end).
    pub by_year_day: Vec<i32>,
    /// Week of the year, ±1..53, weeks starting on WKST (week 1 has at least 4 days of the year).
    pub by_week_no: Vec<i32>,
    pub by_hour: Vec<u32>,
    pub by_minute: Vec<u32>,
    /// 0..=60; 60 (a leap second) never exists in civil time here, so it never matches.
    pub by_second: Vec<u32>,
    pub by_set_pos: Vec<i32>,
    pub wkst: Weekday,
    /// RSCALE=GREGORIAN was given (the only calendar supported).
    pub rscale: bool,
    pub skip: Skip,
}

fn invalid(part: &str, msg: impl std::fmt::Display) -> Problem {
    Problem::new("invalid-rrule", format!("RRULE part {part}: {msg}"))
}

fn unsupported(part: &str, msg: impl std::fmt::Display) -> Problem {
    Problem::new("unsupported-rrule", format!("RRULE part {part}: {msg}"))
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, Problem> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("FREQ", "missing (the rule is empty)"));
        }
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            count: None,
            until: None,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            by_year_day: Vec::new(),
            by_week_no: Vec::new(),
            by_hour: Vec::new(),
            by_minute: Vec::new(),
            by_second: Vec::new(),
            by_set_pos: Vec::new(),
            wkst: Weekday::Mon,
            rscale: false,
            skip: Skip::Omit,
        };
        let mut seen: Vec<String> = Vec::new();
        for (index, part) in text.split(';').enumerate() {
            let Some((name, value)) = part.split_once('=') else {
                let shown = if part.is_empty() { "(empty)" } else { part };
                return Err(invalid(shown, "expected NAME=VALUE between ';'"));
            };
            let name = name.to_ascii_uppercase();
            let value = value.to_ascii_uppercase();
            if seen.contains(&name) {
                return Err(invalid(&name, "appears more than once"));
            }
            // RFC 5545 wants FREQ first; RFC 7529 writes RSCALE before it.
            let freq_may_wait = index == 0 && name == "RSCALE";
            if name != "FREQ" && !seen.iter().any(|n| n == "FREQ") && !freq_may_wait {
                let has_freq = text
                    .split(';')
                    .any(|p| p.to_ascii_uppercase().starts_with("FREQ="));
                return Err(if has_freq {
                    invalid("FREQ", "must be the first part of the rule")
                } else {
                    invalid("FREQ", "missing (every rule starts with FREQ=...)")
                });
            }
            rule.set_part(&name, &value)?;
            seen.push(name);
        }
        if !seen.iter().any(|n| n == "FREQ") {
            return Err(invalid("FREQ", "missing (every rule starts with FREQ=...)"));
        }
        rule.check_combination()?;
        Ok(rule)
    }

    fn set_part(&mut self, name: &str, value: &str) -> Result<(), Problem> {
        match name {
            "FREQ" => self.freq = parse_freq(value)?,
            "INTERVAL" => {
                self.interval = parse_unsigned(value)
                    .filter(|n| (1..=MAX_INTERVAL).contains(n))
                    .ok_or_else(|| {
                        invalid(
                            name,
                            format!("'{value}' must be an integer 1..{MAX_INTERVAL}"),
                        )
                    })?
            }
            "COUNT" => {
                self.count = Some(parse_unsigned(value).filter(|n| *n >= 1).ok_or_else(|| {
                    invalid(name, format!("'{value}' must be an integer 1..999999999"))
                })?)
            }
            "UNTIL" => self.until = Some(parse_until(value)?),
            "BYDAY" => self.by_day = parse_list(name, value, parse_weekday_num)?,
            "BYMONTHDAY" => self.by_month_day = parse_list(name, value, parse_month_day)?,
            "BYMONTH" => self.by_month = parse_list(name, value, parse_month)?,
            "BYYEARDAY" => self.by_year_day = parse_list(name, value, parse_year_day)?,
            "BYWEEKNO" => self.by_week_no = parse_list(name, value, parse_week_no)?,
            "BYHOUR" => self.by_hour = parse_list(name, value, |p, v| parse_clock(p, v, 23))?,
            "BYMINUTE" => self.by_minute = parse_list(name, value, |p, v| parse_clock(p, v, 59))?,
            "BYSECOND" => self.by_second = parse_list(name, value, |p, v| parse_clock(p, v, 60))?,
            "BYSETPOS" => self.by_set_pos = parse_list(name, value, parse_set_pos)?,
            "WKST" => {
                self.wkst = parse_weekday(value)
                    .ok_or_else(|| invalid(name, format!("'{value}' is not a weekday (MO..SU)")))?
            }
            "RSCALE" => {
                if value != "GREGORIAN" {
                    return Err(unsupported(
                        name,
                        format!("only GREGORIAN is supported, not '{value}'"),
                    ));
                }
                self.rscale = true;
            }
            "SKIP" => {
                self.skip = match value {
                    "OMIT" => Skip::Omit,
                    "BACKWARD" => Skip::Backward,
                    "FORWARD" => Skip::Forward,
                    _ => {
                        return Err(invalid(
                            name,
                            format!("'{value}' is not OMIT, BACKWARD or FORWARD"),
                        ));
                    }
                }
            }
            "BYEASTER" => {
                return Err(unsupported(
                    name,
                    "is not part of RFC 5545 (it is a python-dateutil extension)",
                ));
            }
            _ => return Err(invalid(name, "is not a known RRULE part")),
        }
        Ok(())
    }

    /// Rules between parts, checked once every part is known (parts come in any order).
    fn check_combination(&self) -> Result<(), Problem> {
        if self.count.is_some() && self.until.is_some() {
            return Err(invalid("UNTIL", "COUNT and UNTIL must not appear together"));
        }
        if self.skip != Skip::Omit && !self.rscale {
            return Err(invalid("SKIP", "is only valid together with RSCALE"));
        }
        if !self.by_month_day.is_empty() && self.freq == Freq::Weekly {
            return Err(invalid("BYMONTHDAY", "is not allowed with FREQ=WEEKLY"));
        }
        if !self.by_week_no.is_empty() && self.freq != Freq::Yearly {
            return Err(invalid("BYWEEKNO", "is only allowed with FREQ=YEARLY"));
        }
        if !self.by_year_day.is_empty()
            && matches!(self.freq, Freq::Daily | Freq::Weekly | Freq::Monthly)
        {
            return Err(invalid(
                "BYYEARDAY",
                "is not allowed with FREQ=DAILY, WEEKLY or MONTHLY",
            ));
        }
        // An ordinal counts within the month for MONTHLY, and for YEARLY with BYMONTH
        // (erratum 1913); within the year for YEARLY without BYMONTH.
        let ordinal_max = match self.freq {
            Freq::Monthly => 5,
            Freq::Yearly if !self.by_month.is_empty() => 5,
            Freq::Yearly => 53,
            _ => 0,
        };
        for day in &self.by_day {
            let Some(n) = day.ordinal else { continue };
            if !self.by_week_no.is_empty() {
                return Err(invalid(
                    "BYDAY",
                    "ordinals (e.g. 2MO) are not allowed together with BYWEEKNO",
                ));
            }
            if ordinal_max == 0 {
                return Err(invalid(
                    "BYDAY",
                    "ordinals (e.g. 2MO, -1FR) need FREQ=MONTHLY or YEARLY",
                ));
            }
            if n.abs() > ordinal_max {
                return Err(invalid(
                    "BYDAY",
                    format!(
                        "ordinal {n} is out of range (1..{ordinal_max} or -{ordinal_max}..-1 here)"
                    ),
                ));
            }
        }
        if !self.by_set_pos.is_empty() {
            if !self.has_by_parts() {
                return Err(invalid(
                    "BYSETPOS",
                    "needs another BYxxx part to select from",
                ));
            }
            // The largest set one period can hold (RFC 5545 caps positions at 366): a position
            // beyond it never selects anything, so it is a mistake worth naming.
            let max = self.max_set_size().min(366) as i32;
            if let Some(p) = self.by_set_pos.iter().find(|p| p.abs() > max) {
                return Err(invalid(
                    "BYSETPOS",
                    format!("{p} is out of range for this FREQ (1..{max} or -{max}..-1)"),
                ));
            }
        }
        Ok(())
    }

    /// Whether any BYxxx part narrows or expands the plain FREQ×INTERVAL progression.
    pub fn has_by_parts(&self) -> bool {
        !(self.by_day.is_empty()
            && self.by_month_day.is_empty()
            && self.by_month.is_empty()
            && self.by_year_day.is_empty()
            && self.by_week_no.is_empty()
            && !self.has_time_parts())
    }

    /// Whether BYHOUR, BYMINUTE or BYSECOND is present.
    pub fn has_time_parts(&self) -> bool {
        !(self.by_hour.is_empty() && self.by_minute.is_empty() && self.by_second.is_empty())
    }

    /// Whether FREQ is HOURLY, MINUTELY or SECONDLY.
    pub fn is_sub_daily(&self) -> bool {
        matches!(self.freq, Freq::Hourly | Freq::Minutely | Freq::Secondly)
    }

    /// The most members one period's set can have: days a period spans times the times of
    /// day the expanding parts (BYHOUR/BYMINUTE/BYSECOND above the period's unit) produce.
    fn max_set_size(&self) -> usize {
        let len = |v: &Vec<u32>| v.len().max(1);
        let (days, h, m, s) = match self.freq {
            Freq::Secondly => (1, 1, 1, 1),
            Freq::Minutely => (1, 1, 1, len(&self.by_second)),
            Freq::Hourly => (1, 1, len(&self.by_minute), len(&self.by_second)),
            Freq::Daily => (
                1,
                len(&self.by_hour),
                len(&self.by_minute),
                len(&self.by_second),
            ),
            Freq::Weekly => (
                7,
                len(&self.by_hour),
                len(&self.by_minute),
                len(&self.by_second),
            ),
            Freq::Monthly => (
                31,
                len(&self.by_hour),
                len(&self.by_minute),
                len(&self.by_second),
            ),
            Freq::Yearly => (
                366,
                len(&self.by_hour),
                len(&self.by_minute),
                len(&self.by_second),
            ),
        };
        days * h * m * s
    }

    /// UNTIL must match DTSTART's kind (RFC 5545 §3.3.10): UTC with a zone, floating without.
    /// A DATE UNTIL is accepted with both and means "through that local date".
    pub fn check_until_form(&self, zone: Zone) -> Result<(), Problem> {
        match (self.until, zone) {
            (Some(Until::Floating(_)), Zone::Tz(_)) => Err(invalid(
                "UNTIL",
                "must be a UTC time (YYYYMMDDTHHMMSSZ) or a date when DTSTART has a time zone",
            )),
            (Some(Until::Utc(_)), Zone::Floating) => Err(invalid(
                "UNTIL",
                "must be a floating time (YYYYMMDDTHHMMSS, no Z) or a date when DTSTART is floating",
            )),
            _ => Ok(()),
        }
    }
}

fn parse_freq(value: &str) -> Result<Freq, Problem> {
    match value {
        "DAILY" => Ok(Freq::Daily),
        "WEEKLY" => Ok(Freq::Weekly),
        "MONTHLY" => Ok(Freq::Monthly),
        "YEARLY" => Ok(Freq::Yearly),
        "HOURLY" => Ok(Freq::Hourly),
        "MINUTELY" => Ok(Freq::Minutely),
        "SECONDLY" => Ok(Freq::Secondly),
        _ => Err(invalid("FREQ", format!("'{value}' is not a frequency"))),
    }
}

/// Plain decimal digits only (no sign, no spaces), at most 9 of them so it cannot overflow.
fn parse_unsigned(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// An optionally signed small integer, e.g. `-1`, `+15`, `3`.
fn parse_signed(value: &str) -> Option<i32> {
    let (negative, digits) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let n = i32::try_from(parse_unsigned(digits)?).ok()?;
    Some(if negative { -n } else { n })
}

fn parse_list<T>(
    part: &str,
    value: &str,
    item: fn(&str, &str) -> Result<T, Problem>,
) -> Result<Vec<T>, Problem> {
    if value.is_empty() {
        return Err(invalid(part, "has no value"));
    }
    value.split(',').map(|v| item(part, v)).collect()
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Mon,
        "TU" => Weekday::Tue,
        "WE" => Weekday::Wed,
        "TH" => Weekday::Thu,
        "FR" => Weekday::Fri,
        "SA" => Weekday::Sat,
        "SU" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_weekday_num(part: &str, v: &str) -> Result<WeekdayNum, Problem> {
    let bad = || invalid(part, format!("'{v}' is not a weekday like MO, 2MO or -1FR"));
    if v.len() < 2 || !v.is_char_boundary(v.len() - 2) {
        return Err(bad());
    }
    let (ord, day) = v.split_at(v.len() - 2);
    let weekday = parse_weekday(day).ok_or_else(bad)?;
    let ordinal = match ord {
        "" => None,
        _ => match parse_signed(ord) {
            Some(0) => return Err(invalid(part, format!("'{v}': the ordinal must not be 0"))),
            Some(n) if n.abs() <= 53 => Some(n),
            Some(n) => {
                return Err(invalid(
                    part,
                    format!("'{v}': ordinal {n} is out of range (±1..53)"),
                ));
            }
            None => return Err(bad()),
        },
    };
    Ok(WeekdayNum { ordinal, weekday })
}

fn parse_month_day(part: &str, v: &str) -> Result<i32, Problem> {
    match parse_signed(v) {
        Some(n) if n != 0 && n.abs() <= 31 => Ok(n),
        _ => Err(invalid(
            part,
            format!("'{v}' is not a day of the month (1..31 or -31..-1)"),
        )),
    }
}

fn parse_month(part: &str, v: &str) -> Result<u32, Problem> {
    match parse_unsigned(v) {
        Some(n) if (1..=12).contains(&n) => Ok(n),
        _ => Err(invalid(part, format!("'{v}' is not a month (1..12)"))),
    }
}

fn parse_year_day(part: &str, v: &str) -> Result<i32, Problem> {
    match parse_signed(v) {
        Some(n) if n != 0 && n.abs() <= 366 => Ok(n),
        _ => Err(invalid(
            part,
            format!("'{v}' is not a day of the year (1..366 or -366..-1)"),
        )),
    }
}

fn parse_week_no(part: &str, v: &str) -> Result<i32, Problem> {
    match parse_signed(v) {
        Some(n) if n != 0 && n.abs() <= 53 => Ok(n),
        _ => Err(invalid(
            part,
            format!("'{v}' is not a week of the year (1..53 or -53..-1)"),
        )),
    }
}

/// An hour, minute or second: unsigned, 0..=max.
fn parse_clock(part: &str, v: &str, max: u32) -> Result<u32, Problem> {
    match parse_unsigned(v) {
        Some(n) if n <= max => Ok(n),
        _ => Err(invalid(part, format!("'{v}' is not in 0..{max}"))),
    }
}

fn parse_set_pos(part: &str, v: &str) -> Result<i32, Problem> {
    match parse_signed(v) {
        Some(n) if n != 0 && n.abs() <= 366 => Ok(n),
        _ => Err(invalid(
            part,
            format!("'{v}' is not a position (1..366 or -366..-1)"),
        )),
    }
}

/// `YYYYMMDD`, `YYYYMMDDTHHMMSS` or `YYYYMMDDTHHMMSSZ`, years 1..=9999.
fn parse_until(v: &str) -> Result<Until, Problem> {
    let bad = || {
        invalid(
            "UNTIL",
            format!("'{v}' is not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ"),
        )
    };
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = v.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let date = match (digits(0..4), digits(4..6), digits(6..8)) {
        (Some(y), Some(m), Some(d)) if y >= 1 => {
            NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if b.len() == 8 {
        return Ok(Until::Date(date));
    }
    if !(b.len() == 15 || b.len() == 16) || b[8] != b'T' {
        return Err(bad());
    }
    let time = match (digits(9..11), digits(11..13), digits(13..15)) {
        (Some(h), Some(m), Some(s)) => NaiveTime::from_hms_opt(h, m, s).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    match b.get(15) {
        None => Ok(Until::Floating(date.and_time(time))),
        Some(b'Z') => Ok(Until::Utc(date.and_time(time))),
        Some(_) => Err(bad()),
    }
}
