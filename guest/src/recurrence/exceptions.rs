//! EXDATE and RDATE (RFC 5545 §3.8.5.1, §3.8.5.2) on top of the rule: the recurrence set is
//! the rule's occurrences plus the RDATEs, minus the EXDATEs.
//!
//! As in the RFC, the rule's COUNT and UNTIL bound the rule only: an excluded occurrence still
//! counts towards COUNT (so skipping a holiday does not lengthen the series), and an RDATE is
//! added even beyond UNTIL or COUNT, or when it does not match the rule. Times are wall-clock
//! times in the series' zone and are matched as instants (`Zone::key`), so a time in a DST gap
//! is matched by its §3.3.5 instant. Two extensions for tasks, where due dates may be all-day:
//! an EXDATE that is a date removes every occurrence on that local date, and an RDATE that is
//! a date adds an occurrence at DTSTART's time of day.

use chrono::{NaiveDate, NaiveDateTime};

use super::rule::Rule;
use super::zone::Zone;
use super::{MAX_LIMIT, occurrences};
use crate::problem::Problem;

/// The most EXDATEs plus RDATEs one series may carry (each costs a comparison per occurrence).
pub const MAX_EXCEPTIONS: usize = 1000;

/// One EXDATE or RDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionDate {
    /// A wall-clock time in the series' zone.
    At(NaiveDateTime),
    /// A whole local date.
    Day(NaiveDate),
}

/// The exceptions of a series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    pub exdates: Vec<ExceptionDate>,
    pub rdates: Vec<ExceptionDate>,
}

impl Exceptions {
    pub fn is_empty(&self) -> bool {
        self.exdates.is_empty() && self.rdates.is_empty()
    }

    fn excludes(&self, t: NaiveDateTime, zone: Zone) -> bool {
        self.exdates.iter().any(|x| match *x {
            ExceptionDate::At(x) => zone.key(x) == zone.key(t),
            ExceptionDate::Day(d) => t.date() == d,
        })
    }
}

/// Like [`occurrences`], for the set the rule and `exceptions` define together.
pub(crate) fn occurrences_with(
    rule: &Rule,
    dtstart: NaiveDateTime,
    zone: Zone,
    after_key: NaiveDateTime,
    limit: u32,
    exceptions: &Exceptions,
) -> Result<Vec<NaiveDateTime>, Problem> {
    if exceptions.is_empty() {
        return occurrences(rule, dtstart, zone, after_key, limit);
    }
    let limit = limit.min(MAX_LIMIT) as usize;
    // The rule's part, in batches: excluded occurrences are replaced by later ones. Each batch
    // moves past at least one occurrence, and at most MAX_EXCEPTIONS dates (or whole days) can
    // be excluded, so this ends.
    let mut from_rule = Vec::new();
    let mut cursor = after_key;
    let batch = (limit + exceptions.exdates.len()).min(MAX_LIMIT as usize) as u32;
    while from_rule.len() < limit {
        let got = occurrences(rule, dtstart, zone, cursor, batch)?;
        let Some(&last) = got.last() else { break };
        cursor = zone.key(last);
        let exhausted = got.len() < batch as usize;
        from_rule.extend(got.into_iter().filter(|t| !exceptions.excludes(*t, zone)));
        if exhausted {
            break;
        }
    }
    let added = exceptions.rdates.iter().map(|r| match *r {
        ExceptionDate::At(t) => t,
        ExceptionDate::Day(d) => d.and_time(dtstart.time()),
    });
    let mut set: Vec<NaiveDateTime> = from_rule
        .into_iter()
        .chain(added.filter(|t| zone.key(*t) > after_key && !exceptions.excludes(*t, zone)))
        .collect();
    set.sort_by_key(|t| (zone.key(*t), *t));
    set.dedup_by_key(|t| zone.key(*t));
    set.truncate(limit);
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recurrence::zone::parse_local;

    fn t(s: &str) -> NaiveDateTime {
        parse_local("t", s).unwrap()
    }

    fn run(rule: &str, ex: &Exceptions, n: u32) -> Vec<NaiveDateTime> {
        let rule = Rule::parse(rule).unwrap();
        let zone = Zone::parse(Some("America/New_York")).unwrap();
        let start = t("2025-12-22T09:00:00");
        occurrences_with(
            &rule,
            start,
            zone,
            zone.key(t("2025-12-21T00:00:00")),
            n,
            ex,
        )
        .unwrap()
    }

    #[test]
    fn exdate_skips_and_rdate_adds() {
        let ex = Exceptions {
            exdates: vec![
                ExceptionDate::At(t("2025-12-25T09:00:00")),
                ExceptionDate::Day(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
            ],
            rdates: vec![
                ExceptionDate::At(t("2025-12-27T10:00:00")),
                ExceptionDate::Day(NaiveDate::from_ymd_opt(2026, 1, 3).unwrap()),
            ],
        };
        let got = run("FREQ=WEEKLY;BYDAY=MO,TH", &ex, 6);
        let want = [
            "2025-12-22T09:00:00",
            "2025-12-27T10:00:00",
            "2025-12-29T09:00:00",
            "2026-01-03T09:00:00",
            "2026-01-05T09:00:00",
            "2026-01-08T09:00:00",
        ];
        assert_eq!(got, want.map(t));
    }

    #[test]
    fn excluded_occurrences_still_count_and_rdates_outlive_count() {
        let ex = Exceptions {
            exdates: vec![ExceptionDate::At(t("2025-12-23T09:00:00"))],
            rdates: vec![ExceptionDate::At(t("2026-02-01T09:00:00"))],
        };
        let got = run("FREQ=DAILY;COUNT=3", &ex, 10);
        let want = [
            "2025-12-22T09:00:00",
            "2025-12-24T09:00:00",
            "2026-02-01T09:00:00",
        ];
        assert_eq!(got, want.map(t));
    }

    #[test]
    fn a_whole_day_of_sub_daily_occurrences_is_replaced_by_later_ones() {
        let ex = Exceptions {
            exdates: vec![ExceptionDate::Day(
                NaiveDate::from_ymd_opt(2025, 12, 22).unwrap(),
            )],
            rdates: Vec::new(),
        };
        let got = run("FREQ=MINUTELY;INTERVAL=30", &ex, 2);
        assert_eq!(got, [t("2025-12-23T00:00:00"), t("2025-12-23T00:30:00")]);
    }
}
