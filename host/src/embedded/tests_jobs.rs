//! The Jobs API's request rules and its durable store.

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn due_times_schedules_and_refusals() {
    let (job, overwrite) =
        parse_request("a", br#"{"dueTime":"1m30s","data":{"x":1}}"#, now()).unwrap();
    assert_eq!(job.due_at_ms, now().timestamp_millis() + 90_000);
    assert_eq!(
        (job.every_ms, job.remaining, overwrite),
        (None, Some(1), false)
    );
    assert_eq!(job.data, r#"{"x":1}"#);
    let (job, _) =
        parse_request("a", br#"{"DueTime":"2026-03-01T11:00:00+01:00"}"#, now()).unwrap();
    assert_eq!(
        job.due_at_ms,
        now().timestamp_millis(),
        "RFC 3339, any field-name case"
    );
    let (job, overwrite) = parse_request(
        "a",
        br#"{"schedule":"@every 10s","repeats":3,"overwrite":true}"#,
        now(),
    )
    .unwrap();
    assert_eq!(
        (job.every_ms, job.remaining, overwrite),
        (Some(10_000), Some(3), true)
    );
    assert_eq!(job.due_at_ms, now().timestamp_millis() + 10_000);
    for (body, words) in [
        (&br#"{}"#[..], "dueTime or schedule"),
        (br#"{"dueTime":"soon"}"#, "neither an RFC 3339"),
        (br#"{"schedule":"0 30 * * * *"}"#, "cron"),
        (br#"{"dueTime":"1s","ttl":"1h"}"#, "ttl is not supported"),
        (br#"{"dueTime":"1s","name":"b"}"#, "in the URL"),
        (br#"{"schedule":"@every 1s","repeats":0}"#, "repeats"),
        (br#"[1]"#, "JSON object"),
    ] {
        let err = parse_request("a", body, now()).unwrap_err();
        assert!(
            err.message.contains(words),
            "{}: {}",
            String::from_utf8_lossy(body),
            err.message
        );
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
    assert!(parse_request(" ", br#"{"dueTime":"1s"}"#, now()).is_err());
}

#[test]
fn jobs_are_stored_found_due_and_settled() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), 1).unwrap();
    let (a, _) = parse_request("a", br#"{"dueTime":"1s"}"#, now()).unwrap();
    let (b, _) = parse_request("b", br#"{"dueTime":"1h"}"#, now()).unwrap();
    assert!(s.put_job(&a, false).unwrap());
    assert!(s.put_job(&b, false).unwrap());
    assert!(
        !s.put_job(&a, false).unwrap(),
        "a taken name needs overwrite"
    );
    let t = now().timestamp_millis();
    let (due, next) = s.due_jobs(t + 2_000, 10).unwrap();
    assert_eq!(due, std::slice::from_ref(&a));
    assert_eq!(next, Some(b.due_at_ms));
    s.settle_job(&a, None).unwrap();
    assert_eq!(s.get_job("a").unwrap(), None);
    // A job rescheduled through the API while it fired keeps the new schedule.
    let (b2, _) = parse_request("b", br#"{"dueTime":"2h","overwrite":true}"#, now()).unwrap();
    assert!(s.put_job(&b2, true).unwrap());
    s.settle_job(&b, None).unwrap();
    assert_eq!(s.get_job("b").unwrap(), Some(b2));
    assert!(s.delete_job("b").unwrap());
    assert!(!s.delete_job("b").unwrap());
    assert_eq!(s.due_jobs(i64::MAX, 10).unwrap(), (Vec::new(), None));
}
