//! Golden table: the worked examples of RFC 5545 §3.8.5.3 that this engine's subset can
//! express, with the dates copied from the RFC text (all at 09:00 America/New_York, so the
//! EDT/EST change in each example is crossed too). Examples that need unsupported parts are
//! checked to be refused. Engine behaviour the RFC table does not show is in `tests_engine`.

use chrono::{Days, NaiveDate, TimeDelta};

use super::occurrences_after;
use super::zone::parse_local;

const NY: &str = "America/New_York";

/// Expands `"1997-09: 2,9,16; 1997-10: 7"` into `1997-09-02T09:00:00`, ... (RFC notation).
pub(super) fn dates(spec: &str) -> Vec<String> {
    let mut out = Vec::new();
    for group in spec.split(';') {
        let (month, days) = group.trim().split_once(':').expect("month: days");
        for day in days.split(',') {
            out.push(format!(
                "{}-{:02}T09:00:00",
                month.trim(),
                day.trim().parse::<u32>().unwrap()
            ));
        }
    }
    out
}

/// `count` dates `step` days apart from `start`, at 09:00.
fn every(start: &str, step: u64, count: u64) -> Vec<String> {
    let start = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
    (0..count)
        .map(|i| format!("{}T09:00:00", start + Days::new(i * step)))
        .collect()
}

/// The first `n` occurrences from DTSTART on (DTSTART included when it matches).
fn first_n(rule: &str, dtstart: &str, n: u32) -> Vec<String> {
    let before = parse_local("t", dtstart).unwrap() - TimeDelta::seconds(1);
    let after = before.format("%Y-%m-%dT%H:%M:%S").to_string();
    occurrences_after(rule, dtstart, Some(NY), &after, n).unwrap_or_else(|p| panic!("{rule}: {p}"))
}

