//! 1.1 <-> 2.0: task ids (`task_id`, `payload.parent_task_id`) become strings, so generated
//! ids can be UUIDs.
//!
//! Up: an integer id becomes its decimal text (`123` -> `"123"`).
//! Down: an id must be the canonical decimal text of an integer JSON can hold as one (no sign
//! other than `-`, no leading zeros, fits i64 or u64), else `lossy-migration` at its pointer:
//! `"7f3c..."` (a UUID) or `"007"` has no 1.x form that gives it back.

use serde_json::{Map, Number, Value};

use super::set_version;
use crate::problem::Problem;
use crate::schema::{Version, codes};

pub fn up(mut event: Map<String, Value>) -> Map<String, Value> {
    set_version(&mut event, Version::V2_0);
    for_each_id(&mut event, |_, v| {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
        Ok(())
    });
    event
}

pub fn down(mut event: Map<String, Value>) -> (Map<String, Value>, Vec<Problem>) {
    let problems = for_each_id(&mut event, |at, v| {
        let Value::String(s) = v else { return Ok(()) };
        match integer_of(s) {
            Some(n) => {
                *v = Value::Number(n);
                Ok(())
            }
            None => Err(Problem::at(
                codes::LOSSY_MIGRATION,
                at,
                format!("1.x task ids are integers; '{s}' is not the decimal text of one"),
            )),
        }
    });
    set_version(&mut event, Version::V1_1);
    (event, problems)
}

/// Applies `f` to every task id present (null ids are absent ids and left alone).
fn for_each_id(
    event: &mut Map<String, Value>,
    mut f: impl FnMut(&str, &mut Value) -> Result<(), Problem>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(v) = event.get_mut("task_id") {
        problems.extend(f("/task_id", v).err());
    }
    if let Some(Value::Object(payload)) = event.get_mut("payload")
        && let Some(v) = payload.get_mut("parent_task_id")
    {
        problems.extend(f("/payload/parent_task_id", v).err());
    }
    problems
}

/// The integer whose canonical decimal text is `s`.
fn integer_of(s: &str) -> Option<Number> {
    if let Ok(n) = s.parse::<u64>() {
        return (n.to_string() == s).then(|| n.into());
    }
    let n = s.parse::<i64>().ok()?;
    (n.to_string() == s).then(|| n.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_integers_go_down() {
        assert_eq!(integer_of("123"), Some(123u64.into()));
        assert_eq!(integer_of("0"), Some(0u64.into()));
        assert_eq!(integer_of("-5"), Some((-5i64).into()));
        assert_eq!(integer_of("18446744073709551615"), Some(u64::MAX.into()));
        for bad in [
            "",
            "007",
            "+5",
            "-0",
            " 1",
            "1.0",
            "1e3",
            "18446744073709551616",
            "abc",
        ] {
            assert_eq!(integer_of(bad), None, "{bad:?}");
        }
    }
}
