//! Parsing and validating an RRULE value (RFC 5545 §3.3.10, RFC 7529 RSCALE/SKIP).
//!
//! `Rule::parse` turns the text into a typed rule or returns one `Problem` naming the offending
//! part: code `invalid-rrule` for a rule the RFC forbids or that can never mean anything, and
//! `unsupported-rrule` for valid RFC features this engine does not implement (sub-daily
//! frequencies, BYWEEKNO, BYYEARDAY, BYHOUR, BYMINUTE, BYSECOND, BYEASTER, non-Gregorian
//! RSCALE). Names and enumerated values are case-insensitive (RFC 5545 §2); numbers are plain
//! decimal. Checks that need DTSTART's zone (the form of UNTIL) live in `check_until_form`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use super::zone::Zone;
use crate::problem::Problem;

/// Largest accepted INTERVAL: larger values are almost certainly typos, and bounding them
/// keeps period arithmetic small.
pub const MAX_INTERVAL: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
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
            if index == 0 && name != "FREQ" {
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
            "BYWEEKNO" | "BYYEARDAY" | "BYHOUR" | "BYMINUTE" | "BYSECOND" | "BYEASTER" => {
                return Err(unsupported(name, "is not supported by this engine"));
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
        // An ordinal counts within the month for MONTHLY, and for YEARLY with BYMONTH
        // (erratum 1913); within the year for YEARLY without BYMONTH.
        let ordinal_max = match self.freq {
            Freq::Daily | Freq::Weekly => 0,
            Freq::Monthly => 5,
            Freq::Yearly if !self.by_month.is_empty() => 5,
            Freq::Yearly => 53,
        };
        for day in &self.by_day {
            let Some(n) = day.ordinal else { continue };
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
            if self.by_day.is_empty() && self.by_month_day.is_empty() && self.by_month.is_empty() {
                return Err(invalid(
                    "BYSETPOS",
                    "needs another BYxxx part to select from",
                ));
            }
            // The largest set one period can hold: a position beyond it never selects anything.
            let max = match self.freq {
                Freq::Daily => 1,
                Freq::Weekly => 7,
                Freq::Monthly => 31,
                Freq::Yearly => 366,
            };
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
        !(self.by_day.is_empty() && self.by_month_day.is_empty() && self.by_month.is_empty())
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
        "HOURLY" | "MINUTELY" | "SECONDLY" => Err(unsupported(
            "FREQ",
            format!("{value} is not supported (use DAILY, WEEKLY, MONTHLY or YEARLY)"),
        )),
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
