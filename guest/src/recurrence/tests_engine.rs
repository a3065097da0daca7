//! Engine behaviour the RFC table does not show: DST gaps, DTSTART matching, BYDAY unions,
//! WEEKLY+BYSETPOS, RSCALE/SKIP, UNTIL forms, jumps, COUNT skipping and calendar bounds.

use super::occurrences_after;
use super::tests_rfc::dates;

const NY: &str = "America/New_York";

fn floating(rule: &str, dtstart: &str, after: &str, n: u32) -> Vec<String> {
    occurrences_after(rule, dtstart, None, after, n).unwrap_or_else(|p| panic!("{rule}: {p}"))
}

#[test]
fn dst_gap_keeps_nominal_time_and_compares_as_shifted_instant() {
    let ny = |after: &str, rule: &str| {
        occurrences_after(rule, "2025-03-08T02:30:00", Some(NY), after, 2).unwrap()
    };
    // 02:30 on 2025-03-09 does not exist; it is kept as written, and never dropped.
    assert_eq!(
        ny("2025-03-08T02:30:00", "FREQ=DAILY"),
        ["2025-03-09T02:30:00", "2025-03-10T02:30:00"]
    );
    // As an instant it is 03:30 EDT: after 03:00 it is still ahead, after 03:30 it is not.
    assert_eq!(
        ny("2025-03-09T03:00:00", "FREQ=DAILY")[0],
        "2025-03-09T02:30:00"
    );
    assert_eq!(
        ny("2025-03-09T03:30:00", "FREQ=DAILY")[0],
        "2025-03-10T02:30:00"
    );
    // UNTIL 07:30Z is exactly that instant: inclusive.
    assert_eq!(
        ny("2025-03-08T02:30:00", "FREQ=DAILY;UNTIL=20250309T073000Z"),
        ["2025-03-09T02:30:00"]
    );
}

#[test]
fn dtstart_only_counts_when_it_matches() {
    let got = floating(
        "FREQ=MONTHLY;BYDAY=-1FR;COUNT=2",
        "2025-01-07T09:00:00",
        "2025-01-01T00:00:00",
        10,
    );
    assert_eq!(got, ["2025-01-31T09:00:00", "2025-02-28T09:00:00"]);
}

#[test]
fn byday_list_is_a_union() {
    // Every Thursday plus the last Friday (dateutil returns nothing here).
    let got = floating(
        "FREQ=MONTHLY;BYDAY=TH,-1FR",
        "2025-01-01T09:00:00",
        "2025-01-01T00:00:00",
        6,
    );
    assert_eq!(got, dates("2025-01: 2,9,16,23,30,31"));
}

#[test]
fn weekly_bysetpos_works_per_wkst_week() {
    // From a Wednesday, the first of MO/WE/FR in its week is that week's Monday (before
    // DTSTART), so the answer is next Monday, not DTSTART (dateutil #1398).
    let got = floating(
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=1",
        "2025-01-08T09:00:00",
        "2025-01-01T00:00:00",
        2,
    );
    assert_eq!(got, dates("2025-01: 13,20"));
}

#[test]
fn rscale_skip_variants() {
    let monthly = |skip: &str| {
        let rule = format!("FREQ=MONTHLY;RSCALE=GREGORIAN;SKIP={skip}");
        floating(&rule, "2025-01-31T09:00:00", "2025-01-01T00:00:00", 5)
    };
    assert_eq!(
        monthly("BACKWARD"),
        dates("2025-01: 31; 2025-02: 28; 2025-03: 31; 2025-04: 30; 2025-05: 31")
    );
    assert_eq!(
        monthly("FORWARD"),
        dates("2025-01: 31; 2025-03: 1,31; 2025-05: 1,31")
    );
    assert_eq!(
        monthly("OMIT"),
        dates("2025-01: 31; 2025-03: 31; 2025-05: 31; 2025-07: 31; 2025-08: 31")
    );
    let yearly = |skip: &str| {
        let rule = format!("FREQ=YEARLY;RSCALE=GREGORIAN;SKIP={skip}");
        floating(&rule, "2024-02-29T09:00:00", "2024-03-01T00:00:00", 1)
    };
    assert_eq!(yearly("BACKWARD"), ["2025-02-28T09:00:00"]);
    assert_eq!(yearly("FORWARD"), ["2025-03-01T09:00:00"]);
    assert_eq!(yearly("OMIT"), ["2028-02-29T09:00:00"]);
    // Two invalid days clamped to the same day give one occurrence.
    let got = floating(
        "FREQ=MONTHLY;BYMONTHDAY=30,31;RSCALE=GREGORIAN;SKIP=BACKWARD",
        "2025-01-30T09:00:00",
        "2025-02-01T00:00:00",
        2,
    );
    assert_eq!(got, dates("2025-02: 28; 2025-03: 30"));
}

