//! Task semantics of `crate::series`: clamping, missed occurrences, anchors, ends, DST.
//! Input problems, shorthand patterns and properties are in `tests_series_inputs`.

use crate::series::{Anchor, End, Missed, MonthOverflow, Series, next_due};

pub(super) fn series(rule: &str, dtstart: &str, tz: Option<&str>) -> Series {
    Series {
        rule: rule.to_string(),
        tzid: tz.map(str::to_string),
        dtstart: dtstart.to_string(),
        anchor: Anchor::Schedule,
        missed: Missed::Skip,
        month_overflow: MonthOverflow::Clamp,
        end: End::Never,
        exceptions: Default::default(),
    }
}

pub(super) const NY: Option<&str> = Some("America/New_York");

pub(super) fn next(s: &Series, due: &str, completed: &str, index: u32) -> Option<String> {
    next_due(s, due, completed, index).unwrap_or_else(|p| panic!("{s:?}: {p}"))
}

/// Completes each due date on its day (at the same wall-clock time read as UTC, which is
/// between that due date and the next one) and collects the following due dates.
fn chain(s: &Series, first_due: &str, n: usize) -> Vec<String> {
    let mut due = first_due.to_string();
    let mut out = Vec::new();
    for index in 1..=n as u32 {
        let completed = format!("{due}Z");
        match next(s, &due, &completed, index) {
            Some(d) => {
                out.push(d.clone());
                due = d;
            }
            None => break,
        }
    }
    out
}

#[test]
fn monthly_31st_clamps_without_drift() {
    let s = series("FREQ=MONTHLY", "2025-01-31T09:00:00", Some("Europe/London"));
    let got = chain(&s, "2025-01-31T09:00:00", 4);
    assert_eq!(
        got,
        [
            "2025-02-28T09:00:00",
            "2025-03-31T09:00:00",
            "2025-04-30T09:00:00",
            "2025-05-31T09:00:00"
        ]
    );
    let leap = series("FREQ=MONTHLY", "2024-01-31T09:00:00", Some("Europe/London"));
    assert_eq!(
        chain(&leap, "2024-01-31T09:00:00", 2),
        ["2024-02-29T09:00:00", "2024-03-31T09:00:00"]
    );
    // RFC skipping when asked for: Jan 31 -> Mar 31.
    let rfc = Series {
        month_overflow: MonthOverflow::Skip,
        ..s.clone()
    };
    assert_eq!(
        chain(&rfc, "2025-01-31T09:00:00", 1),
        ["2025-03-31T09:00:00"]
    );
    // A rule with its own RSCALE/SKIP keeps it even under Clamp.
    let own = series(
        "FREQ=MONTHLY;RSCALE=GREGORIAN;SKIP=OMIT",
        "2025-01-31T09:00:00",
        Some("Europe/London"),
    );
    assert_eq!(
        chain(&own, "2025-01-31T09:00:00", 1),
        ["2025-03-31T09:00:00"]
    );
}

#[test]
fn feb_29_yearly_clamps_to_feb_28() {
    let s = series("FREQ=YEARLY", "2024-02-29T09:00:00", None);
    let got = chain(&s, "2024-02-29T09:00:00", 4);
    assert_eq!(
        got,
        [
            "2025-02-28T09:00:00",
            "2026-02-28T09:00:00",
            "2027-02-28T09:00:00",
            "2028-02-29T09:00:00"
        ]
    );
}

#[test]
fn missed_skip_is_never_born_overdue() {
    let s = series("FREQ=DAILY", "2025-03-01T09:00:00", NY);
    // Due Mar 3, completed 3 days late at noon: the next one is tomorrow, not Mar 4.
    assert_eq!(
        next(&s, "2025-03-03T09:00:00", "2025-03-06T12:00:00-05:00", 3).unwrap(),
        "2025-03-07T09:00:00"
    );
    // Completed late but before today's occurrence: today's is still ahead.
    assert_eq!(
        next(&s, "2025-03-03T09:00:00", "2025-03-06T08:00:00-05:00", 3).unwrap(),
        "2025-03-06T09:00:00"
    );
}

#[test]
fn missed_catch_up_follows_previous_due() {
    let s = Series {
        missed: Missed::CatchUp,
        ..series("FREQ=DAILY", "2025-03-01T09:00:00", NY)
    };
    assert_eq!(
        next(&s, "2025-03-03T09:00:00", "2025-03-06T12:00:00-05:00", 3).unwrap(),
        "2025-03-04T09:00:00"
    );
}