/// (name, rule, dtstart date, expected). Rules with COUNT or UNTIL are checked to end exactly
/// there (asked for many more); "forever" rules are checked on their first occurrences.
fn golden() -> Vec<(&'static str, &'static str, &'static str, Vec<String>)> {
    vec![
        (
            "daily 10",
            "FREQ=DAILY;COUNT=10",
            "1997-09-02",
            dates("1997-09: 2,3,4,5,6,7,8,9,10,11"),
        ),
        (
            "daily until Dec 24",
            "FREQ=DAILY;UNTIL=19971224T000000Z",
            "1997-09-02",
            every("1997-09-02", 1, 113),
        ),
        (
            "every other day",
            "FREQ=DAILY;INTERVAL=2",
            "1997-09-02",
            every("1997-09-02", 2, 46),
        ),
        (
            "every 10 days x5",
            "FREQ=DAILY;INTERVAL=10;COUNT=5",
            "1997-09-02",
            dates("1997-09: 2,12,22; 1997-10: 2,12"),
        ),
        (
            "January for 3 years (yearly)",
            "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
            "1998-01-01",
            [
                every("1998-01-01", 1, 31),
                every("1999-01-01", 1, 31),
                every("2000-01-01", 1, 31),
            ]
            .concat(),
        ),
        (
            "January for 3 years (daily)",
            "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1",
            "1998-01-01",
            [
                every("1998-01-01", 1, 31),
                every("1999-01-01", 1, 31),
                every("2000-01-01", 1, 31),
            ]
            .concat(),
        ),
        (
            "weekly 10",
            "FREQ=WEEKLY;COUNT=10",
            "1997-09-02",
            dates("1997-09: 2,9,16,23,30; 1997-10: 7,14,21,28; 1997-11: 4"),
        ),
        (
            "weekly until Dec 24",
            "FREQ=WEEKLY;UNTIL=19971224T000000Z",
            "1997-09-02",
            dates(
                "1997-09: 2,9,16,23,30; 1997-10: 7,14,21,28; 1997-11: 4,11,18,25; 1997-12: 2,9,16,23",
            ),
        ),
        (
            "every other week",
            "FREQ=WEEKLY;INTERVAL=2;WKST=SU",
            "1997-09-02",
            dates(
                "1997-09: 2,16,30; 1997-10: 14,28; 1997-11: 11,25; 1997-12: 9,23; 1998-01: 6,20; 1998-02: 3,17",
            ),
        ),
        (
            "weekly TU,TH 5 weeks (until)",
            "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH",
            "1997-09-02",
            dates("1997-09: 2,4,9,11,16,18,23,25,30; 1997-10: 2"),
        ),
        (
            "weekly TU,TH 5 weeks (count)",
            "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH",
            "1997-09-02",
            dates("1997-09: 2,4,9,11,16,18,23,25,30; 1997-10: 2"),
        ),
        (
            "every other week MO,WE,FR until Dec 24",
            "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
            "1997-09-01",
            dates(
                "1997-09: 1,3,5,15,17,19,29; 1997-10: 1,3,13,15,17,27,29,31; \
                 1997-11: 10,12,14,24,26,28; 1997-12: 8,10,12,22",
            ),
        ),
        (
            "every other week TU,TH x8",
            "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
            "1997-09-02",
            dates("1997-09: 2,4,16,18,30; 1997-10: 2,14,16"),
        ),
        (
            "monthly first Friday x10",
            "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
            "1997-09-05",
            dates(
                "1997-09: 5; 1997-10: 3; 1997-11: 7; 1997-12: 5; 1998-01: 2; 1998-02: 6; \
                 1998-03: 6; 1998-04: 3; 1998-05: 1; 1998-06: 5",
            ),
        ),
        (
            "monthly first Friday until Dec 24",
            "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
            "1997-09-05",
            dates("1997-09: 5; 1997-10: 3; 1997-11: 7; 1997-12: 5"),
        ),
        (
            "every other month first and last Sunday x10",
            "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
            "1997-09-07",
            dates("1997-09: 7,28; 1997-11: 2,30; 1998-01: 4,25; 1998-03: 1,29; 1998-05: 3,31"),
        ),
        (
            "monthly second-to-last Monday x6",
            "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
            "1997-09-22",
            dates("1997-09: 22; 1997-10: 20; 1997-11: 17; 1997-12: 22; 1998-01: 19; 1998-02: 16"),
        ),
        (
            "monthly third-to-last day",
            "FREQ=MONTHLY;BYMONTHDAY=-3",
            "1997-09-28",
            dates("1997-09: 28; 1997-10: 29; 1997-11: 28; 1997-12: 29; 1998-01: 29; 1998-02: 26"),
        ),
        (
            "monthly 2nd and 15th x10",
            "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
            "1997-09-02",
            dates("1997-09: 2,15; 1997-10: 2,15; 1997-11: 2,15; 1997-12: 2,15; 1998-01: 2,15"),
        ),
        (
            "monthly first and last day x10",
            "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
            "1997-09-30",
            dates(
                "1997-09: 30; 1997-10: 1,31; 1997-11: 1,30; 1997-12: 1,31; 1998-01: 1,31; 1998-02: 1",
            ),
        ),
        (
            "every 18 months 10th-15th x10",
            "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
            "1997-09-10",
            dates("1997-09: 10,11,12,13,14,15; 1999-03: 10,11,12,13"),
        ),
        (
            "every Tuesday every other month",
            "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
            "1997-09-02",
            dates(
                "1997-09: 2,9,16,23,30; 1997-11: 4,11,18,25; 1998-01: 6,13,20,27; 1998-03: 3,10,17,24,31",
            ),
        ),
        (
            "yearly June and July x10",
            "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
            "1997-06-10",
            dates(
                "1997-06: 10; 1997-07: 10; 1998-06: 10; 1998-07: 10; 1999-06: 10; 1999-07: 10; \
                 2000-06: 10; 2000-07: 10; 2001-06: 10; 2001-07: 10",
            ),
        ),
        (
            "every other year Jan, Feb, Mar x10",
            "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
            "1997-03-10",
            dates(
                "1997-03: 10; 1999-01: 10; 1999-02: 10; 1999-03: 10; 2001-01: 10; 2001-02: 10; \
                 2001-03: 10; 2003-01: 10; 2003-02: 10; 2003-03: 10",
            ),
        ),
        (
            "every 20th Monday",
            "FREQ=YEARLY;BYDAY=20MO",
            "1997-05-19",
            dates("1997-05: 19; 1998-05: 18; 1999-05: 17"),
        ),
        (
            "every Thursday in March",
            "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
            "1997-03-13",
            dates("1997-03: 13,20,27; 1998-03: 5,12,19,26; 1999-03: 4,11,18,25"),
        ),
        (
            "every Thursday in June, July, August",
            "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
            "1997-06-05",
            dates(
                "1997-06: 5,12,19,26; 1997-07: 3,10,17,24,31; 1997-08: 7,14,21,28; \
                 1998-06: 4,11,18,25; 1998-07: 2,9,16,23,30; 1998-08: 6,13,20,27; \
                 1999-06: 3,10,17,24; 1999-07: 1,8,15,22,29; 1999-08: 5,12,19,26",
            ),
        ),
        (
            // The RFC also EXDATEs DTSTART; it does not match the rule, so it is left out anyway.
            "Friday 13th",
            "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
            "1997-09-02",
            dates("1998-02: 13; 1998-03: 13; 1998-11: 13; 1999-08: 13; 2000-10: 13"),
        ),
        (
            "first Saturday after first Sunday",
            "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
            "1997-09-13",
            dates(
                "1997-09: 13; 1997-10: 11; 1997-11: 8; 1997-12: 13; 1998-01: 10; 1998-02: 7; \
                 1998-03: 7; 1998-04: 11; 1998-05: 9; 1998-06: 13",
            ),
        ),
        (
            "US election day",
            "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
            "1996-11-05",
            dates("1996-11: 5; 2000-11: 7; 2004-11: 2"),
        ),
        (
            "third TU/WE/TH x3",
            "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
            "1997-09-04",
            dates("1997-09: 4; 1997-10: 7; 1997-11: 6"),
        ),
        (
            "second-to-last weekday",
            "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
            "1997-09-29",
            dates(
                "1997-09: 29; 1997-10: 30; 1997-11: 27; 1997-12: 30; 1998-01: 29; 1998-02: 26; 1998-03: 30",
            ),
        ),
        (
            "WKST=MO",
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
            "1997-08-05",
            dates("1997-08: 5,10,19,24"),
        ),
        (
            "WKST=SU",
            "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
            "1997-08-05",
            dates("1997-08: 5,17,19,31"),
        ),
        (
            "invalid dates skipped",
            "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
            "2007-01-15",
            dates("2007-01: 15,30; 2007-02: 15; 2007-03: 15,30"),
        ),
    ]
}

