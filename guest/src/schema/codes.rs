//! Every problem code the schema, migration and handler modules report, in one place.
//!
//! Codes are part of the plugin's contract (hosts, dashboards and dead-letter tooling match on
//! them): add new ones, never rename or reuse one. Codes produced by the recurrence engine
//! (`invalid-rrule`, `unsupported-rrule`, ...) are passed through unchanged, re-rooted at the
//! field that holds the rule.

/// The event text is not JSON at all.
pub const NOT_JSON: &str = "not-json";
/// The event is JSON but not an object (pointer: the root, ``).
pub const NOT_AN_OBJECT: &str = "not-an-object";
/// A required field is absent (or `null`).
pub const MISSING_FIELD: &str = "missing-field";
/// A field has the wrong JSON type (e.g. a string `task_id` in 1.x).
pub const WRONG_TYPE: &str = "wrong-type";
/// A required string is empty (`event_id`, a 2.0 `task_id`, `series_id`, ...).
pub const EMPTY_FIELD: &str = "empty-field";
/// `user_id` is empty: it is the partition key and the user-isolation boundary.
pub const EMPTY_USER_ID: &str = "empty-user-id";
/// `event_type` is not one this plugin knows.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown-event-type";
/// `event_version` (or a migration target) is not one of `1.0`, `1.1`, `2.0`.
pub const UNSUPPORTED_VERSION: &str = "unsupported-version";
/// A date or time value does not parse (timestamp, due_date, completed_at, dtstart, until, ...).
pub const INVALID_TIMESTAMP: &str = "invalid-timestamp";
/// `tzid` is not an IANA zone name (same code as the recurrence engine's).
pub const UNKNOWN_TIMEZONE: &str = "unknown-timezone";
/// A recurrence field has a bad value or contradicts another one.
pub const INVALID_RECURRENCE: &str = "invalid-recurrence";
/// `remind_before` is not an ISO 8601 duration this plugin supports.
pub const INVALID_DURATION: &str = "invalid-duration";
/// A field that does not exist in the event's version (e.g. `payload.recurrence` in 1.0, an
/// unknown key inside `payload.recurrence`).
pub const UNKNOWN_FIELD: &str = "unknown-field";
/// A downgrade would drop or change information the target version cannot express.
pub const LOSSY_MIGRATION: &str = "lossy-migration";
/// The RRULE is malformed or forbidden by RFC 5545 (reported by the recurrence engine; listed
/// here so every code has one home).
pub const INVALID_RRULE: &str = "invalid-rrule";
/// The RRULE uses a valid RFC feature the engine does not implement (engine code).
pub const UNSUPPORTED_RRULE: &str = "unsupported-rrule";
/// `recurring_pattern` is not DAILY/WEEKLY/MONTHLY/YEARLY, or its `interval` is out of range
/// (reported by `series::expand_shorthand`, which owns the shorthand).
pub const INVALID_RECURRING_PATTERN: &str = "invalid-recurring-pattern";
/// A handled event produced something its own version cannot carry (a plugin bug, reported
/// rather than panicking).
pub const INTERNAL: &str = "internal-error";
