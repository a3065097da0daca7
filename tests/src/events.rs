//! Task events the tests publish, in the seed's shapes (1.0) and the newer versions.

use serde_json::{Value, json};

/// A seed-style (1.0) `task.completed` for a recurring task.
pub fn completed_v1(
    event_id: &str,
    task_id: i64,
    user_id: &str,
    pattern: &str,
    due: &str,
    completed_at: &str,
) -> Value {
    json!({
        "event_id": event_id,
        "event_type": "task.completed",
        "event_version": "1.0",
        "task_id": task_id,
        "user_id": user_id,
        "timestamp": completed_at,
        "payload": {
            "recurring_pattern": pattern,
            "due_date": due,
            "completed_at": completed_at,
            "title": "Water the plants",
        },
    })
}

/// A daily completion with fixed values, distinguished by `n`.
pub fn daily_completion(n: u32) -> Value {
    completed_v1(
        &format!("evt-{n}"),
        1000 + i64::from(n),
        &format!("user-{}", n % 7),
        "DAILY",
        "2025-12-29T09:00:00Z",
        "2025-12-29T10:00:00Z",
    )
}
