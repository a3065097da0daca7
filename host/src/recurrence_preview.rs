//! `task-events-host recurrence "RRULE" --dtstart ... [--tz ...] [-n 10]`: what a user's rule
//! does, in a form an operator or support engineer can read.
//!
//! The plugin answers, not a second engine: the occurrences come from the plugin's
//! `recurrence.occurrences-after` export (the bundled plugin, or `--guest FILE.wasm`), loaded
//! through the same runtime and limits as `serve`. Each line is the occurrence's index, weekday
//! and wall-clock time, its UTC offset and the zone:
//!
//! ```text
//!  1  Tue 2026-12-01 09:00:00 -05:00 (America/New_York)
//! ```
//!
//! The offset is the plugin's too. The export speaks wall-clock time only, but it compares
//! occurrences with a UTC `UNTIL` as instants, so the instant of an occurrence is the earliest
//! UTC `UNTIL` that still keeps it, found by bisection (about 17 calls of a fresh instance per
//! line). That makes the preview show exactly the instant the plugin schedules, including
//! RFC 5545 §3.3.5's reading of a time in a DST gap (the offset before the gap). A floating
//! rule (no `--tz`) has no offset and says so.
//!
//! A refused rule prints each problem's code, message and pointer, the codes the plugin
//! returns everywhere else, and the command exits 1.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use chrono::{NaiveDateTime, TimeDelta};
use clap::Args;

use crate::config::LimitArgs;
use crate::plugin::bindings::Problem;
use crate::plugin::{Plugin, Runtime};

const WALL: &str = "%Y-%m-%dT%H:%M:%S";

/// Arguments of `recurrence`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The RRULE value, without `RRULE:`, e.g. "FREQ=HOURLY;INTERVAL=4;BYHOUR=8,12,16,20".
    pub rule: String,
    /// The series start, local wall clock YYYY-MM-DDTHH:MM:SS.
    #[arg(long)]
    pub dtstart: String,
    /// IANA time zone of the wall-clock times; floating time without it.
    #[arg(long)]
    pub tz: Option<String>,
    /// How many occurrences to print.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: u32,
    /// Print occurrences strictly after this wall-clock time instead of from DTSTART on.
    #[arg(long)]
    pub after: Option<String>,
    /// The plugin component to ask; the bundled task plugin without it.
    #[arg(long, env = "TASK_EVENTS_GUEST")]
    pub guest: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs the preview, printing to stdout; an error for a refused rule or a broken plugin.
pub async fn run(args: PreviewArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        preview(&args, &mut out)
    })
    .await
    .context("the preview task")?
}

fn preview(args: &PreviewArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let runtime = Runtime::new(args.limits.limits())
        .map_err(|e| anyhow!("starting the wasm runtime: {e:#}"))?;
    let plugin = crate::plugin::offline::load(&runtime, args.guest.as_deref(), "the plugin")?;
    let ask = Ask {
        plugin: &plugin,
        tz: args.tz.as_deref(),
    };
    // From DTSTART on: one second earlier is "strictly after" nothing the rule can give.
    let after = match &args.after {
        Some(after) => after.clone(),
        None => NaiveDateTime::parse_from_str(&args.dtstart, WALL)
            .ok()
            .and_then(|t| t.checked_sub_signed(TimeDelta::seconds(1)))
            .map_or_else(|| args.dtstart.clone(), |t| t.format(WALL).to_string()),
    };
    let found = match ask.occurrences(&args.rule, &args.dtstart, &after, args.count)? {
        Ok(found) => found,
        Err(problem) => {
            writeln!(out, "refused: {}", args.rule)?;
            writeln!(out, "  {}: {}", problem.code, problem.message)?;
            if let Some(pointer) = &problem.pointer {
                writeln!(out, "  at {pointer}")?;
            }
            return Err(anyhow!("the plugin refused the rule ({})", problem.code));
        }
    };
    let zone = args.tz.as_deref().unwrap_or("floating");
    if found.is_empty() {
        writeln!(out, "no occurrences after {after} ({zone})")?;
    }
    for (i, text) in found.iter().enumerate() {
        let wall = NaiveDateTime::parse_from_str(text, WALL)
            .with_context(|| format!("the plugin returned '{text}', not {WALL}"))?;
        let offset = match args.tz {
            Some(_) => ask
                .utc_offset(wall)?
                .map_or_else(|| "?".into(), format_offset),
            None => "floating".into(),
        };
        let shown = wall.format("%a %Y-%m-%d %H:%M:%S");
        writeln!(out, "{:>2}  {shown} {offset} ({zone})", i + 1)?;
    }
    Ok(())
}

