//! Properties of the engine over generated rules that use every RRULE part: FREQ (all seven) ×
//! INTERVAL × BYDAY × BYMONTHDAY × BYMONTH × BYYEARDAY × BYWEEKNO × BYHOUR × BYMINUTE ×
//! BYSECOND × BYSETPOS × COUNT/UNTIL × SKIP × WKST × zone (incl. floating), and random text.

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Weekday};
use proptest::prelude::*;

use super::calendar::{days_in_month, in_weeks, is_year_day};
use super::occurrences_after;
use super::rule::{Freq, Rule, Skip, Until};
use super::sub_daily::key_of;
use super::zone::{Zone, format_local, parse_local};

const ZONES: [Option<&str>; 4] = [
    None,
    Some("America/New_York"),
    Some("Europe/London"),
    Some("Australia/Sydney"),
];
const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];
const FREQS: [&str; 7] = [
    "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY",
];

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

fn list<T: ToString>(name: &str, values: &[T]) -> Option<String> {
    (!values.is_empty()).then(|| {
        let v: Vec<String> = values.iter().map(T::to_string).collect();
        format!("{name}={}", v.join(","))
    })
}

prop_compose! {
    fn times()(
        by_hour in prop::collection::vec(0u32..24, 0..3),
        by_minute in prop::collection::vec(prop::sample::select(vec![0u32, 15, 30, 45, 59]), 0..3),
        by_second in prop::collection::vec(prop::sample::select(vec![0u32, 1, 30, 60]), 0..2),
    ) -> (Vec<u32>, Vec<u32>, Vec<u32>) { (by_hour, by_minute, by_second) }
}

prop_compose! {
    fn case()(
        freq in 0usize..7,
        interval in prop::option::of(1u32..=3),
        by_day in prop::collection::vec((0usize..7, prop::option::of(signed(5))), 0..3),
        by_month_day in prop::collection::vec(signed(31), 0..3),
        by_month in prop::collection::vec(1u32..=12, 0..3),
        by_year_day in prop::collection::vec(signed(366), 0..3),
        by_week_no in prop::collection::vec(signed(53), 0..2),
        (by_hour, by_minute, by_second) in times(),
        set_pos in prop::collection::vec(signed(7), 0..2),
        end in 0usize..4, count in 1u32..25, until_steps in 0i64..900,
        skip in 0usize..4, wkst in prop::option::of(0usize..7),
        zone in 0usize..4,
        (y, m, d) in (2000i32..2030, 1u32..=12, 1u32..=31),
        (hour, minute, second) in (0u32..24, prop::sample::select(vec![0u32, 30]), prop::sample::select(vec![0u32, 30])),
        after_steps in -40i64..600, after_hours in -30i64..30,
    ) -> Case {
        let freq_name = FREQS[freq];
        let yearly = freq == 6;
        let sub_daily = freq <= 2;
        let ordinals_ok = freq >= 5 && by_week_no.is_empty();
        let mut parts = vec![format!("FREQ={freq_name}")];
        if let Some(i) = interval { parts.push(format!("INTERVAL={i}")); }
        let by_day: Vec<String> = by_day.iter().map(|(w, ord)| match ord {
            Some(n) if ordinals_ok => format!("{n}{}", DAYS[*w]),
            _ => DAYS[*w].to_string(),
        }).collect();
        parts.extend(list("BYDAY", &by_day));
        if freq != 4 { parts.extend(list("BYMONTHDAY", &by_month_day)); }
        parts.extend(list("BYMONTH", &by_month));
        if yearly || sub_daily { parts.extend(list("BYYEARDAY", &by_year_day)); }
        if yearly { parts.extend(list("BYWEEKNO", &by_week_no)); }
        parts.extend(list("BYHOUR", &by_hour));
        parts.extend(list("BYMINUTE", &by_minute));
        parts.extend(list("BYSECOND", &by_second));
        let has_by = parts.len() > 1 + usize::from(interval.is_some());
        if has_by && !set_pos.is_empty() {
            // Positions stay within what one period of this rule can hold.
            let (h, mi, se) = (by_hour.len().max(1), by_minute.len().max(1), by_second.len().max(1));
            let max = match freq {
                0 => 1,
                1 => se,
                2 => mi * se,
                3 => h * mi * se,
                _ => 7,
            }.min(7) as i32;
            let picked: Vec<i32> = set_pos.iter().map(|p| p.signum() * p.abs().min(max)).collect();
            parts.extend(list("BYSETPOS", &picked));
        }
        let tz = ZONES[zone];
        // Day 29..31 where the month has it (month-end rules), else the 28th.
        let date = NaiveDate::from_ymd_opt(y, m, d).or_else(|| NaiveDate::from_ymd_opt(y, m, 28));
        let start = date.and_then(|date| date.and_hms_opt(hour, minute, second)).expect("valid start");
        // Distances scale with FREQ so that `after` lands among a few hundred occurrences.
        let unit = match freq { 0 | 1 => TimeDelta::minutes(1), 2 => TimeDelta::hours(1), _ => TimeDelta::days(1) };
        match end {
            1 => parts.push(format!("COUNT={count}")),
            2 => {
                let u = start + unit * until_steps as i32;
                let z = if tz.is_some() { "Z" } else { "" };
                parts.push(format!("UNTIL={}{z}", u.format("%Y%m%dT%H%M%S")));
            }
            3 => parts.push(format!("UNTIL={}", (start + unit * until_steps as i32).format("%Y%m%d"))),
            _ => {}
        }
        if skip > 0 {
            parts.push(format!("RSCALE=GREGORIAN;SKIP={}", ["", "OMIT", "BACKWARD", "FORWARD"][skip]));
        }
        if let Some(w) = wkst { parts.push(format!("WKST={}", DAYS[w])); }
        let after = start + unit * after_steps as i32 + TimeDelta::hours(after_hours);
        Case { rule: parts.join(";"), dtstart: format_local(start), tz, after: format_local(after) }
    }
}

