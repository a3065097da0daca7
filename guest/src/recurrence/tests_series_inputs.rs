//! `crate::series` inputs: problems for invalid input, shorthand patterns, and a property over
//! generated shorthand series (the next due date is after both the due date and completion).

use proptest::prelude::*;

use super::tests_series::{NY, next, series};
use crate::series::{End, Series, expand_shorthand, next_due};

#[test]
fn invalid_inputs_are_problems() {
    let s = series("FREQ=DAILY", "2025-03-01T09:00:00", NY);
    let code = |s: &Series, due: &str, done: &str| next_due(s, due, done, 1).unwrap_err().code;
    assert_eq!(
        code(&s, "2025-03-01T09:00:00", "yesterday"),
        "invalid-datetime"
    );
    assert_eq!(
        code(&s, "2025-03-01", "2025-03-01T09:00:00Z"),
        "invalid-datetime"
    );
    assert_eq!(
        code(
            &Series {
                tzid: Some("Nowhere/Else".into()),
                ..s.clone()
            },
            "2025-03-01T09:00:00",
            "2025-03-01T09:00:00Z"
        ),
        "unknown-timezone"
    );
    assert_eq!(
        code(
            &Series {
                rule: "FREQ=DAILY;INTERVAL=0".into(),
                ..s.clone()
            },
            "2025-03-01T09:00:00",
            "2025-03-01T09:00:00Z"
        ),
        "invalid-rrule"
    );
    assert_eq!(
        code(
            &Series {
                rule: "FREQ=YEARLY;BYEASTER=0".into(),
                ..s.clone()
            },
            "2025-03-01T09:00:00",
            "2025-03-01T09:00:00Z"
        ),
        "unsupported-rrule"
    );
    assert_eq!(
        code(
            &Series {
                end: End::Until("soon".into()),
                ..s.clone()
            },
            "2025-03-01T09:00:00",
            "2025-03-01T09:00:00Z"
        ),
        "invalid-datetime"
    );
    let p = next_due(
        &Series {
            rule: "FREQ=DAILY;UNTIL=20250301T000000".into(),
            ..s
        },
        "2025-03-01T09:00:00",
        "2025-03-01T09:00:00Z",
        1,
    )
    .unwrap_err();
    assert_eq!((p.code.as_str(), p.pointer), ("invalid-rrule", None));
}

#[test]
fn shorthand_patterns() {
    assert_eq!(expand_shorthand("DAILY", None).unwrap(), "FREQ=DAILY");
    assert_eq!(expand_shorthand("weekly", Some(1)).unwrap(), "FREQ=WEEKLY");
    assert_eq!(
        expand_shorthand(" Monthly ", Some(3)).unwrap(),
        "FREQ=MONTHLY;INTERVAL=3"
    );
    assert_eq!(
        expand_shorthand("YEARLY", Some(2)).unwrap(),
        "FREQ=YEARLY;INTERVAL=2"
    );
    for (pattern, interval) in [
        ("HOURLY", None),
        ("", None),
        ("FREQ=DAILY", None),
        ("DAILY", Some(0)),
        ("DAILY", Some(1001)),
    ] {
        assert_eq!(
            expand_shorthand(pattern, interval).unwrap_err().code,
            "invalid-recurring-pattern"
        );
    }
}

proptest! {
    #[test]
    fn next_due_is_after_due_and_completion(
        pattern in prop::sample::select(vec!["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
        interval in 1u32..4,
        day in 1u32..=31,
        late_hours in -100i64..2000,
        zone in prop::sample::select(vec![None, Some("America/New_York"), Some("Australia/Sydney")]),
    ) {
        let rule = expand_shorthand(pattern, Some(interval)).unwrap();
        let start = chrono::NaiveDate::from_ymd_opt(2024, 1, day).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let dtstart = crate::recurrence::format_local(start);
        let s = series(&rule, &dtstart, zone);
        let done = (start + chrono::TimeDelta::hours(late_hours)).and_utc();
        let next = next(&s, &dtstart, &done.to_rfc3339(), 1).expect("open series");
        let next_t = crate::recurrence::parse_local("next", &next).unwrap();
        prop_assert!(next_t > start);
        let zone = crate::recurrence::zone::Zone::parse(zone).unwrap();
        prop_assert!(zone.key(next_t) > zone.key_of_instant(done.fixed_offset()));
    }
}
