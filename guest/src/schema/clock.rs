//! The wall clock a recurring task lives on, and how its values map onto it.
//!
//! A series is computed in local wall-clock time (README "Recurrence defaults",
//! docs/recurrence.md). Which clock:
//! - `tzid` given: that IANA zone ([`Clock::Named`]). Instants are converted into it; local and
//!   date-only values are read as its wall-clock time.
//! - no `tzid`, due date (or, without one, the completion time) is an instant: the fixed offset
//!   it was written with ([`Clock::Fixed`]); `...Z` is UTC. A fixed offset has no DST, so this
//!   is exact, and the next due date is written back with the same offset.
//! - no `tzid`, local or date-only due date: floating time ([`Clock::Floating`]); an instant
//!   elsewhere in the series is read as its own wall-clock time, as the engine does.
//!
//! The engine only knows IANA names or floating time, so a fixed offset is passed as `UTC` or
//! `Etc/GMT∓h` (whole hours; note the POSIX sign inversion: UTC+2 is `Etc/GMT-2`), and as
//! floating time for the rare half-hour offsets, with every instant first converted into that
//! offset so the engine's "wall clock as written" reading is exact.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

use super::time::{DateForm, DateKind, DateValue, format_date, format_instant, format_local};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Named(Tz),
    Fixed(FixedOffset),
    Floating,
}

impl Clock {
    /// The clock of a series: `tzid` if given, else the offset of `reference` (the due date,
    /// or the completion when there is no due date), else floating.
    pub fn resolve(tzid: Option<Tz>, reference: &DateKind) -> Clock {
        match (tzid, reference) {
            (Some(tz), _) => Clock::Named(tz),
            (None, DateKind::Instant(t)) => Clock::Fixed(*t.offset()),
            (None, _) => Clock::Floating,
        }
    }

    /// The `tzid` handed to the recurrence engine (None = floating).
    pub fn engine_tz(&self) -> Option<String> {
        match self {
            Clock::Named(tz) => Some(tz.name().to_string()),
            Clock::Fixed(off) => etc_zone(*off),
            Clock::Floating => None,
        }
    }

    /// The wall-clock time of a date value on this clock (date-only = midnight).
    pub fn wall(&self, kind: &DateKind) -> NaiveDateTime {
        match kind {
            DateKind::Date(d) => d.and_time(chrono::NaiveTime::MIN),
            DateKind::Local(t) => *t,
            DateKind::Instant(t) => self.wall_of_instant(*t),
        }
    }

    pub fn wall_of_instant(&self, t: DateTime<FixedOffset>) -> NaiveDateTime {
        match self {
            Clock::Named(tz) => t.with_timezone(tz).naive_local(),
            Clock::Fixed(off) => t.with_timezone(off).naive_local(),
            Clock::Floating => t.naive_local(),
        }
    }

    /// An instant as the engine should read it: on a fixed clock, re-expressed in that offset
    /// (exact whether the engine sees it as zoned or floating); otherwise unchanged.
    pub fn instant_for_engine(&self, t: DateTime<FixedOffset>) -> String {
        match self {
            Clock::Fixed(off) => format_instant(t.with_timezone(off), false),
            _ => t.to_rfc3339(),
        }
    }

    /// `until` as the series takes it: date-only and local values as written, instants as the
    /// engine should read them.
    pub fn until_for_engine(&self, until: &DateValue) -> String {
        match until.kind {
            DateKind::Instant(t) => self.instant_for_engine(t),
            _ => until.raw.clone(),
        }
    }

    /// The instant of a wall-clock time; None on a floating clock. A time in a DST gap uses
    /// the offset in force before the gap (RFC 5545 §3.3.5); a repeated time its first instance.
    pub fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        match self {
            Clock::Named(tz) => Some(named_instant(*tz, wall)),
            Clock::Fixed(off) => off.from_local_datetime(&wall).single(),
            Clock::Floating => None,
        }
    }

    /// An instant re-expressed with this clock's offset at that instant (unchanged when floating).
    pub fn in_clock(&self, t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        match self {
            Clock::Named(tz) => t.with_timezone(tz).fixed_offset(),
            Clock::Fixed(off) => t.with_timezone(off),
            Clock::Floating => t,
        }
    }

    /// A computed wall-clock time written in `form`. An instant form keeps `Z` or uses the
    /// clock's offset at that time; a floating clock cannot make an instant and writes local.
    pub fn format(&self, wall: NaiveDateTime, form: DateForm) -> String {
        match form {
            DateForm::Date => format_date(wall.date()),
            DateForm::Local => format_local(wall),
            DateForm::Instant { zulu } => match self.instant(wall) {
                Some(t) => format_instant(t, zulu),
                None => format_local(wall),
            },
        }
    }
}

/// `UTC`, `Etc/GMT-h` / `Etc/GMT+h` for whole-hour offsets the tz database has, else None.
fn etc_zone(off: FixedOffset) -> Option<String> {
    let secs = off.local_minus_utc();
    if secs == 0 {
        return Some("UTC".into());
    }
    let hours = secs / 3600;
    if secs % 3600 != 0 || !(-12..=14).contains(&hours) {
        return None;
    }
    // POSIX-style names invert the sign: Etc/GMT-2 is two hours *ahead* of UTC.
    Some(if hours > 0 {
        format!("Etc/GMT-{hours}")
    } else {
        format!("Etc/GMT+{}", -hours)
    })
}

fn named_instant(tz: Tz, wall: NaiveDateTime) -> DateTime<FixedOffset> {
    if let Some(t) = tz.from_local_datetime(&wall).earliest() {
        return t.fixed_offset();
    }
    // In a gap: the offset a day earlier is the one in force before the gap (zones do not
    // change offset twice within a day).
    let before = wall
        .checked_sub_signed(TimeDelta::days(1))
        .and_then(|probe| tz.from_local_datetime(&probe).earliest())
        .map(|t| t.offset().fix())
        .unwrap_or_else(|| chrono::Utc.fix());
    let utc = wall.checked_sub_signed(TimeDelta::seconds(i64::from(before.local_minus_utc())));
    before.from_utc_datetime(&utc.unwrap_or(wall))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::time::parse_local;

    #[test]
    fn etc_names_exist_and_mean_the_offset() {
        for hours in -12..=14 {
            let off = FixedOffset::east_opt(hours * 3600).unwrap();
            let name = etc_zone(off).unwrap();
            let tz: Tz = name
                .parse()
                .unwrap_or_else(|_| panic!("{name} is not a zone"));
            let t = tz.from_utc_datetime(&parse_local("2025-06-01T00:00:00").unwrap());
            assert_eq!(t.offset().fix(), off, "{name}");
        }
        assert_eq!(etc_zone(FixedOffset::east_opt(19800).unwrap()), None); // +05:30
    }

    #[test]
    fn gap_uses_offset_before_gap() {
        let ny = Clock::Named("America/New_York".parse().unwrap());
        let wall = parse_local("2025-03-09T02:30:00").unwrap();
        assert_eq!(
            ny.format(wall, DateForm::Instant { zulu: true }),
            "2025-03-09T07:30:00Z"
        );
        let fold = parse_local("2025-11-02T01:30:00").unwrap();
        assert_eq!(
            ny.format(fold, DateForm::Instant { zulu: false }),
            "2025-11-02T01:30:00-04:00"
        );
    }
}
