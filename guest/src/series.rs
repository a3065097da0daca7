//! Task recurrence semantics on top of the RFC engine: anchor, missed occurrences, month
//! overflow, end conditions (README "Recurrence defaults").
//!
//! [`next_due`] answers "this occurrence was completed: when is the next one due?", with:
//! * `Anchor::Schedule` + `Missed::Skip` (default): the first rule occurrence strictly after the
//!   later of the previous due date and the completion, compared as instants in the series'
//!   zone. The new task is never born overdue, and an early completion gives the occurrence
//!   after the current one, never the same one again.
//! * `Missed::CatchUp`: the first occurrence strictly after the previous due date.
//! * `Anchor::Completion`: the series re-anchors at the completion's local date with the due
//!   time of day. A rule without BY parts steps INTERVAL×FREQ from that date; a rule with BY
//!   parts gives its first occurrence strictly after the completion.
//! * `MonthOverflow::Clamp`: the rule runs with `RSCALE=GREGORIAN;SKIP=BACKWARD` (RFC 7529)
//!   unless it carries its own RSCALE, so the 31st becomes the last day of shorter months and
//!   Feb 29 becomes Feb 28, always anchored on DTSTART's day (Jan 31 -> Feb 28 -> Mar 31).
//! * Ends: `End::Count(n)` and a COUNT in the rule stop after occurrence n; `End::Until` and an
//!   UNTIL in the rule are inclusive; a rule that cannot match again ends the series. All give
//!   `Ok(None)`.
//! * Exceptions: `exceptions` (EXDATE/RDATE, see `crate::recurrence::exceptions`) apply to
//!   every anchor: an excluded date is never a next due date, an added one is, and a rule's own
//!   COUNT still counts the excluded ones. `End::Count` counts due dates (added ones included),
//!   because it is tracked by `occurrence_index`.
//!
//! Time: previous due dates and results are local wall clock `YYYY-MM-DDTHH:MM:SS` in `tzid`.
//! `completed_at` is RFC 3339 with an offset; in a zoned series it is the instant, seen as its
//! local time in `tzid`; in a floating series there is no instant, so the wall-clock time as
//! written in `completed_at` is used. DST follows the engine: a time in a gap keeps its nominal
//! wall-clock time and is never dropped. Problems have codes `invalid-rrule`,
//! `unsupported-rrule`, `invalid-datetime`, `unknown-timezone` or `invalid-recurring-pattern`,
//! and pointer None (the caller re-roots them under /payload/recurrence/...).

use chrono::NaiveDateTime;

use crate::problem::Problem;
use crate::recurrence::exceptions::{Exceptions, occurrences_with};
use crate::recurrence::rule::{MAX_INTERVAL, Rule, Skip};
use crate::recurrence::zone::{Zone, format_local, parse_instant, parse_local};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    /// Next due = a rule occurrence (Todoist `every`, Outlook recurrence).
    #[default]
    Schedule,
    /// Next due counted from the completion time (Todoist `every!`, Outlook regeneration).
    Completion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Next due = first occurrence after max(previous due, completion): never born overdue.
    #[default]
    Skip,
    /// Next due = first occurrence after the previous due, even if already past.
    CatchUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthOverflow {
    /// Day 31 in a 30-day month becomes day 30 (anchored on the series' start day: no drift).
    Clamp,
    /// RFC 5545: invalid dates are skipped.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum End {
    #[default]
    Never,
    /// Inclusive end: local wall-clock `YYYY-MM-DDTHH:MM:SS`, or a UTC instant `...Z`.
    Until(String),
    /// Total number of occurrences in the series, the first one included.
    Count(u32),
}

/// A recurring task's series definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// RRULE value without `RRULE:` (shorthand patterns already expanded, e.g. `FREQ=DAILY`).
    pub rule: String,
    /// IANA zone of the task's wall-clock times; None = floating.
    pub tzid: Option<String>,
    /// Series start, local wall clock `YYYY-MM-DDTHH:MM:SS`: the first due date.
    pub dtstart: String,
    pub anchor: Anchor,
    pub missed: Missed,
    /// None = the default for the rule's origin (clamp for shorthand, RFC skip for RRULEs);
    /// the caller resolves it before calling `next_due`.
    pub month_overflow: MonthOverflow,
    pub end: End,
    /// Dates removed from (EXDATE) and added to (RDATE) the rule's occurrences.
    pub exceptions: Exceptions,
}

