//! The command line an operator uses besides `serve`: `check` and `topics tail`.

use std::time::{Duration, Instant};

use serde_json::Value;
use task_events_tests::embedded_api;
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, run_command};
use task_events_tests::plugins::{HOSTILE_WASM, task_plugin_file};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");

/// Whether the command succeeded, its stdout and its stderr.
fn run(args: &[&str]) -> (bool, String, String) {
    let (code, stdout, stderr) = run_command(HOST, args);
    (code == 0, stdout, stderr)
}

#[test]
fn check_prints_the_manifest_of_a_valid_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = task_plugin_file(dir.path());
    let (ok, stdout, stderr) = run(&["check", wasm.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let manifest: Value = serde_json::from_str(&stdout).expect("the manifest is JSON");
    assert_eq!(manifest["name"], "task-plugin");
    assert_eq!(manifest["subscriptions"][0]["topic"], "task-events");
    assert_eq!(manifest["sha256"].as_str().unwrap().len(), 64);
    let (ok, _, _) = run(&["check", HOSTILE_WASM]);
    assert!(ok, "the hostile fixture fits the world too");
}

#[test]
fn check_explains_what_is_wrong_with_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "core.wasm",
            b"\0asm\x01\0\0\0",
            "core wasm module, not a component",
        ),
        ("text.wasm", b"hello", "not WebAssembly"),
        (
            "truncated.wasm",
            &task_events_tests::plugins::task_plugin_bytes()[..4096],
            "does not compile",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (ok, _, stderr) = run(&["check", path.to_str().unwrap()]);
        assert!(!ok, "{name} must be refused");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let (ok, _, stderr) = run(&["check", "/nonexistent/plugin.wasm"]);
    assert!(
        !ok && stderr.contains("cannot read /nonexistent/plugin.wasm"),
        "{stderr}"
    );
}

#[tokio::test]
async fn topics_tail_prints_what_came_out() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    embedded_api::publish(&host, &daily_completion(9)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, stdout, stderr) = run(&[
            "topics",
            "tail",
            "task-events",
            "--url",
            &host.base,
            "--no-follow",
        ]);
        assert!(ok, "{stderr}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
            .collect();
        if lines.iter().any(|r| r["event"]["type"] == "task.created") {
            assert_eq!(lines[0]["offset"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "no task.created in {stdout}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn check_runs_the_operators_canary_cases() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = task_plugin_file(dir.path());
    let canary = dir.path().join("canary.jsonl");
    let case = serde_json::json!({
        "name": "garbage is handled, says the operator",
        "delivery": {"id": "c1", "pubsub": "kafka-pubsub", "topic": "task-events", "kind": "k", "source": "s", "data": "not json", "attempt": 1},
        "expected": {"done": {"dedupe_key": "c1", "emits": []}},
    });
    std::fs::write(&canary, format!("{case}\n")).unwrap();
    let (ok, _, stderr) = run(&[
        "check",
        wasm.to_str().unwrap(),
        "--canary-file",
        canary.to_str().unwrap(),
    ]);
    assert!(!ok, "the plugin rejects garbage, so the canary must fail");
    assert!(
        stderr.contains("garbage is handled, says the operator"),
        "{stderr}"
    );
}

#[test]
fn recurrence_previews_a_rule_with_weekdays_and_offsets_from_the_plugin() {
    let ny = ["--tz", "America/New_York"];
    let (ok, stdout, stderr) = run(&[
        &["recurrence", "FREQ=HOURLY;INTERVAL=4;BYHOUR=8,12,16,20"],
        &["--dtstart", "2026-12-01T08:00:00", "-n", "5"][..],
        &ny[..],
    ]
    .concat());
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            " 1  Tue 2026-12-01 08:00:00 -05:00 (America/New_York)",
            " 2  Tue 2026-12-01 12:00:00 -05:00 (America/New_York)",
            " 3  Tue 2026-12-01 16:00:00 -05:00 (America/New_York)",
            " 4  Tue 2026-12-01 20:00:00 -05:00 (America/New_York)",
            " 5  Wed 2026-12-02 08:00:00 -05:00 (America/New_York)",
        ]
    );
    // RFC 5545 §3.8.5.3, once refused: the offset follows DST, and COUNT ends the list.
    let dir = tempfile::tempdir().unwrap();
    let wasm = task_plugin_file(dir.path());
    let (ok, stdout, stderr) = run(&[
        &[
            "recurrence",
            "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        ],
        &["--dtstart", "1997-01-01T09:00:00", "-n", "20"][..],
        &["--guest", wasm.to_str().unwrap()][..],
        &ny[..],
    ]
    .concat());
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    assert_eq!(
        lines[1],
        " 2  Thu 1997-04-10 09:00:00 -04:00 (America/New_York)"
    );
    assert_eq!(
        lines[9],
        "10  Sun 2006-01-01 09:00:00 -05:00 (America/New_York)"
    );
    // A time in the spring-forward gap: the instant RFC 5545 §3.3.5 gives it (EST, before
    // the gap), as the plugin computes it.
    let (ok, stdout, _) = run(&[
        &[
            "recurrence",
            "FREQ=DAILY",
            "--dtstart",
            "2025-03-08T02:30:00",
            "-n",
            "2",
        ][..],
        &ny[..],
    ]
    .concat());
    assert!(ok);
    assert!(
        stdout.contains(" 2  Sun 2025-03-09 02:30:00 -05:00 (America/New_York)"),
        "{stdout}"
    );
    // Offsets are whole seconds, whatever the zone (Nepal: +05:45; London in summer: +01:00).
    for (tz, line) in [
        (
            "Asia/Kathmandu",
            " 1  Mon 1997-05-12 09:00:00 +05:45 (Asia/Kathmandu)\n",
        ),
        (
            "Europe/London",
            " 1  Mon 1997-05-12 09:00:00 +01:00 (Europe/London)\n",
        ),
    ] {
        let (ok, stdout, stderr) = run(&[
            "recurrence",
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "--dtstart",
            "1997-05-12T09:00:00",
            "-n",
            "1",
            "--tz",
            tz,
        ]);
        assert!(ok, "{stderr}");
        assert_eq!(stdout, line);
    }
    // Floating rules have no offset.
    let (ok, stdout, _) = run(&[
        "recurrence",
        "FREQ=WEEKLY",
        "--dtstart",
        "2025-01-06T09:00:00",
        "-n",
        "1",
    ]);
    assert!(ok);
    assert_eq!(stdout, " 1  Mon 2025-01-06 09:00:00 floating (floating)\n");
}

#[test]
fn recurrence_explains_a_refused_rule_with_the_plugins_problem() {
    let (ok, stdout, stderr) = run(&[
        "recurrence",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "--dtstart",
        "2025-01-06T09:00:00",
    ]);
    assert!(!ok, "a refused rule exits non-zero");
    assert!(
        stdout.starts_with("refused: FREQ=MONTHLY;BYMONTHDAY=0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  invalid-rrule: RRULE part BYMONTHDAY"),
        "{stdout}"
    );
    assert!(stderr.contains("invalid-rrule"), "{stderr}");
    let (ok, stdout, _) = run(&[
        "recurrence",
        "FREQ=DAILY",
        "--dtstart",
        "2025-01-06T09:00:00",
        "--tz",
        "Mars/Olympus_Mons",
    ]);
    assert!(!ok);
    assert!(stdout.contains("  unknown-timezone: "), "{stdout}");
}