#[test]
fn rfc5545_examples() {
    let cases = golden();
    for (name, rule, start, expected) in &cases {
        let dtstart = format!("{start}T09:00:00");
        let bounded = rule.contains("COUNT") || rule.contains("UNTIL");
        let n = if bounded { 1000 } else { expected.len() as u32 };
        assert_eq!(
            &first_n(rule, &dtstart, n),
            expected,
            "RFC example: {name} ({rule})"
        );
    }
    assert_eq!(cases.len(), 35);
}

/// `"1997-09-02: 9:00,9:20"` at the given wall-clock hours:minutes (RFC notation), seconds 0.
fn at_times(day: &str, times: &[(u32, u32)]) -> Vec<String> {
    times
        .iter()
        .map(|(h, m)| format!("{day}T{h:02}:{m:02}:00"))
        .collect()
}

/// The RFC's "every 20 minutes from 9:00 AM to 4:40 PM" for one day.
fn work_day_every_20_minutes(day: &str) -> Vec<String> {
    let times: Vec<(u32, u32)> = (9..=16).flat_map(|h| [(h, 0), (h, 20), (h, 40)]).collect();
    at_times(day, &times)
}

/// The examples that need BYYEARDAY, BYWEEKNO, BYHOUR, BYMINUTE or a sub-daily FREQ, with the
/// DTSTART times of the RFC text (America/New_York).
fn golden_finer() -> Vec<(&'static str, &'static str, &'static str, Vec<String>)> {
    vec![
        (
            "every third year on the 1st, 100th and 200th day x10",
            "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
            "1997-01-01T09:00:00",
            dates(
                "1997-01: 1; 1997-04: 10; 1997-07: 19; 2000-01: 1; 2000-04: 9; 2000-07: 18; \
                 2003-01: 1; 2003-04: 10; 2003-07: 19; 2006-01: 1",
            ),
        ),
        (
            "Monday of week number 20",
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "1997-05-12T09:00:00",
            dates("1997-05: 12; 1998-05: 11; 1999-05: 17"),
        ),
        (
            // The RFC lists 09:00, 12:00, 15:00 under UNTIL=19970902T170000Z, which is 13:00 EDT;
            // 15:00 EDT only follows for the "to 5:00 PM" it describes, i.e. 21:00Z. Both are
            // checked: the rule as written, and the rule the text means.
            "every 3 hours until 17:00Z (13:00 EDT)",
            "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z",
            "1997-09-02T09:00:00",
            at_times("1997-09-02", &[(9, 0), (12, 0)]),
        ),
        (
            "every 3 hours from 9:00 AM to 5:00 PM",
            "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z",
            "1997-09-02T09:00:00",
            at_times("1997-09-02", &[(9, 0), (12, 0), (15, 0)]),
        ),
        (
            "every 15 minutes x6",
            "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
            "1997-09-02T09:00:00",
            at_times(
                "1997-09-02",
                &[(9, 0), (9, 15), (9, 30), (9, 45), (10, 0), (10, 15)],
            ),
        ),
        (
            "every hour and a half x4",
            "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
            "1997-09-02T09:00:00",
            at_times("1997-09-02", &[(9, 0), (10, 30), (12, 0), (13, 30)]),
        ),
        (
            "every 20 minutes 9:00-16:40 (daily)",
            "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40",
            "1997-09-02T09:00:00",
            [
                work_day_every_20_minutes("1997-09-02"),
                work_day_every_20_minutes("1997-09-03"),
            ]
            .concat(),
        ),
        (
            "every 20 minutes 9:00-16:40 (minutely)",
            "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16",
            "1997-09-02T09:00:00",
            [
                work_day_every_20_minutes("1997-09-02"),
                work_day_every_20_minutes("1997-09-03"),
            ]
            .concat(),
        ),
    ]
}

