//! Properties of the engine over generated rules: FREQ × INTERVAL × BYDAY × BYMONTHDAY ×
//! BYMONTH × BYSETPOS × COUNT/UNTIL × SKIP × WKST × zone (incl. floating), and random text.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Weekday};
use proptest::prelude::*;

use super::expand::days_in_month;
use super::occurrences_after;
use super::rule::{Freq, Rule, Skip, Until};
use super::zone::{Zone, format_local, parse_local};

const ZONES: [Option<&str>; 4] = [
    None,
    Some("America/New_York"),
    Some("Europe/London"),
    Some("Australia/Sydney"),
];
const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

#[derive(Debug, Clone)]
struct Case {
    rule: String,
    dtstart: String,
    tz: Option<&'static str>,
    after: String,
}

fn signed(max: i32) -> impl Strategy<Value = i32> {
    (1..=max, any::<bool>()).prop_map(|(n, neg)| if neg { -n } else { n })
}

prop_compose! {
    fn case()(
        freq in 0usize..4,
        interval in prop::option::of(1u32..=3),
        by_day in prop::collection::vec((0usize..7, prop::option::of(signed(5))), 0..3),
        by_month_day in prop::collection::vec(signed(31), 0..3),
        by_month in prop::collection::vec(1u32..=12, 0..3),
        set_pos in prop::collection::vec(signed(7), 0..2),
        end in 0usize..4, count in 1u32..25, until_days in 0i64..900,
        skip in 0usize..4, wkst in prop::option::of(0usize..7),
        zone in 0usize..4,
        (y, m, d) in (2000i32..2030, 1u32..=12, 1u32..=31),
        (hour, minute) in (0u32..24, prop::sample::select(vec![0u32, 30])),
        after_days in -40i64..600, after_hours in -30i64..30,
    ) -> Case {
        let freq_name = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"][freq];
        let ordinals_ok = freq >= 2;
        let mut parts = vec![format!("FREQ={freq_name}")];
        if let Some(i) = interval { parts.push(format!("INTERVAL={i}")); }
        if !by_day.is_empty() {
            let list: Vec<String> = by_day.iter().map(|(w, ord)| match ord {
                Some(n) if ordinals_ok => format!("{n}{}", DAYS[*w]),
                _ => DAYS[*w].to_string(),
            }).collect();
            parts.push(format!("BYDAY={}", list.join(",")));
        }
        if !by_month_day.is_empty() && freq != 1 {
            let list: Vec<String> = by_month_day.iter().map(i32::to_string).collect();
            parts.push(format!("BYMONTHDAY={}", list.join(",")));
        }
        if !by_month.is_empty() {
            let list: Vec<String> = by_month.iter().map(u32::to_string).collect();
            parts.push(format!("BYMONTH={}", list.join(",")));
        }
        let has_by = parts.len() > 1 + usize::from(interval.is_some());
        if has_by && !set_pos.is_empty() {
            let max = [1, 7, 31, 366][freq];
            let list: Vec<String> = set_pos.iter().map(|p| p.signum() * (p.abs().min(max))).map(|p| p.to_string()).collect();
            parts.push(format!("BYSETPOS={}", list.join(",")));
        }
        let tz = ZONES[zone];
        // Day 29..31 where the month has it (month-end rules), else the 28th.
        let date = NaiveDate::from_ymd_opt(y, m, d).or_else(|| NaiveDate::from_ymd_opt(y, m, 28));
        let start = date.and_then(|date| date.and_hms_opt(hour, minute, 0)).expect("valid start");
        match end {
            1 => parts.push(format!("COUNT={count}")),
            2 => {
                let u = start + TimeDelta::days(until_days);
                let z = if tz.is_some() { "Z" } else { "" };
                parts.push(format!("UNTIL={}{z}", u.format("%Y%m%dT%H%M%S")));
            }
            3 => parts.push(format!("UNTIL={}", (start + TimeDelta::days(until_days)).format("%Y%m%d"))),
            _ => {}
        }
        if skip > 0 {
            parts.push(format!("RSCALE=GREGORIAN;SKIP={}", ["", "OMIT", "BACKWARD", "FORWARD"][skip]));
        }
        if let Some(w) = wkst { parts.push(format!("WKST={}", DAYS[w])); }
        let after = start + TimeDelta::days(after_days) + TimeDelta::hours(after_hours);
        Case { rule: parts.join(";"), dtstart: format_local(start), tz, after: format_local(after) }
    }
}