/// One question to the plugin's `occurrences-after`.
struct Ask<'a> {
    plugin: &'a Plugin,
    tz: Option<&'a str>,
}

impl Ask<'_> {
    /// The plugin's answer; the outer error is a failed call (trap, deadline).
    fn occurrences(
        &self,
        rule: &str,
        dtstart: &str,
        after: &str,
        limit: u32,
    ) -> anyhow::Result<Result<Vec<String>, Problem>> {
        self.plugin
            .call(|p, s| {
                p.task_events_plugin_recurrence()
                    .call_occurrences_after(s, rule, dtstart, self.tz, after, limit)
            })
            .map_err(|e| anyhow!("calling occurrences-after: {e}"))
    }

    /// Whether the plugin keeps `wall` under `UNTIL=until` (UTC): its instant is <= `until`.
    fn instant_at_most(&self, wall: NaiveDateTime, until: NaiveDateTime) -> anyhow::Result<bool> {
        let rule = format!("FREQ=DAILY;UNTIL={}Z", until.format("%Y%m%dT%H%M%S"));
        let dtstart = wall.format(WALL).to_string();
        // Two days earlier is before `wall` as an instant whatever DST does that day.
        let after = wall
            .checked_sub_signed(TimeDelta::days(2))
            .unwrap_or(wall)
            .format(WALL)
            .to_string();
        let got = self.occurrences(&rule, &dtstart, &after, 1)?;
        Ok(got.is_ok_and(|found| found.first() == Some(&dtstart)))
    }

    /// `wall`'s UTC offset as the plugin sees it (None if the plugin cannot tell, e.g. at the
    /// edge of year 1).
    fn utc_offset(&self, wall: NaiveDateTime) -> anyhow::Result<Option<TimeDelta>> {
        // Real offsets lie within ±15 hours; bisect on the UTC instant, to the second.
        let span = TimeDelta::hours(15);
        let (Some(mut low), Some(mut high)) =
            (wall.checked_sub_signed(span), wall.checked_add_signed(span))
        else {
            return Ok(None);
        };
        if !self.instant_at_most(wall, high)? || self.instant_at_most(wall, low)? {
            return Ok(None);
        }
        // Invariant: the instant is > low and <= high.
        while high - low > TimeDelta::seconds(1) {
            // Whole seconds: UNTIL has no fraction, so neither may the bounds.
            let mid = low + TimeDelta::seconds((high - low).num_seconds() / 2);
            if self.instant_at_most(wall, mid)? {
                high = mid;
            } else {
                low = mid;
            }
        }
        Ok(Some(wall - high))
    }
}

/// `+HH:MM`, or `+HH:MM:SS` for historical offsets with seconds.
fn format_offset(offset: TimeDelta) -> String {
    let total = offset.num_seconds();
    let sign = if total < 0 { '-' } else { '+' };
    let (h, m, s) = (total.abs() / 3600, total.abs() / 60 % 60, total.abs() % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_like_rfc_3339() {
        assert_eq!(format_offset(TimeDelta::hours(-5)), "-05:00");
        assert_eq!(format_offset(TimeDelta::minutes(345)), "+05:45");
        assert_eq!(format_offset(TimeDelta::zero()), "+00:00");
        assert_eq!(format_offset(TimeDelta::seconds(-17_762)), "-04:56:02");
    }
}