#[test]
fn rfc5545_examples_with_finer_parts() {
    let cases = golden_finer();
    for (name, rule, dtstart, expected) in &cases {
        let bounded = rule.contains("COUNT") || rule.contains("UNTIL");
        let n = if bounded { 1000 } else { expected.len() as u32 };
        assert_eq!(
            &first_n(rule, dtstart, n),
            expected,
            "RFC example: {name} ({rule})"
        );
    }
    // With the 35 above: every example of RFC 5545 §3.8.5.3 (the HOURLY one both ways).
    assert_eq!(cases.len(), 8);
}

/// RFC 7529's Gregorian examples: a leap day under the three SKIP values (date-valued in the
/// RFC; here at 09:00), written as RFC 7529 writes them, RSCALE before FREQ.
#[test]
fn rfc7529_leap_day_examples() {
    let run = |rule: &str| first_n(rule, "2012-02-29T09:00:00", 1000);
    assert_eq!(
        run("FREQ=YEARLY;COUNT=5"),
        dates("2012-02: 29; 2016-02: 29; 2020-02: 29; 2024-02: 29; 2028-02: 29")
    );
    assert_eq!(
        run("RSCALE=GREGORIAN;FREQ=YEARLY;COUNT=5"),
        dates("2012-02: 29; 2016-02: 29; 2020-02: 29; 2024-02: 29; 2028-02: 29")
    );
    assert_eq!(
        run("RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=BACKWARD;COUNT=5"),
        dates("2012-02: 29; 2013-02: 28; 2014-02: 28; 2015-02: 28; 2016-02: 29")
    );
    assert_eq!(
        run("RSCALE=GREGORIAN;FREQ=YEARLY;SKIP=FORWARD;COUNT=5"),
        dates("2012-02: 29; 2013-03: 1; 2014-03: 1; 2015-03: 1; 2016-02: 29")
    );
}