#[test]
fn early_completion_gives_the_following_occurrence() {
    let s = series("FREQ=WEEKLY", "2025-03-03T09:00:00", NY);
    // Due Monday Mar 10, done on Friday Mar 7: next is Mar 17, never Mar 10 again.
    assert_eq!(
        next(&s, "2025-03-10T09:00:00", "2025-03-07T09:00:00-05:00", 2).unwrap(),
        "2025-03-17T09:00:00"
    );
}

#[test]
fn anchor_completion() {
    let at = |rule: &str| Series {
        anchor: Anchor::Completion,
        ..series(rule, "2025-03-01T09:00:00", NY)
    };
    // Simple rules step INTERVAL x FREQ from the completion's local date, at the due time.
    let daily = at("FREQ=DAILY");
    assert_eq!(
        next(
            &daily,
            "2025-03-09T09:00:00",
            "2025-03-10T18:00:00-04:00",
            9
        )
        .unwrap(),
        "2025-03-11T09:00:00"
    );
    // 02:00Z on Mar 11 is still Mar 10 in New York: the user's local day counts.
    assert_eq!(
        next(&daily, "2025-03-09T09:00:00", "2025-03-11T02:00:00Z", 9).unwrap(),
        "2025-03-11T09:00:00"
    );
    let fortnightly = at("FREQ=WEEKLY;INTERVAL=2");
    assert_eq!(
        next(
            &fortnightly,
            "2025-03-03T09:00:00",
            "2025-03-12T10:00:00-04:00",
            1
        )
        .unwrap(),
        "2025-03-26T09:00:00"
    );
    let monthly = at("FREQ=MONTHLY");
    assert_eq!(
        next(
            &monthly,
            "2025-01-20T09:00:00",
            "2025-01-31T10:00:00-05:00",
            1
        )
        .unwrap(),
        "2025-02-28T09:00:00"
    );
    // With BY parts: the first occurrence after the completion.
    let mo_fr = at("FREQ=WEEKLY;BYDAY=MO,FR");
    assert_eq!(
        next(
            &mo_fr,
            "2025-03-10T09:00:00",
            "2025-03-12T18:00:00-04:00",
            2
        )
        .unwrap(),
        "2025-03-14T09:00:00"
    );
    // The rule's own COUNT is counted by the occurrence index.
    let counted = at("FREQ=DAILY;COUNT=3");
    assert!(
        next(
            &counted,
            "2025-03-09T09:00:00",
            "2025-03-10T18:00:00-04:00",
            2
        )
        .is_some()
    );
    assert_eq!(
        next(
            &counted,
            "2025-03-09T09:00:00",
            "2025-03-10T18:00:00-04:00",
            3
        ),
        None
    );
}

#[test]
fn count_ends_the_series() {
    let s = Series {
        end: End::Count(3),
        ..series("FREQ=DAILY", "2025-03-01T09:00:00", NY)
    };
    assert_eq!(
        next(&s, "2025-03-02T09:00:00", "2025-03-02T09:30:00-05:00", 2).unwrap(),
        "2025-03-03T09:00:00"
    );
    assert_eq!(
        next(&s, "2025-03-03T09:00:00", "2025-03-03T09:30:00-05:00", 3),
        None
    );
    // A COUNT inside the rule ends it too (counted by the engine from DTSTART).
    let in_rule = series("FREQ=DAILY;COUNT=3", "2025-03-01T09:00:00", NY);
    assert_eq!(
        next(
            &in_rule,
            "2025-03-03T09:00:00",
            "2025-03-03T09:30:00-05:00",
            3
        ),
        None
    );
}