fn run(c: &Case, after: &str, limit: u32) -> Vec<NaiveDateTime> {
    occurrences_after(&c.rule, &c.dtstart, c.tz, after, limit)
        .unwrap_or_else(|p| panic!("{c:?}: {p}"))
        .iter()
        .map(|s| parse_local("result", s).expect("results parse back"))
        .collect()
}

/// The n-th (negative: from the end) position of `d`'s weekday within its month or year.
fn ordinal_matches(d: NaiveDate, n: i32, in_year: bool) -> bool {
    let (index0, len) = if in_year {
        (d.ordinal0(), if d.leap_year() { 366 } else { 365 })
    } else {
        (d.day0(), days_in_month(d.year(), d.month()).unwrap_or(31))
    };
    if n > 0 {
        index0 / 7 + 1 == n as u32
    } else {
        (len - 1 - index0) / 7 + 1 == n.unsigned_abs()
    }
}

/// Whether `d` satisfies the rule's BY filters and DTSTART defaults (checked from the rule's
/// fields, independently of the expansion code). SKIP may move a date off its month/day.
fn satisfies(rule: &Rule, dtstart: NaiveDateTime, d: NaiveDate) -> Result<(), String> {
    let shifted = rule.skip != Skip::Omit && matches!(rule.freq, Freq::Monthly | Freq::Yearly);
    let weekday_ok = |w: Weekday| d.weekday() == w;
    if !rule.by_day.is_empty() {
        let in_year = rule.freq == Freq::Yearly && rule.by_month.is_empty();
        let ok = rule.by_day.iter().any(|w| {
            weekday_ok(w.weekday) && w.ordinal.is_none_or(|n| ordinal_matches(d, n, in_year))
        });
        if !ok {
            return Err(format!("{d} fails BYDAY"));
        }
    } else if rule.freq == Freq::Weekly && !weekday_ok(dtstart.weekday()) {
        return Err(format!("{d} is not DTSTART's weekday"));
    }
    if shifted {
        return Ok(());
    }
    if !rule.by_month.is_empty() && !rule.by_month.contains(&d.month()) {
        return Err(format!("{d} fails BYMONTH"));
    }
    if !rule.by_month_day.is_empty() {
        let len = days_in_month(d.year(), d.month()).unwrap_or(31) as i32;
        if !rule
            .by_month_day
            .iter()
            .any(|&md| d.day() as i32 == if md > 0 { md } else { len + 1 + md })
        {
            return Err(format!("{d} fails BYMONTHDAY"));
        }
    }
    let defaults_day = rule.by_day.is_empty() && rule.by_month_day.is_empty();
    if defaults_day && matches!(rule.freq, Freq::Monthly | Freq::Yearly) && d.day() != dtstart.day()
    {
        return Err(format!("{d} is not DTSTART's day of the month"));
    }
    if defaults_day
        && rule.freq == Freq::Yearly
        && rule.by_month.is_empty()
        && d.month() != dtstart.month()
    {
        return Err(format!("{d} is not DTSTART's month"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn results_are_ascending_after_and_match_the_rule(c in case()) {
        let rule = Rule::parse(&c.rule).expect("generated rules are valid");
        let zone = Zone::parse(c.tz).unwrap();
        let dtstart = parse_local("dtstart", &c.dtstart).unwrap();
        let after_key = zone.key(parse_local("after", &c.after).unwrap());
        let got = run(&c, &c.after, 40);
        for pair in got.windows(2) {
            prop_assert!(pair[0] < pair[1], "not ascending: {pair:?}");
        }
        for t in &got {
            prop_assert!(zone.key(*t) > after_key, "{t} is not after {}", c.after);
            prop_assert!(*t >= dtstart, "{t} before DTSTART");
            prop_assert_eq!(t.time(), dtstart.time());
            if let Err(e) = satisfies(&rule, dtstart, t.date()) {
                prop_assert!(false, "{}: {}", c.rule, e);
            }
            match rule.until {
                Some(Until::Utc(u)) => prop_assert!(zone.key(*t) <= u, "past UNTIL"),
                Some(Until::Floating(u)) => prop_assert!(*t <= u, "past UNTIL"),
                Some(Until::Date(u)) => prop_assert!(t.date() <= u, "past UNTIL"),
                None => {}
            }
        }
        // Deterministic.
        prop_assert_eq!(run(&c, &c.after, 40), got);
    }

    #[test]
    fn count_is_respected_and_jumping_changes_nothing(c in case()) {
        let rule = Rule::parse(&c.rule).expect("generated rules are valid");
        let dtstart = parse_local("dtstart", &c.dtstart).unwrap();
        let before = format_local(dtstart - TimeDelta::seconds(1));
        let all = run(&c, &before, 400);
        if let Some(count) = rule.count {
            prop_assert!(all.len() <= count as usize, "{} > COUNT {count}", all.len());
        }
        if all.first().is_some_and(|t| t.date() == dtstart.date()) {
            prop_assert!(satisfies(&rule, dtstart, dtstart.date()).is_ok());
        }
        // A search that jumps to `after` agrees with one that walks from DTSTART.
        let zone = Zone::parse(c.tz).unwrap();
        let after_key = zone.key(parse_local("after", &c.after).unwrap());
        let walked: Vec<_> = all.iter().copied().filter(|t| zone.key(*t) > after_key).collect();
        let jumped = run(&c, &c.after, 20);
        let n = jumped.len().min(walked.len());
        prop_assert_eq!(&jumped[..n], &walked[..n]);
        if all.len() < 400 {
            prop_assert_eq!(jumped.len(), walked.len().min(20), "walked {:?}", walked);
        }
    }

    /// An ordinal BYDAY limiting every day of the month (or year) selects what it expands to.
    #[test]
    fn ordinal_byday_limit_equals_its_expansion(
        monthly_n in signed(5), yearly_n in signed(53), w in 0usize..7, zone in 0usize..4,
        (y, m, d) in (1990i32..2040, 1u32..=12, 1u32..=28),
    ) {
        let all_days: Vec<String> = (1..=31).map(|d| d.to_string()).collect();
        let all_days = all_days.join(",");
        let start = format!("{y}-{m:02}-{d:02}T09:00:00");
        let after = format!("{}-01-01T00:00:00", y - 1);
        for (freq, n, limit) in [("MONTHLY", monthly_n, 30), ("YEARLY", yearly_n, 8)] {
            let expand = format!("FREQ={freq};BYDAY={n}{}", DAYS[w]);
            let limited = format!("{expand};BYMONTHDAY={all_days}");
            let a = occurrences_after(&expand, &start, ZONES[zone], &after, limit).unwrap();
            let b = occurrences_after(&limited, &start, ZONES[zone], &after, limit).unwrap();
            prop_assert_eq!(a, b, "{} vs {}", expand, limited);
        }
    }

    #[test]
    fn never_panics_on_arbitrary_text(
        rule in "(FREQ=[A-Z]{0,8})?(;[A-Z]{2,10}=[-+0-9A-Z,]{0,12}){0,5}",
        noise in ".{0,40}",
        dtstart in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}",
        after in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}",
        zone in 0usize..4,
        limit in 0u32..50,
    ) {
        let _ = occurrences_after(&rule, &dtstart, ZONES[zone], &after, limit);
        let _ = occurrences_after(&noise, &noise, Some(&noise), &noise, limit);
        let _ = occurrences_after(&noise, &dtstart, ZONES[zone], &after, limit);
    }

    #[test]
    fn never_panics_on_extreme_dates(
        part in prop::sample::select(vec![
            "FREQ=DAILY", "FREQ=WEEKLY;BYDAY=SU", "FREQ=MONTHLY;BYMONTHDAY=-1,31;RSCALE=GREGORIAN;SKIP=FORWARD",
            "FREQ=MONTHLY;BYMONTHDAY=-31;RSCALE=GREGORIAN;SKIP=BACKWARD", "FREQ=YEARLY;BYDAY=-1SU",
            "FREQ=YEARLY;BYDAY=53MO;BYSETPOS=-1", "FREQ=DAILY;COUNT=5", "FREQ=YEARLY;INTERVAL=1000",
        ]),
        start in prop::sample::select(vec!["0001-01-01T00:00:00", "9999-12-31T23:59:59", "9999-12-25T00:30:00"]),
        after in prop::sample::select(vec!["0001-01-01T00:00:00", "9999-12-31T23:59:59", "5000-01-01T00:00:00"]),
        zone in 0usize..4,
    ) {
        if let Ok(found) = occurrences_after(part, start, ZONES[zone], after, 20) {
            prop_assert!(found.iter().all(|s| s.len() == 19 && !s.starts_with("10000")));
        }
    }
}
