//! What an operator sees and uses, end to end: `/metrics` as documented, JSON logs that name the
//! delivery, W3C trace context carried to what a delivery publishes, OTLP span export (only when
//! configured), 404s for unknown paths, the pid file behind the documented SIGHUP command, and
//! `topics tail`'s advice.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use task_events_tests::admin::{Admin, parse_series};
use task_events_tests::dapr_mode::{DaprMode, TASK_ROUTE};
use task_events_tests::embedded_api::{self, SidecarApi, publish, wait_topic};
use task_events_tests::events::daily_completion;
use task_events_tests::host::{HostProcess, free_port};

const HOST: &str = env!("CARGO_BIN_EXE_host-under-test");
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TP_DEAD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const DOCS: &str = include_str!("../../docs/operations.md");

/// An event the task plugin rejects (so it is dead-lettered).
fn invalid_event() -> Value {
    json!({"event_id": "bad-1", "event_type": "task.exploded", "event_version": "1.0",
        "task_id": "x", "timestamp": "yesterday", "payload": {}})
}

/// Publishes `event` on task-events as a publisher in a trace does: the trace context as daprd's
/// publish metadata, which the sidecar writes into the CloudEvent it delivers.
async fn publish_traced(sidecar: &impl SidecarApi, event: &Value, traceparent: &str) {
    let trace = [
        ("cloudevent.traceparent", traceparent),
        ("cloudevent.tracestate", "vendor%3Dx1"),
    ];
    embedded_api::publish_with(sidecar, "task-events", event, &trace).await;
}

/// Events of type `kind` on `topic`, once there are `n` (bounded wait).
async fn wait_kind(host: &impl SidecarApi, topic: &str, kind: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = embedded_api::topic_events(host, topic).await;
        let found: Vec<Value> = events.into_iter().filter(|e| e["type"] == kind).collect();
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} on {topic}; log:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The series names docs/operations.md's metrics table lists (one row per series).
fn documented_series() -> BTreeSet<String> {
    DOCS.lines()
        .filter_map(|l| l.strip_prefix("| `task_events_"))
        .map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            format!("task_events_{name}")
        })
        .collect()
}

/// The sum of the samples of `name` in a `/metrics` text whose labels include `labels`.
fn sample_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, have) = parse_series(series);
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|(_, v)| v.parse::<f64>().expect("a sample value"))
        .sum()
}

#[tokio::test]
async fn metrics_serve_exactly_the_documented_series() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &["--admin-token", "t"], &[]).await;
    let admin = Admin::new(&host.base, Some("t"));
    // A rejection, so the rejection series has a sample; then one event end to end.
    let (code, _) = admin.swap(b"not a plugin".to_vec()).await;
    assert_eq!(code, 422);
    publish(&host, &daily_completion(1)).await;
    wait_kind(&host, "task-events", "task.created", 1).await;

    let resp = reqwest::get(format!("{}/metrics", host.base))
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "Prometheus text"
    );
    let text = resp.text().await.unwrap();
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let documented = documented_series();
    assert!(
        documented.len() >= 20,
        "the table was found: {documented:?}"
    );
    assert_eq!(
        documented, served,
        "docs/operations.md's metrics table and /metrics must list the same series"
    );
    let value = |name: &str, labels: &[(&str, &str)]| sample_sum(&text, name, labels);
    let delivered = [("topic", "task-events"), ("status", "SUCCESS")];
    assert!(
        value("task_events_deliveries_total", &delivered) >= 1.0,
        "{text}"
    );
    assert!(value("task_events_plugin_call_duration_seconds_count", &[]) >= 1.0);
    assert!(
        value(
            "task_events_sidecar_calls_total",
            &[("operation", "publish"), ("result", "ok")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            "task_events_plugin_rejections_total",
            &[("reason", "not-a-component")]
        ),
        1.0
    );
    let current = [("role", "current"), ("name", "task-plugin")];
    assert_eq!(value("task_events_plugin_generation_info", &current), 1.0);
    assert_eq!(
        value("task_events_dead_letters_total", &[("reason", "rejected")]),
        0.0
    );
}

#[tokio::test]
async fn trace_context_reaches_every_event_a_delivery_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    publish_traced(&host, &daily_completion(2), TP).await;
    let created = wait_kind(&host, "task-events", "task.created", 1).await;
    assert_eq!(created[0]["traceparent"], TP, "{:#}", created[0]);
    assert_eq!(created[0]["tracestate"], "vendor=x1");

    publish_traced(&host, &invalid_event(), TP_DEAD).await;
    let dead = wait_kind(&host, "task-events-dlq", "task-events.dead-letter", 1).await;
    assert_eq!(dead[0]["traceparent"], TP_DEAD, "{:#}", dead[0]);
    assert_eq!(dead[0]["tracestate"], "vendor=x1");

    // Stderr is a file here, not a terminal: no colour codes in the log.
    assert!(
        !host.log().contains('\u{1b}'),
        "ANSI codes in a redirected log"
    );
}