#[test]
fn until_ends_the_series_inclusively() {
    let with = |until: &str| Series {
        end: End::Until(until.into()),
        ..series("FREQ=DAILY", "2025-03-01T09:00:00", NY)
    };
    let done = "2025-03-04T09:30:00-05:00";
    assert_eq!(
        next(&with("2025-03-05T09:00:00"), "2025-03-04T09:00:00", done, 4).unwrap(),
        "2025-03-05T09:00:00"
    );
    assert_eq!(
        next(
            &with("2025-03-05T09:00:00"),
            "2025-03-05T09:00:00",
            "2025-03-05T09:30:00-05:00",
            5
        ),
        None
    );
    assert_eq!(
        next(
            &with("2025-03-05T13:59:59Z"),
            "2025-03-04T09:00:00",
            done,
            4
        ),
        None
    );
    assert_eq!(
        next(
            &with("2025-03-05T14:00:00Z"),
            "2025-03-04T09:00:00",
            done,
            4
        )
        .unwrap(),
        "2025-03-05T09:00:00"
    );
    assert_eq!(
        next(&with("2025-03-05"), "2025-03-04T09:00:00", done, 4).unwrap(),
        "2025-03-05T09:00:00"
    );
    let in_rule = series(
        "FREQ=DAILY;UNTIL=20250305T140000Z",
        "2025-03-01T09:00:00",
        NY,
    );
    assert_eq!(
        next(
            &in_rule,
            "2025-03-05T09:00:00",
            "2025-03-05T09:30:00-05:00",
            5
        ),
        None
    );
}

#[test]
fn dst_gap_daily_keeps_nominal_time() {
    let s = series("FREQ=DAILY", "2025-03-07T02:30:00", NY);
    // 02:30 on 2025-03-09 does not exist in New York; the task is still due then, nominally.
    assert_eq!(
        next(&s, "2025-03-08T02:30:00", "2025-03-08T07:45:00-05:00", 2).unwrap(),
        "2025-03-09T02:30:00"
    );
    // It means 03:30 EDT, so a completion at 03:15 EDT that morning still leads to it.
    assert_eq!(
        next(&s, "2025-03-08T02:30:00", "2025-03-09T03:15:00-04:00", 2).unwrap(),
        "2025-03-09T02:30:00"
    );
    assert_eq!(
        next(&s, "2025-03-09T02:30:00", "2025-03-09T03:40:00-04:00", 3).unwrap(),
        "2025-03-10T02:30:00"
    );
}

#[test]
fn floating_series_reads_completion_as_written() {
    let s = series("FREQ=DAILY", "2025-03-01T00:00:00", None);
    assert_eq!(
        next(&s, "2025-03-03T00:00:00", "2025-03-05T23:30:00-08:00", 3).unwrap(),
        "2025-03-06T00:00:00"
    );
}

#[test]
fn never_matching_rule_ends_quickly() {
    let s = Series {
        month_overflow: MonthOverflow::Skip,
        ..series(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "2025-01-01T09:00:00",
            NY,
        )
    };
    assert_eq!(
        next(&s, "2025-01-01T09:00:00", "2025-01-01T10:00:00-05:00", 1),
        None
    );
    let daily = Series {
        rule: "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30".into(),
        ..s.clone()
    };
    assert_eq!(
        next(
            &daily,
            "2025-01-01T09:00:00",
            "2025-01-01T10:00:00-05:00",
            1
        ),
        None
    );
    // Under Clamp the same yearly rule means "the last day of February".
    let clamped = Series {
        month_overflow: MonthOverflow::Clamp,
        ..s
    };
    assert_eq!(
        next(
            &clamped,
            "2025-01-01T09:00:00",
            "2025-01-01T10:00:00-05:00",
            1
        )
        .unwrap(),
        "2025-02-28T09:00:00"
    );
}

#[test]
fn sub_daily_task_skips_missed_slots_and_counts_from_the_start() {
    // "Every 4 hours while awake", done late at 13:10 New York (18:10Z): the 12:00 slot is
    // missed, so the next one is 16:00, never an overdue 12:00.
    let s = series(
        "FREQ=HOURLY;INTERVAL=4;BYHOUR=8,12,16,20",
        "2026-12-01T08:00:00",
        NY,
    );
    assert_eq!(
        next(&s, "2026-12-01T08:00:00", "2026-12-01T18:10:00Z", 1).as_deref(),
        Some("2026-12-01T16:00:00")
    );
    // After 20:00 comes the next morning.
    assert_eq!(
        next(&s, "2026-12-01T20:00:00", "2026-12-02T01:05:00Z", 4).as_deref(),
        Some("2026-12-02T08:00:00")
    );
    // COUNT=3 in the rule: 08:00, 12:00, 16:00, then the series is over.
    let counted = series(
        "FREQ=HOURLY;INTERVAL=4;BYHOUR=8,12,16,20;COUNT=3",
        "2026-12-01T08:00:00",
        NY,
    );
    assert_eq!(
        next(&counted, "2026-12-01T16:00:00", "2026-12-01T21:01:00Z", 3),
        None
    );
}