#[test]
fn until_forms() {
    let got = floating(
        "FREQ=DAILY;UNTIL=20250103T090000",
        "2025-01-01T09:00:00",
        "2024-12-31T00:00:00",
        10,
    );
    assert_eq!(got, dates("2025-01: 1,2,3"));
    let got = floating(
        "FREQ=DAILY;UNTIL=20250103",
        "2025-01-01T09:00:00",
        "2024-12-31T00:00:00",
        10,
    );
    assert_eq!(got, dates("2025-01: 1,2,3"));
    let zoned = occurrences_after(
        "FREQ=DAILY;UNTIL=20250103",
        "2025-01-01T09:00:00",
        Some(NY),
        "2024-12-31T00:00:00",
        10,
    );
    assert_eq!(zoned.unwrap(), dates("2025-01: 1,2,3"));
}

#[test]
fn jumps_far_ahead_and_respects_bounds() {
    let got = floating(
        "FREQ=DAILY",
        "0001-01-01T00:00:00",
        "9000-06-15T12:00:00",
        1,
    );
    assert_eq!(got, ["9000-06-16T00:00:00"]);
    let got = floating(
        "FREQ=MONTHLY;BYDAY=-1FR",
        "0001-01-01T09:00:00",
        "9999-12-01T00:00:00",
        5,
    );
    assert_eq!(got, ["9999-12-31T09:00:00"]);
    assert!(
        floating(
            "FREQ=WEEKLY",
            "9999-12-31T09:00:00",
            "9999-12-31T09:00:00",
            5
        )
        .is_empty()
    );
    assert!(
        floating(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            5
        )
        .is_empty()
    );
    assert!(
        floating(
            "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            5
        )
        .is_empty()
    );
    assert_eq!(
        floating(
            "FREQ=DAILY",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            u32::MAX
        )
        .len(),
        10_000
    );
    assert!(
        floating(
            "FREQ=DAILY",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            0
        )
        .is_empty()
    );
    // COUNT counts from DTSTART even when `after` is far ahead, whether the engine walks
    // (a period may hold no date) or skips whole periods (each holds exactly one).
    let got = floating(
        "FREQ=DAILY;COUNT=3",
        "2025-01-01T09:00:00",
        "2025-01-02T09:00:00",
        10,
    );
    assert_eq!(got, ["2025-01-03T09:00:00"]);
    let got = floating(
        "FREQ=DAILY;COUNT=3652059",
        "0001-01-01T09:00:00",
        "9999-12-30T09:00:00",
        10,
    );
    assert_eq!(got, ["9999-12-31T09:00:00"]);
    let got = floating(
        "FREQ=DAILY;COUNT=3652058",
        "0001-01-01T09:00:00",
        "9999-12-30T00:00:00",
        10,
    );
    assert_eq!(got, ["9999-12-30T09:00:00"]);
    let got = floating(
        "FREQ=MONTHLY;COUNT=5",
        "2025-01-31T09:00:00",
        "2025-03-01T00:00:00",
        10,
    );
    assert_eq!(
        got,
        dates("2025-03: 31; 2025-05: 31; 2025-07: 31; 2025-08: 31")
    );
    let rule = "FREQ=MONTHLY;COUNT=5;RSCALE=GREGORIAN;SKIP=BACKWARD";
    let got = floating(rule, "2025-01-31T09:00:00", "2025-03-01T00:00:00", 10);
    assert_eq!(got, dates("2025-03: 31; 2025-04: 30; 2025-05: 31"));
}

fn ny(rule: &str, dtstart: &str, after: &str, n: u32) -> Vec<String> {
    occurrences_after(rule, dtstart, Some(NY), after, n).unwrap_or_else(|p| panic!("{rule}: {p}"))
}

#[test]
fn hourly_across_spring_forward_moves_the_gap_hour_and_never_repeats_an_instant() {
    // 02:00 does not exist on 2025-03-09: it stays 02:00 as written and is the instant 03:00
    // EDT (§3.3.5), so the rule's own 03:00 is the same moment and is not listed twice.
    assert_eq!(
        ny(
            "FREQ=HOURLY",
            "2025-03-09T00:00:00",
            "2025-03-08T23:59:59",
            4
        ),
        [
            "2025-03-09T00:00:00",
            "2025-03-09T01:00:00",
            "2025-03-09T02:00:00",
            "2025-03-09T04:00:00"
        ]
    );
    // Every 45 minutes: 02:15 is 03:15 EDT, so the rule's 03:00 (earlier) is dropped.
    assert_eq!(
        ny(
            "FREQ=MINUTELY;INTERVAL=45",
            "2025-03-09T00:00:00",
            "2025-03-09T01:00:00",
            3
        ),
        [
            "2025-03-09T01:30:00",
            "2025-03-09T02:15:00",
            "2025-03-09T03:45:00"
        ]
    );
}