#[tokio::test]
async fn in_dapr_mode_the_trace_travels_to_daprd_with_the_publish() {
    let dir = tempfile::tempdir().unwrap();
    let p = DaprMode::start(HOST, dir.path(), None, &[], &[]).await;
    publish_traced(&p.sidecar, &daily_completion(3), TP).await;
    p.wait_answers(TASK_ROUTE, "the completion and the task it created", |a| {
        a.len() >= 2
    })
    .await;
    let publishes: Vec<_> = p
        .sidecar_proxy
        .journal()
        .into_iter()
        .filter(|x| x.path.starts_with("/v1.0/publish/"))
        .collect();
    assert!(!publishes.is_empty());
    for x in &publishes {
        // daprd sets an app CloudEvent's trace fields from the publish request's context.
        assert_eq!(
            x.request_headers.get("traceparent").map(String::as_str),
            Some(TP)
        );
        assert!(
            x.path.contains("metadata.cloudevent.traceparent="),
            "{}",
            x.path
        );
        assert_eq!(x.request_json()["traceparent"], TP);
    }
    let created = p.created().await;
    assert_eq!(created[0]["traceparent"], TP);
}

#[tokio::test]
async fn json_logs_name_the_event_topic_and_plugin_of_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let host =
        HostProcess::embedded(HOST, dir.path(), &[], &[("TASK_EVENTS_LOG_FORMAT", "json")]).await;
    publish(&host, &invalid_event()).await;
    let dead = wait_topic(&host, "task-events-dlq", 1, Duration::from_secs(30)).await;
    let original_id = dead[0]["data"]["original"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let version = dead[0]["data"]["plugin"]["version"]
        .as_str()
        .unwrap()
        .to_string();

    let log = host.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    let dead_lettering = lines
        .iter()
        .find(|l| l["fields"]["message"] == "dead-lettering")
        .unwrap_or_else(|| panic!("no dead-lettering line in\n{log}"));
    let span = &dead_lettering["span"];
    assert_eq!(span["name"], "delivery", "{dead_lettering}");
    assert_eq!(span["event"], original_id.as_str());
    assert_eq!(span["topic"], "task-events");
    assert_eq!(span["plugin"], "task-plugin");
    assert_eq!(span["plugin_version"], version.as_str());
}

#[tokio::test]
async fn unknown_paths_answer_404_and_a_publish_in_dapr_mode_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let embedded = HostProcess::embedded(HOST, dir.path(), &[], &[]).await;
    for path in ["/nope", "/admin/nope", "/dapr/nope"] {
        let resp = client
            .get(format!("{}{path}", embedded.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path} in embedded mode");
    }
    let admin = client
        .get(format!("{}/admin/plugin", embedded.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin.status(),
        403,
        "the admin endpoints themselves are still refused"
    );

    // Dapr mode: nothing listens on DAPR_HTTP_PORT, which is fine until a delivery comes.
    let port = free_port().to_string();
    let data = dir.path().join("dapr-data");
    let args = ["--data-dir", data.to_str().unwrap()];
    let dapr = HostProcess::start(
        HOST,
        dir.path(),
        &args,
        &[("DAPR_HTTP_PORT", port.as_str())],
    )
    .await;
    let resp = client
        .get(format!("{}/nope", dapr.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "an unknown path in Dapr mode is not an admin 403"
    );
    let publish = client
        .post(format!(
            "{}/v1.0/publish/kafka-pubsub/task-events",
            dapr.base
        ))
        .header("content-type", "application/json")
        .body(daily_completion(5).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(publish.status(), 404);
    let body: Value = publish.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    for needle in ["embedded sidecar is off", "DAPR_HTTP_PORT", "--sidecar"] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
}

#[tokio::test]
async fn the_pid_file_targets_the_serving_process_and_goes_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("host.pid");
    let mut host = HostProcess::embedded(
        HOST,
        dir.path(),
        &["--pid-file", pid_file.to_str().unwrap()],
        &[],
    )
    .await;
    let pid = std::fs::read_to_string(&pid_file).expect("the pid file exists while serving");
    // The documented command: kill -HUP "$(cat PATH)".
    let hup = Command::new("sh")
        .args([
            "-c",
            &format!("kill -HUP \"$(cat '{}')\"", pid_file.display()),
        ])
        .status()
        .unwrap();
    assert!(hup.success(), "pid file held {pid:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("SIGHUP") {
        assert!(
            Instant::now() < deadline,
            "SIGHUP not handled; log:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = reqwest::get(format!("{}/healthz", host.base))
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "SIGHUP reloads; it does not stop the host"
    );
    let status = host.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");
    assert!(!pid_file.exists(), "the pid file is removed at exit");
}

#[test]
fn topics_tail_on_an_unreachable_host_names_the_url_flag() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(HOST)
        .args([
            "topics",
            "tail",
            "task-events",
            "--no-follow",
            "--url",
            &url,
        ])
        .env_remove("TASK_EVENTS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [url.as_str(), "--url", "TASK_EVENTS_URL"] {
        assert!(stderr.contains(needle), "{needle} in {stderr}");
    }
}

/// A fake OTLP/HTTP collector on loopback: keeps the body of every `POST /v1/traces`.
struct Collector {
    url: String,
    bodies: Arc<Mutex<Vec<bytes::Bytes>>>,
}

impl Collector {
    async fn start() -> Collector {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let record = move |body: bytes::Bytes| async move {
            kept.lock().unwrap().push(body);
            // An empty ExportTraceServiceResponse: everything accepted.
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        };
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, bodies }
    }

    /// Every exported span with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let bodies = self.bodies.lock().unwrap().clone();
        let mut spans = Vec::new();
        for body in bodies {
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
            for resource_spans in request.resource_spans {
                let resource = resource_spans.resource.unwrap_or_default();
                let service = attr(&resource.attributes, "service.name").unwrap_or_default();
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    spans.push((service.to_string(), span));
                }
            }
        }
        spans
    }
}

