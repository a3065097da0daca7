//! Local wall-clock times and instants: an IANA zone (chrono-tz) or floating time.
//!
//! The engine works in wall-clock time and only turns a wall-clock time into an instant to
//! compare it (with `after`, UNTIL or a completion time). That conversion follows RFC 5545
//! §3.3.5: a time in a DST gap uses the UTC offset in force *before* the gap (so it lands as
//! much later as the gap is long), and a repeated time takes its first instance. Nothing here
//! drops a time or fails on a valid calendar date.
//!
//! Parsing of the plugin's wall-clock format (`YYYY-MM-DDTHH:MM:SS`, years 1..=9999) lives here
//! too, so every caller reads and writes exactly one format.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone,
    Timelike,
};
use chrono_tz::Tz;

use crate::problem::Problem;

/// Where wall-clock times live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// No zone: times compare as written (all-day tasks, "9:00 wherever I am").
    Floating,
    Tz(Tz),
}

impl Zone {
    /// `None` is floating time; otherwise an IANA name known to chrono-tz (exact spelling).
    pub fn parse(tz: Option<&str>) -> Result<Zone, Problem> {
        match tz {
            None => Ok(Zone::Floating),
            Some(name) => name.parse::<Tz>().map(Zone::Tz).map_err(|_| {
                Problem::new(
                    "unknown-timezone",
                    format!("'{name}' is not an IANA time zone name (e.g. 'Europe/London')"),
                )
            }),
        }
    }

    /// The comparison key of a wall-clock time: its UTC instant (as a naive UTC time) when
    /// zoned, the wall-clock time itself when floating. Keys of the same zone compare in time
    /// order.
    pub fn key(self, local: NaiveDateTime) -> NaiveDateTime {
        let Zone::Tz(tz) = self else { return local };
        if let Some(first) = tz.from_local_datetime(&local).earliest() {
            // Single, or the first of two instances of a repeated (fall-back) time.
            return first.naive_utc();
        }
        // In a DST gap: use the offset in force before the gap (§3.3.5). A day earlier is
        // safely before any gap; zones do not change offset twice within a day.
        let before = local
            .checked_sub_signed(TimeDelta::days(1))
            .and_then(|probe| tz.from_local_datetime(&probe).earliest())
            .map(|dt| dt.offset().fix().local_minus_utc())
            .unwrap_or(0);
        local
            .checked_sub_signed(TimeDelta::seconds(i64::from(before)))
            .unwrap_or(local)
    }

    /// The wall-clock time of a comparison key (inverse of `key` outside DST gaps).
    pub fn local_of_key(self, key: NaiveDateTime) -> NaiveDateTime {
        match self {
            Zone::Floating => key,
            Zone::Tz(tz) => tz.from_utc_datetime(&key).naive_local(),
        }
    }

    /// The comparison key of an RFC 3339 instant. Zoned: the instant itself. Floating: there
    /// is no instant to compare with, so the instant's own wall clock as written is used
    /// (`2025-03-10T18:00:00+01:00` counts as 18:00).
    pub fn key_of_instant(self, instant: DateTime<FixedOffset>) -> NaiveDateTime {
        match self {
            Zone::Floating => instant.naive_local(),
            Zone::Tz(_) => instant.naive_utc(),
        }
    }
}

/// Parses the plugin's local wall-clock format `YYYY-MM-DDTHH:MM:SS` (years 1..=9999).
/// `what` names the input in the problem message (e.g. `dtstart`). Code `invalid-datetime`.
pub fn parse_local(what: &str, s: &str) -> Result<NaiveDateTime, Problem> {
    let bad = || {
        Problem::new(
            "invalid-datetime",
            format!("{what}: '{s}' is not a local date-time YYYY-MM-DDTHH:MM:SS (years 1..9999)"),
        )
    };
    let b = s.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(bad());
    }
    let num = |from: usize, to: usize| s[from..to].parse::<u32>().ok();
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, se) = (num(11, 13), num(14, 16), num(17, 19));
    let date = match (y, mo, d) {
        (Some(y), Some(mo), Some(d)) if y >= 1 => NaiveDate::from_ymd_opt(y as i32, mo, d),
        _ => None,
    };
    let time = match (h, mi, se) {
        (Some(h), Some(mi), Some(se)) => chrono::NaiveTime::from_hms_opt(h, mi, se),
        _ => None,
    };
    match (date, time) {
        (Some(date), Some(time)) => Ok(date.and_time(time)),
        _ => Err(bad()),
    }
}