#[test]
fn hourly_across_fall_back_takes_the_first_of_a_repeated_hour() {
    // 01:00 happens twice on 2025-11-02; the rule steps on the wall clock, so it yields the
    // first 01:00 (EDT) once, then 02:00 EST.
    assert_eq!(
        ny(
            "FREQ=HOURLY",
            "2025-11-02T00:00:00",
            "2025-11-01T23:59:59",
            3
        ),
        [
            "2025-11-02T00:00:00",
            "2025-11-02T01:00:00",
            "2025-11-02T02:00:00"
        ]
    );
}

#[test]
fn every_four_hours_while_awake() {
    let got = ny(
        "FREQ=HOURLY;INTERVAL=4;BYHOUR=8,12,16,20",
        "2026-12-01T08:00:00",
        "2026-12-01T07:00:00",
        6,
    );
    assert_eq!(
        got,
        [
            "2026-12-01T08:00:00",
            "2026-12-01T12:00:00",
            "2026-12-01T16:00:00",
            "2026-12-01T20:00:00",
            "2026-12-02T08:00:00",
            "2026-12-02T12:00:00"
        ]
    );
}

#[test]
fn sub_daily_parts_finer_than_freq_come_from_dtstart_and_setpos_picks_per_period() {
    assert_eq!(
        floating(
            "FREQ=HOURLY;INTERVAL=5",
            "2025-01-01T22:15:30",
            "2025-01-01T22:15:30",
            2
        ),
        ["2025-01-02T03:15:30", "2025-01-02T08:15:30"]
    );
    // The last of :00/:30 in each hour.
    assert_eq!(
        floating(
            "FREQ=HOURLY;BYMINUTE=0,30;BYSETPOS=-1",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            2
        ),
        ["2025-01-01T09:30:00", "2025-01-01T10:30:00"]
    );
    // The last weekday of the month at 17:00 and 17:30: BYSETPOS over times too.
    assert_eq!(
        floating(
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=17;BYMINUTE=0,30;BYSETPOS=-1",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            2
        ),
        ["2025-01-31T17:30:00", "2025-02-28T17:30:00"]
    );
}

#[test]
fn sub_daily_rules_that_cannot_or_rarely_match_answer_quickly() {
    // Never matches: the day limits skip whole days, and 50 quiet years end the search.
    assert!(
        floating(
            "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00",
            3
        )
        .is_empty()
    );
    // Leap days only, found years ahead without visiting their seconds one by one.
    assert_eq!(
        floating(
            "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=29;BYHOUR=12;BYMINUTE=0",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00",
            2
        ),
        ["2028-02-29T12:00:00", "2032-02-29T12:00:00"]
    );
    // Odd seconds on an even-second grid: the bounded search gives up with a problem.
    let p = occurrences_after(
        "FREQ=SECONDLY;INTERVAL=2;BYSECOND=1",
        "2025-01-01T00:00:00",
        None,
        "2025-01-01T00:00:00",
        1,
    )
    .unwrap_err();
    assert_eq!(p.code, "unsupported-rrule", "{p}");
    assert!(p.message.contains("RRULE part FREQ"), "{p}");
}

#[test]
fn byweekno_with_wkst_and_negative_weeks() {
    // ISO week 1 of 2026 starts Monday 2025-12-29; the last ISO week of 2026 is week 53.
    assert_eq!(
        floating(
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
            "2025-01-01T09:00:00",
            "2025-01-01T09:00:00",
            2
        ),
        ["2025-12-29T09:00:00", "2027-01-04T09:00:00"]
    );
    assert_eq!(
        floating(
            "FREQ=YEARLY;BYWEEKNO=-1;BYDAY=TH",
            "2026-01-01T09:00:00",
            "2026-01-01T09:00:00",
            1
        ),
        ["2026-12-31T09:00:00"]
    );
    // With WKST=SU, week 1 of 2026 starts Sunday 2026-01-04.
    assert_eq!(
        floating(
            "FREQ=YEARLY;BYWEEKNO=1;BYDAY=SU,MO;WKST=SU",
            "2026-01-01T09:00:00",
            "2026-01-01T09:00:00",
            2
        ),
        ["2026-01-04T09:00:00", "2026-01-05T09:00:00"]
    );
}
