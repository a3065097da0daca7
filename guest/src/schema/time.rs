//! The date and time values task events carry, parsed once at the edge.
//!
//! Three forms are accepted wherever the schema says "date value" (`due_date`, `dtstart`,
//! `until`, `remind_at`):
//! - date-only `YYYY-MM-DD`: an all-day value, wall-clock midnight of that day;
//! - local `YYYY-MM-DDTHH:MM:SS`: a wall-clock time in the series' zone (`tzid`), or floating;
//! - an RFC 3339 instant with an offset (`2025-03-10T09:00:00Z`, `...+01:00`).
//!
//! `timestamp` and `completed_at` must be instants; in event_version 1.0 only, they may also be
//! naive (`YYYY-MM-DDTHH:MM:SS[.fraction]`, what the seed's Python `datetime.utcnow()` writes),
//! read as UTC ([`parse_naive_utc`], see `seed`). Years are limited to 1..=9999 (RFC 3339 and
//! the recurrence engine agree on that range). Sub-second digits of an instant are accepted; the
//! series arithmetic works in whole seconds, so they are dropped from computed values.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime};

/// The parsed form of a date value, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    Date(NaiveDate),
    Local(NaiveDateTime),
    Instant(DateTime<FixedOffset>),
}

/// A date value: the exact text (echoed unchanged into emitted events) and its parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateValue {
    pub raw: String,
    pub kind: DateKind,
}

impl DateValue {
    /// `None` when `s` is none of the three forms.
    pub fn parse(s: &str) -> Option<DateValue> {
        let kind = if let Some(d) = parse_date(s) {
            DateKind::Date(d)
        } else if let Some(t) = parse_local(s) {
            DateKind::Local(t)
        } else {
            DateKind::Instant(parse_instant(s)?)
        };
        Some(DateValue {
            raw: s.to_string(),
            kind,
        })
    }

    /// Written with `Z` (UTC) rather than a numeric offset; computed values keep that style.
    pub fn is_zulu(&self) -> bool {
        matches!(self.kind, DateKind::Instant(_)) && is_zulu(&self.raw)
    }
}

/// The shape a computed due date is written in: the shape of the value it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateForm {
    Date,
    Local,
    /// An instant; `zulu` = write UTC with `Z`, else the zone's offset at that instant.
    Instant {
        zulu: bool,
    },
}

impl DateForm {
    pub fn of(value: &DateValue) -> DateForm {
        match value.kind {
            DateKind::Date(_) => DateForm::Date,
            DateKind::Local(_) => DateForm::Local,
            DateKind::Instant(_) => DateForm::Instant {
                zulu: value.is_zulu(),
            },
        }
    }
}

/// RFC 3339 instant with an explicit offset, years 1..=9999.
pub fn parse_instant(s: &str) -> Option<DateTime<FixedOffset>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    (t.year() >= 1).then_some(t)
}

/// A naive date-time as Python's `datetime.isoformat()` writes it: `YYYY-MM-DDTHH:MM:SS`,
/// optionally `.` and 1 to 9 digits, no offset; read as UTC. Parsed as the same text with `Z`
/// appended, so a naive time and its explicit-UTC twin can never mean different instants.
pub fn parse_naive_utc(s: &str) -> Option<DateTime<FixedOffset>> {
    let (whole, fraction) = s.split_at_checked(19)?;
    if !shape(whole, "dddd-dd-ddTdd:dd:dd") {
        return None;
    }
    if !fraction.is_empty() {
        let digits = fraction.strip_prefix('.')?;
        if !(1..=9).contains(&digits.len()) || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    parse_instant(&format!("{s}Z"))
}

/// Exactly `YYYY-MM-DD`, years 1..=9999.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if !shape(s, "dddd-dd-dd") {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (d.year() >= 1).then_some(d)
}

/// Exactly `YYYY-MM-DDTHH:MM:SS`, years 1..=9999 (the recurrence engine's wall-clock format).
pub fn parse_local(s: &str) -> Option<NaiveDateTime> {
    if !shape(s, "dddd-dd-ddTdd:dd:dd") {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()?;
    (t.year() >= 1).then_some(t)
}

/// `YYYY-MM-DDTHH:MM:SS`, the wall-clock format the recurrence engine reads and writes.
pub use crate::recurrence::{format_date, format_local};

/// RFC 3339 in whole seconds: `...Z` when `zulu` (converted to UTC), else `...+HH:MM`.
pub fn format_instant(t: DateTime<FixedOffset>, zulu: bool) -> String {
    if zulu {
        format_local(t.naive_utc()) + "Z"
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

fn is_zulu(raw: &str) -> bool {
    raw.ends_with('Z') || raw.ends_with('z')
}

/// `d` = an ASCII digit, anything else = that exact byte. Guards chrono's lenient parsers
/// (which accept e.g. one-digit months or a sign) so only the documented shapes pass.
fn shape(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                c == p
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_forms() {
        let d = DateValue::parse("2025-01-31").unwrap();
        assert_eq!(DateForm::of(&d), DateForm::Date);
        let l = DateValue::parse("2025-01-31T09:00:00").unwrap();
        assert_eq!(DateForm::of(&l), DateForm::Local);
        let z = DateValue::parse("2025-01-31T09:00:00Z").unwrap();
        assert_eq!(DateForm::of(&z), DateForm::Instant { zulu: true });
        let o = DateValue::parse("2025-01-31T09:00:00.250+05:30").unwrap();
        assert_eq!(DateForm::of(&o), DateForm::Instant { zulu: false });
    }

    #[test]
    fn rejects_near_misses() {
        for s in [
            "",
            "2025-1-31",
            "2025-02-30",
            "0000-01-01",
            "+2025-01-31",
            "2025-01-31T9:00:00",
            "2025-01-31T09:00",
            "2025-01-31 09:00:00",
            "2025-01-31T24:00:00",
            "0000-01-01T00:00:00Z",
            "tomorrow",
            "２025-01-31",
        ] {
            assert_eq!(DateValue::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn naive_times_read_as_utc_only_in_python_isoformat_shape() {
        for (naive, twin) in [
            ("2025-12-29T10:00:00", "2025-12-29T10:00:00Z"),
            ("2025-12-29T10:00:00.123456", "2025-12-29T10:00:00.123456Z"),
            ("2025-12-29T10:00:00.4", "2025-12-29T10:00:00.4+00:00"),
            (
                "9999-12-31T23:59:59.999999999",
                "9999-12-31T23:59:59.999999999Z",
            ),
        ] {
            assert_eq!(parse_naive_utc(naive), parse_instant(twin), "{naive}");
            assert!(parse_naive_utc(naive).is_some(), "{naive}");
        }
        for s in [
            "2025-12-29T10:00:00Z",
            "2025-12-29T10:00:00+00:00",
            "2025-12-29 10:00:00.123456",
            "2025-12-29T10:00:00.",
            "2025-12-29T10:00:00.1234567890",
            "2025-12-29T10:00:00,5",
            "2025-12-29T10:00",
            "2025-12-29",
            "0000-12-29T10:00:00",
            "2025-02-30T10:00:00",
            "2025-12-29T10:00:00.12é",
        ] {
            assert_eq!(parse_naive_utc(s), None, "{s:?}");
        }
    }

    #[test]
    fn instants_format_in_their_style() {
        let t = parse_instant("2025-03-30T09:00:00.5+01:00").unwrap();
        assert_eq!(format_instant(t, false), "2025-03-30T09:00:00+01:00");
        assert_eq!(format_instant(t, true), "2025-03-30T08:00:00Z");
    }
}
