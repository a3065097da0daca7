//! Migration between task event versions: a ladder of adjacent steps, walked up or down.
//!
//! Contract of [`migrate`]:
//! - the input is validated in its own version first; an invalid event gets its validation
//!   problems, an unknown target `unsupported-version` (every problem at once);
//! - the event is rewritten one step at a time (`1.0 <-> 1.1 <-> 2.0`); a step only moves or
//!   retypes the fields its version changed, so unknown fields pass through untouched, in place;
//! - a downgrade that would drop or change information the lower version cannot express is
//!   refused with `lossy-migration` problems (one per offending field, with its pointer), never
//!   performed silently. Dropping a field that only restates the lower version's implied
//!   default (`anchor: "schedule"` going to 1.0) loses nothing and is allowed;
//! - up then down is the identity (as JSON values) for an event of the lower version; fields
//!   keep their positions, so the bytes come back too unless 1.0 series fields were
//!   interleaved with other payload keys.
//!
//! Adding a version is one new module holding its step (`up`, infallible, and `down`) plus its
//! tests, and one entry in [`STEPS`].

mod rewrite;
mod v1_1;
mod v2_0;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;

use serde_json::{Map, Value};

use crate::problem::Problem;
use crate::schema::{self, Version, codes};

/// An event as a JSON object (field order preserved).
pub type Event = Map<String, Value>;

/// One rung: between `Version::ALL[i]` and `Version::ALL[i + 1]` for `STEPS[i]`.
struct Step {
    up: fn(Event) -> Event,
    /// Best effort: converts what it can and lists what it cannot, so one call reports every
    /// lossy field across all the steps of a long downgrade.
    down: fn(Event) -> (Event, Vec<Problem>),
}

const STEPS: [Step; 2] = [
    Step {
        up: v1_1::up,
        down: v1_1::down,
    },
    Step {
        up: v2_0::up,
        down: v2_0::down,
    },
];

/// `event` (JSON text) rewritten to `target_version`, as compact JSON.
pub fn migrate(event: &str, target_version: &str) -> Result<String, Vec<Problem>> {
    let target = Version::parse(target_version);
    let parsed = schema::parse(event);
    let (target, parsed) = match (target, parsed) {
        (Some(t), Ok(e)) => (t, e),
        (t, parsed) => {
            let mut problems = Vec::new();
            if t.is_none() {
                let msg = format!(
                    "target version '{target_version}' is not one of {:?}",
                    Version::ALL.map(Version::as_str)
                );
                problems.push(Problem::new(codes::UNSUPPORTED_VERSION, msg));
            }
            problems.extend(parsed.err().unwrap_or_default());
            return Err(problems);
        }
    };
    let out = convert(parsed.raw, parsed.version, target)?;
    Ok(Value::Object(out).to_string())
}

/// Walks a valid event of version `from` to version `to`.
pub fn convert(
    mut event: Map<String, Value>,
    from: Version,
    to: Version,
) -> Result<Map<String, Value>, Vec<Problem>> {
    let mut at = from.rank();
    while at < to.rank() {
        event = (STEPS[at].up)(event);
        at += 1;
    }
    let mut problems = Vec::new();
    while at > to.rank() {
        let (next, lost) = (STEPS[at - 1].down)(event);
        event = next;
        problems.extend(lost);
        at -= 1;
    }
    if problems.is_empty() {
        Ok(event)
    } else {
        Err(problems)
    }
}

/// Sets `event_version` (every step does).
fn set_version(event: &mut Map<String, Value>, v: Version) {
    event.insert("event_version".into(), Value::String(v.as_str().into()));
}