/// Parses an RFC 3339 instant with an offset (`2025-03-10T18:00:00Z`, `...+01:00`).
pub fn parse_instant(what: &str, s: &str) -> Result<DateTime<FixedOffset>, Problem> {
    DateTime::parse_from_rfc3339(s).map_err(|_| {
        Problem::new(
            "invalid-datetime",
            format!("{what}: '{s}' is not an RFC 3339 date-time with an offset"),
        )
    })
}

/// Formats a wall-clock time as `YYYY-MM-DDTHH:MM:SS`.
pub fn format_local(t: NaiveDateTime) -> String {
    let mut out = String::with_capacity(20);
    if !four_digit_year(t.date()) || t.nanosecond() >= 1_000_000_000 {
        // Other years and leap seconds: chrono's own rendering.
        return t.format("%Y-%m-%dT%H:%M:%S").to_string();
    }
    push_date(&mut out, t.date());
    out.push('T');
    for (i, n) in [t.hour(), t.minute(), t.second()].into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        push_two(&mut out, n);
    }
    out
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: NaiveDate) -> String {
    if !four_digit_year(d) {
        return d.format("%Y-%m-%d").to_string();
    }
    let mut out = String::with_capacity(10);
    push_date(&mut out, d);
    out
}

// Written digit by digit: chrono's `format` interprets its pattern on every call, which was
// ~4% of a plugin call (docs/performance.md, change 6).
fn four_digit_year(d: NaiveDate) -> bool {
    (0..=9999).contains(&d.year())
}

fn push_date(out: &mut String, d: NaiveDate) {
    let year = d.year().unsigned_abs();
    push_two(out, year / 100);
    push_two(out, year % 100);
    out.push('-');
    push_two(out, d.month());
    out.push('-');
    push_two(out, d.day());
}

fn push_two(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_local("t", s).expect("valid test time")
    }

    #[test]
    fn gap_time_moves_forward_by_the_gap() {
        let ny = Zone::parse(Some("America/New_York")).unwrap();
        // 02:30 does not exist on 2007-03-11: EST offset applies, i.e. 07:30Z = 03:30 EDT.
        assert_eq!(ny.key(t("2007-03-11T02:30:00")), t("2007-03-11T07:30:00"));
        assert_eq!(
            ny.local_of_key(t("2007-03-11T07:30:00")),
            t("2007-03-11T03:30:00")
        );
    }

    #[test]
    fn repeated_time_takes_first_instance() {
        let ny = Zone::parse(Some("America/New_York")).unwrap();
        // 01:30 happens twice on 2025-11-02; the first is EDT (05:30Z).
        assert_eq!(ny.key(t("2025-11-02T01:30:00")), t("2025-11-02T05:30:00"));
    }

    #[test]
    fn floating_is_identity() {
        assert_eq!(
            Zone::Floating.key(t("2025-01-01T09:00:00")),
            t("2025-01-01T09:00:00")
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        for s in [
            "",
            "2025-01-01",
            "2025-01-01 09:00:00",
            "2025-02-30T09:00:00",
            "0000-01-01T00:00:00",
            "2025-01-01T24:00:00",
            "+025-01-01T09:00:00",
            "2025-01-01T09:00:60",
            "２025-01-01T09:00:0",
        ] {
            let p = parse_local("dtstart", s).unwrap_err();
            assert_eq!(p.code, "invalid-datetime", "{s}");
        }
        assert_eq!(
            format_local(t("0001-01-01T00:00:00")),
            "0001-01-01T00:00:00"
        );
        assert_eq!(
            format_local(t("9999-12-31T23:59:59")),
            "9999-12-31T23:59:59"
        );
    }

    proptest::proptest! {
        #[test]
        fn formats_as_chrono_does(secs in -80_000_000_000i64..260_000_000_000, leap in 0u32..2) {
            let t = DateTime::from_timestamp(secs, 0).unwrap().naive_utc();
            // A leap second where chrono allows one (second 59 of a minute).
            let t = match (leap, t.second()) {
                (1, 59) => t.with_nanosecond(1_000_000_000).unwrap(),
                _ => t,
            };
            proptest::prop_assert_eq!(format_local(t), t.format("%Y-%m-%dT%H:%M:%S").to_string());
            proptest::prop_assert_eq!(format_date(t.date()), t.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn unknown_zone() {
        assert_eq!(
            Zone::parse(Some("Mars/Base")).unwrap_err().code,
            "unknown-timezone"
        );
        assert_eq!(Zone::parse(Some("")).unwrap_err().code, "unknown-timezone");
    }
}
