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