/// The RRULE for a legacy `recurring_pattern` (`DAILY|WEEKLY|MONTHLY|YEARLY`, any case,
/// surrounding spaces ignored) with an optional interval: `FREQ=DAILY`, `FREQ=DAILY;INTERVAL=2`.
/// Code `invalid-recurring-pattern` for any other pattern or an interval outside 1..=1000.
pub fn expand_shorthand(pattern: &str, interval: Option<u32>) -> Result<String, Problem> {
    let freq = pattern.trim().to_ascii_uppercase();
    if !matches!(freq.as_str(), "DAILY" | "WEEKLY" | "MONTHLY" | "YEARLY") {
        return Err(Problem::new(
            "invalid-recurring-pattern",
            format!("recurring_pattern '{pattern}' is not DAILY, WEEKLY, MONTHLY or YEARLY"),
        ));
    }
    match interval {
        None | Some(1) => Ok(format!("FREQ={freq}")),
        Some(n) if (2..=MAX_INTERVAL).contains(&n) => Ok(format!("FREQ={freq};INTERVAL={n}")),
        Some(n) => Err(Problem::new(
            "invalid-recurring-pattern",
            format!("interval {n} is out of range (1..{MAX_INTERVAL})"),
        )),
    }
}

/// The due date of the occurrence that follows the completed one, or None when the series has
/// ended (COUNT or UNTIL reached, or the rule can never match again).
///
/// `previous_due`: the completed task's due date, local wall clock. `completed_at`: RFC 3339
/// instant. `occurrence_index`: 1-based index of the completed occurrence in the series.
pub fn next_due(
    series: &Series,
    previous_due: &str,
    completed_at: &str,
    occurrence_index: u32,
) -> Result<Option<String>, Problem> {
    let zone = Zone::parse(series.tzid.as_deref())?;
    let mut rule = Rule::parse(&series.rule)?;
    rule.check_until_form(zone)?;
    let dtstart = parse_local("dtstart", &series.dtstart)?;
    let due = parse_local("previous_due", previous_due)?;
    let completed_key = zone.key_of_instant(parse_instant("completed_at", completed_at)?);
    let until = parse_end_until(&series.end, zone)?;

    if let End::Count(n) = series.end
        && occurrence_index >= n
    {
        return Ok(None);
    }
    // Clamping is RFC 7529's SKIP=BACKWARD: an invalid day of the month becomes the month's
    // last day, computed afresh from DTSTART's day in every period, so it never drifts. This
    // is the same as appending `;RSCALE=GREGORIAN;SKIP=BACKWARD` to the rule text. A rule
    // that already chose its RSCALE/SKIP keeps its own choice.
    if series.month_overflow == MonthOverflow::Clamp && !rule.rscale {
        rule.rscale = true;
        rule.skip = Skip::Backward;
    }

    let next = match series.anchor {
        Anchor::Schedule => {
            let due_key = zone.key(due);
            let after = match series.missed {
                Missed::CatchUp => due_key,
                Missed::Skip => due_key.max(completed_key),
            };
            first(occurrences_with(
                &rule,
                dtstart,
                zone,
                after,
                1,
                &series.exceptions,
            )?)
        }
        Anchor::Completion => {
            // Re-anchoring restarts the rule, so its own COUNT is counted by the series'
            // occurrence index instead of from the new DTSTART.
            if rule.count.is_some_and(|count| occurrence_index >= count) {
                return Ok(None);
            }
            rule.count = None;
            let completed_local = zone.local_of_key(completed_key);
            let start = completed_local.date().and_time(due.time());
            let after = if rule.has_by_parts() {
                completed_key
            } else {
                zone.key(start)
            };
            first(occurrences_with(
                &rule,
                start,
                zone,
                after,
                1,
                &series.exceptions,
            )?)
        }
    };
    Ok(next
        .filter(|t| until.is_none_or(|u| u.allows(*t, zone)))
        .map(format_local))
}

fn first(found: Vec<NaiveDateTime>) -> Option<NaiveDateTime> {
    found.into_iter().next()
}

/// `End::Until`, ready to compare with a wall-clock due date.
#[derive(Debug, Clone, Copy)]
enum EndLimit {
    /// A comparison key (see `Zone::key`): an instant when zoned, wall clock when floating.
    Key(NaiveDateTime),
    /// A date-only end: due dates on that local date are still in the series.
    Date(chrono::NaiveDate),
}

impl EndLimit {
    fn allows(self, due: NaiveDateTime, zone: Zone) -> bool {
        match self {
            EndLimit::Key(key) => zone.key(due) <= key,
            EndLimit::Date(date) => due.date() <= date,
        }
    }
}

/// Reads `End::Until`: an RFC 3339 instant (`...Z` or with an offset), a local wall-clock
/// `YYYY-MM-DDTHH:MM:SS`, or a local date `YYYY-MM-DD` (inclusive of the whole day).
fn parse_end_until(end: &End, zone: Zone) -> Result<Option<EndLimit>, Problem> {
    let End::Until(text) = end else {
        return Ok(None);
    };
    if text.len() == 10 {
        let local = parse_local("end.until", &format!("{text}T00:00:00"))?;
        return Ok(Some(EndLimit::Date(local.date())));
    }
    if text.len() == 19 {
        return Ok(Some(EndLimit::Key(
            zone.key(parse_local("end.until", text)?),
        )));
    }
    Ok(Some(EndLimit::Key(
        zone.key_of_instant(parse_instant("end.until", text)?),
    )))
}