/// The occurrences, or None when the engine (rightly) gave up on a sub-daily rule that
/// matches too rarely on its grid (e.g. SECONDLY;INTERVAL=2;BYSECOND=1 from an even second).
fn run(c: &Case, after: &str, limit: u32) -> Option<Vec<NaiveDateTime>> {
    match occurrences_after(&c.rule, &c.dtstart, c.tz, after, limit) {
        Ok(found) => Some(
            found
                .iter()
                .map(|s| parse_local("result", s).expect("results parse back"))
                .collect(),
        ),
        Err(p) if p.code == "unsupported-rrule" && p.message.contains("gave up") => None,
        Err(p) => panic!("{c:?}: {p}"),
    }
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

/// Whether the time of day of `t` satisfies BYHOUR/BYMINUTE/BYSECOND, the DTSTART defaults
/// for parts finer than FREQ, and the INTERVAL grid of a sub-daily rule.
fn time_satisfies(rule: &Rule, dtstart: NaiveDateTime, t: NaiveDateTime) -> Result<(), String> {
    let check = |name: &str, by: &[u32], value: u32, default: Option<u32>| {
        let ok = if by.is_empty() {
            default.is_none_or(|d| d == value)
        } else {
            by.contains(&value)
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{t} fails {name}"))
        }
    };
    let (h, m, s) = (dtstart.hour(), dtstart.minute(), dtstart.second());
    let (dh, dm, ds) = match rule.freq {
        Freq::Secondly => (None, None, None),
        Freq::Minutely => (None, None, Some(s)),
        Freq::Hourly => (None, Some(m), Some(s)),
        _ => (Some(h), Some(m), Some(s)),
    };
    check("BYHOUR", &rule.by_hour, t.hour(), dh)?;
    check("BYMINUTE", &rule.by_minute, t.minute(), dm)?;
    check("BYSECOND", &rule.by_second, t.second(), ds)?;
    if rule.is_sub_daily() {
        let steps = key_of(rule.freq, t) - key_of(rule.freq, dtstart);
        if steps.rem_euclid(i64::from(rule.interval)) != 0 {
            return Err(format!("{t} is off the INTERVAL grid"));
        }
    }
    Ok(())
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
    if !rule.by_week_no.is_empty() && !in_weeks(d, &rule.by_week_no, rule.wkst) {
        return Err(format!("{d} fails BYWEEKNO"));
    }
    if !rule.by_year_day.is_empty() && !rule.by_year_day.iter().any(|&n| is_year_day(d, n)) {
        return Err(format!("{d} fails BYYEARDAY"));
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
    let defaults_day = rule.by_day.is_empty()
        && rule.by_month_day.is_empty()
        && rule.by_year_day.is_empty()
        && rule.by_week_no.is_empty();
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
        let Some(got) = run(&c, &c.after, 40) else { return Ok(()) };
        for pair in got.windows(2) {
            prop_assert!(pair[0] < pair[1], "not ascending: {pair:?}");
        }
        for t in &got {
            prop_assert!(zone.key(*t) > after_key, "{t} is not after {}", c.after);
            prop_assert!(*t >= dtstart, "{t} before DTSTART");
            if let Err(e) = time_satisfies(&rule, dtstart, *t) {
                prop_assert!(false, "{}: {}", c.rule, e);
            }
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
        prop_assert_eq!(run(&c, &c.after, 40), Some(got));
    }

    #[test]
    fn count_is_respected_and_jumping_changes_nothing(c in case()) {
        let rule = Rule::parse(&c.rule).expect("generated rules are valid");
        let dtstart = parse_local("dtstart", &c.dtstart).unwrap();
        let before = format_local(dtstart - TimeDelta::seconds(1));
        let Some(all) = run(&c, &before, 2000) else { return Ok(()) };
        if let Some(count) = rule.count {
            prop_assert!(all.len() <= count as usize, "{} > COUNT {count}", all.len());
        }
        if all.first() == Some(&dtstart) {
            prop_assert!(satisfies(&rule, dtstart, dtstart.date()).is_ok());
            prop_assert!(time_satisfies(&rule, dtstart, dtstart).is_ok());
        }
        // A search that jumps to `after` agrees with one that walks from DTSTART.
        let zone = Zone::parse(c.tz).unwrap();
        let after_key = zone.key(parse_local("after", &c.after).unwrap());
        let walked: Vec<_> = all.iter().copied().filter(|t| zone.key(*t) > after_key).collect();
        let Some(jumped) = run(&c, &c.after, 20) else { return Ok(()) };
        let n = jumped.len().min(walked.len());
        prop_assert_eq!(&jumped[..n], &walked[..n]);
        if all.len() < 2000 {
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
