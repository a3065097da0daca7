//! `remind_before`: how long before a task's due time its reminder fires.
//!
//! The grammar is the ISO 8601 duration subset RFC 5545 uses for alarms, written
//! `P[nW][nD][T[nH][nM][nS]]` (`PT15M`, `P1D`, `P1DT12H`, `P2W`): unsigned integers, upper case,
//! at least one component, components in that order. Years and months are refused: their
//! length depends on the calendar and no reminder UI offers them.
//!
//! Weeks and days are *nominal* (RFC 5545 §3.3.6): `P1D` before 09:00 is 09:00 the day before,
//! even across a DST change. Hours, minutes and seconds are *exact* elapsed time.

/// Longest accepted reminder lead: bounds the arithmetic and catches unit typos.
pub const MAX_DAYS: i64 = 366 * 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lead {
    /// Nominal days (weeks × 7 + days), subtracted on the wall clock.
    pub days: i64,
    /// Exact seconds (hours, minutes, seconds), subtracted in elapsed time.
    pub seconds: i64,
}

/// Parses a duration; the error is a sentence for the problem message.
pub fn parse(s: &str) -> Result<Lead, String> {
    let rest = s
        .strip_prefix('P')
        .ok_or("must start with 'P' (e.g. PT15M, P1D)")?;
    let (date_part, time_part) = match rest.split_once('T') {
        Some((d, "")) => {
            return Err(format!(
                "'T' in '{d}T' must be followed by hours, minutes or seconds"
            ));
        }
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let date = components(date_part, &['W', 'D'])?;
    let time = match time_part {
        Some(t) => components(t, &['H', 'M', 'S'])?,
        None => Vec::new(),
    };
    if date.is_empty() && time.is_empty() {
        return Err("has no components (e.g. PT15M, P1D)".into());
    }
    let mut lead = Lead {
        days: 0,
        seconds: 0,
    };
    for (n, unit) in date {
        lead.days += n * if unit == 'W' { 7 } else { 1 };
    }
    for (n, unit) in time {
        lead.seconds += n * match unit {
            'H' => 3600,
            'M' => 60,
            _ => 1,
        };
    }
    if lead.days + lead.seconds / 86_400 > MAX_DAYS {
        return Err(format!("is longer than {MAX_DAYS} days"));
    }
    Ok(lead)
}

/// `<digits><unit>` pairs whose units appear in `allowed` order, each at most once.
fn components(s: &str, allowed: &[char]) -> Result<Vec<(i64, char)>, String> {
    let mut out = Vec::new();
    let mut next_allowed = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            // Nine digits keep every product below i64::MAX; the total is bounded after.
            if digits.len() == 9 {
                return Err("has a component with more than 9 digits".into());
            }
            digits.push(c);
            continue;
        }
        if c == 'Y' || (c == 'M' && allowed.contains(&'W')) {
            return Err(
                "uses years or months, which have no fixed length (use days or weeks)".into(),
            );
        }
        let pos = allowed[next_allowed..]
            .iter()
            .position(|u| *u == c)
            .map(|p| p + next_allowed);
        let Some(pos) = pos else {
            return Err(format!(
                "has '{c}' where one of {allowed:?} (in that order) was expected"
            ));
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("has no number before '{c}'"))?;
        digits.clear();
        out.push((n, c));
        next_allowed = pos + 1;
    }
    if !digits.is_empty() {
        return Err(format!("ends with '{digits}' and no unit"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc5545_durations() {
        assert_eq!(
            parse("PT15M"),
            Ok(Lead {
                days: 0,
                seconds: 900
            })
        );
        assert_eq!(
            parse("P1D"),
            Ok(Lead {
                days: 1,
                seconds: 0
            })
        );
        assert_eq!(
            parse("P2W"),
            Ok(Lead {
                days: 14,
                seconds: 0
            })
        );
        assert_eq!(
            parse("P1DT1H30M5S"),
            Ok(Lead {
                days: 1,
                seconds: 5405
            })
        );
        assert_eq!(
            parse("PT0S"),
            Ok(Lead {
                days: 0,
                seconds: 0
            })
        );
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "",
            "P",
            "PT",
            "15M",
            "pt15m",
            "-PT15M",
            "P1Y",
            "P1M",
            "PT1.5H",
            "PT15",
            "P1DT",
            "PT1M1H",
            "P1D1W",
            "PT1H1H",
            "P9999999999D",
            "P4000D",
            "P1W2",
            "PTM",
            "P1DT15M ",
        ] {
            assert!(parse(s).is_err(), "{s:?}");
        }
    }
}
