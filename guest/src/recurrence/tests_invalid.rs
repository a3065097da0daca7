//! Invalid input table: every refused rule gives one problem with the right code, no pointer,
//! and a message that names the offending part.

use super::occurrences_after;

const NY: Option<&str> = Some("America/New_York");

fn problem(rule: &str, tz: Option<&str>) -> crate::problem::Problem {
    occurrences_after(rule, "2025-01-06T09:00:00", tz, "2025-01-01T00:00:00", 5)
        .expect_err(&format!("{rule} must be refused"))
}

#[test]
fn invalid_rules_name_their_part() {
    let cases: &[(&str, &str)] = &[
        ("FREQ=DAILY;COUNT=3;UNTIL=20250201T000000Z", "UNTIL"),
        ("FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=-32", "BYMONTHDAY"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=1001", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=99999999999999999999", "INTERVAL"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;COUNT=x", "COUNT"),
        ("FREQ=DAILY;FOO=1", "FOO"),
        ("FREQ=DAILY;COUNT=2;COUNT=3", "COUNT"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("", "FREQ"),
        ("COUNT=3", "FREQ"),
        ("COUNT=3;FREQ=DAILY", "FREQ"),
        ("FREQ=FORTNIGHTLY", "FREQ"),
        ("FREQ=YEARLY;BYDAY=54MO", "BYDAY"),
        ("FREQ=YEARLY;BYDAY=-54MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=6MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=-6MO", "BYDAY"),
        ("FREQ=YEARLY;BYMONTH=3;BYDAY=6TH", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=MON", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=", "BYDAY"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=DAILY;BYDAY=-1FR", "BYDAY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=0", "BYSETPOS"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=32", "BYSETPOS"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=8", "BYSETPOS"),
        ("FREQ=YEARLY;BYDAY=MO;BYSETPOS=-367", "BYSETPOS"),
        ("FREQ=DAILY;BYMONTH=1;BYSETPOS=2", "BYSETPOS"),
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH"),
        ("FREQ=DAILY;BYMONTH=0", "BYMONTH"),
        ("FREQ=DAILY;WKST=XX", "WKST"),
        ("FREQ=DAILY;SKIP=BACKWARD", "SKIP"),
        ("FREQ=DAILY;RSCALE=GREGORIAN;SKIP=SIDEWAYS", "SKIP"),
        ("FREQ=DAILY;UNTIL=20250101T000000", "UNTIL"),
        ("FREQ=DAILY;UNTIL=2025-01-01", "UNTIL"),
        ("FREQ=DAILY;UNTIL=20250230", "UNTIL"),
        ("FREQ=DAILY;UNTIL=00000101", "UNTIL"),
        ("FREQ=DAILY;UNTIL=20250101T250000Z", "UNTIL"),
        ("FREQ=DAILY;", "(empty)"),
        ("FREQ=DAILY;COUNT", "COUNT"),
        ("RSCALE=GREGORIAN", "FREQ"),
        ("RSCALE=GREGORIAN;COUNT=2;FREQ=DAILY", "FREQ"),
        ("FREQ=MONTHLY;BYWEEKNO=20", "BYWEEKNO"),
        ("FREQ=YEARLY;BYWEEKNO=0", "BYWEEKNO"),
        ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO"),
        ("FREQ=YEARLY;BYWEEKNO=20;BYDAY=1MO", "BYDAY"),
        ("FREQ=DAILY;BYYEARDAY=100", "BYYEARDAY"),
        ("FREQ=WEEKLY;BYYEARDAY=100", "BYYEARDAY"),
        ("FREQ=MONTHLY;BYYEARDAY=100", "BYYEARDAY"),
        ("FREQ=YEARLY;BYYEARDAY=0", "BYYEARDAY"),
        ("FREQ=YEARLY;BYYEARDAY=-367", "BYYEARDAY"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR"),
        ("FREQ=DAILY;BYHOUR=-1", "BYHOUR"),
        ("FREQ=HOURLY;BYMINUTE=60", "BYMINUTE"),
        ("FREQ=MINUTELY;BYSECOND=61", "BYSECOND"),
        ("FREQ=HOURLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=HOURLY;BYHOUR=9;BYSETPOS=2", "BYSETPOS"),
        ("FREQ=SECONDLY;BYSECOND=1;BYSETPOS=2", "BYSETPOS"),
        ("FREQ=MINUTELY;BYSECOND=1,2;BYSETPOS=3", "BYSETPOS"),
    ];
    for (rule, part) in cases {
        let p = problem(rule, NY);
        assert_eq!(p.code, "invalid-rrule", "{rule}: {p}");
        assert_eq!(p.pointer, None, "{rule}");
        assert!(
            p.message.contains(&format!("RRULE part {part}")),
            "{rule}: message '{}' must name {part}",
            p.message
        );
    }
}

#[test]
fn floating_dtstart_refuses_utc_until() {
    let p = problem("FREQ=DAILY;UNTIL=20250201T000000Z", None);
    assert_eq!(p.code, "invalid-rrule");
    assert!(p.message.contains("RRULE part UNTIL"), "{p}");
}

#[test]
fn only_what_rfc_5545_lacks_is_unsupported() {
    for rule in [
        "FREQ=HOURLY",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=YEARLY;BYWEEKNO=20",
        "FREQ=YEARLY;BYYEARDAY=100",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=DAILY;BYMINUTE=0",
        "FREQ=DAILY;BYSECOND=0,60",
        "FREQ=HOURLY;BYMINUTE=0,30;BYSETPOS=-1",
        "RSCALE=GREGORIAN;FREQ=MONTHLY;SKIP=BACKWARD",
    ] {
        let got = occurrences_after(rule, "2025-01-06T09:00:00", NY, "2025-01-01T00:00:00", 3);
        assert_eq!(got.map(|v| v.len()), Ok(3), "{rule}");
    }
    let cases: &[(&str, &str)] = &[
        ("FREQ=YEARLY;BYEASTER=0", "BYEASTER"),
        ("FREQ=MONTHLY;RSCALE=HEBREW", "RSCALE"),
    ];
    for (rule, part) in cases {
        let p = problem(rule, NY);
        assert_eq!(p.code, "unsupported-rrule", "{rule}: {p}");
        assert_eq!(p.pointer, None);
        assert!(
            p.message.contains(&format!("RRULE part {part}")),
            "{rule}: {}",
            p.message
        );
    }
}

#[test]
fn names_and_values_are_case_insensitive() {
    let got = occurrences_after(
        "freq=weekly;byday=mo,-1fr;wkst=su",
        "2025-01-06T09:00:00",
        NY,
        "2025-01-01T00:00:00",
        1,
    );
    assert!(
        got.is_err(),
        "an ordinal with WEEKLY is refused whatever the case"
    );
    let got = occurrences_after(
        "freq=monthly;byday=-1fr",
        "2025-01-06T09:00:00",
        NY,
        "2025-01-01T00:00:00",
        1,
    );
    assert_eq!(got.unwrap(), ["2025-01-31T09:00:00"]);
}

#[test]
fn bad_datetimes_and_zones() {
    let call = |dtstart: &str, tz: Option<&str>, after: &str| {
        occurrences_after("FREQ=DAILY", dtstart, tz, after, 1).expect_err("refused")
    };
    let p = call("2025-13-01T09:00:00", NY, "2025-01-01T00:00:00");
    assert_eq!(
        (p.code.as_str(), p.message.starts_with("dtstart")),
        ("invalid-datetime", true),
        "{p}"
    );
    let p = call("2025-01-01T09:00:00", NY, "yesterday");
    assert_eq!(
        (p.code.as_str(), p.message.starts_with("after")),
        ("invalid-datetime", true),
        "{p}"
    );
    let p = call(
        "2025-01-01T09:00:00",
        Some("America/Gotham"),
        "2025-01-01T00:00:00",
    );
    assert_eq!(p.code, "unknown-timezone");
    assert_eq!(p.pointer, None);
}