/// A string attribute's value.
fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Threads of the OTel batch span processor in the process of `pid_file` (Linux names a thread
/// by its first 15 bytes: "OpenTelemetry.T").
fn exporter_threads(pid_file: &std::path::Path) -> usize {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    std::fs::read_dir(format!("/proc/{}/task", pid.trim()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("OpenTelemetry.T"))
        .count()
}

#[tokio::test]
async fn with_an_otlp_endpoint_the_delivery_span_continues_the_publishers_trace() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("host.pid");
    let args = [
        "--otlp-endpoint",
        &collector.url,
        "--pid-file",
        pid_file.to_str().unwrap(),
    ];
    // No batch is due for 10 minutes: only the flush at shutdown can bring the span.
    let envs = [
        ("OTEL_SERVICE_NAME", "task-events-e2e"),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let mut host = HostProcess::embedded(HOST, dir.path(), &args, &envs).await;
    assert_eq!(exporter_threads(&pid_file), 1);
    publish_traced(&host, &daily_completion(6), TP).await;
    wait_kind(&host, "task-events", "task.created", 1).await;
    let status = host.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}; log:\n{}", host.log());

    let spans = collector.spans();
    let (service, delivery) = spans
        .iter()
        .find(|(_, s)| s.name == "delivery" && hex(&s.trace_id) == TP[3..35])
        .unwrap_or_else(|| panic!("no delivery span in {spans:#?}; log:\n{}", host.log()));
    assert_eq!(
        hex(&delivery.parent_span_id),
        TP[36..52],
        "the publisher's span is the parent"
    );
    assert_eq!(service, "task-events-e2e");
    assert_eq!(attr(&delivery.attributes, "topic"), Some("task-events"));
    assert_eq!(attr(&delivery.attributes, "plugin"), Some("task-plugin"));
    assert_eq!(attr(&delivery.attributes, "traceparent"), Some(TP));
    assert!(attr(&delivery.attributes, "event").is_some());
    assert!(host.log().contains("exporting delivery spans over OTLP"));
}

#[tokio::test]
async fn without_an_otlp_endpoint_nothing_is_exported() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("host.pid");
    let traces = format!("{}/v1/traces", collector.url);
    // Other OTel variables alone do not turn export on; an empty endpoint is no endpoint.
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
        ("OTEL_SERVICE_NAME", "task-events-e2e"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let args = ["--pid-file", pid_file.to_str().unwrap()];
    let mut host = HostProcess::embedded(HOST, dir.path(), &args, &envs).await;
    publish_traced(&host, &daily_completion(7), TP).await;
    let created = wait_kind(&host, "task-events", "task.created", 1).await;
    assert_eq!(
        created[0]["traceparent"], TP,
        "propagation does not need export"
    );
    assert_eq!(exporter_threads(&pid_file), 0, "no exporter thread");
    assert!(host.terminate(Duration::from_secs(30)).await.success());
    assert!(collector.spans().is_empty());
    assert!(!host.log().contains("OTLP"), "{}", host.log());
}

#[tokio::test]
async fn a_collector_that_is_down_costs_spans_not_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}", free_port());
    let envs = [("OTEL_BSP_SCHEDULE_DELAY", "50")];
    let mut host =
        HostProcess::embedded(HOST, dir.path(), &["--otlp-endpoint", &down], &envs).await;
    for n in 8..11 {
        publish_traced(&host, &daily_completion(n), TP).await;
    }
    wait_kind(&host, "task-events", "task.created", 3).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("OTLP export to") {
        assert!(
            Instant::now() < deadline,
            "no export warning:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    assert!(host.terminate(Duration::from_secs(30)).await.success());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the exit waited {:?} for the collector",
        started.elapsed()
    );
    let warnings = host.log().matches("OTLP export to").count();
    assert_eq!(warnings, 1, "one warning per outage:\n{}", host.log());
}
