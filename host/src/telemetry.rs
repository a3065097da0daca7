//! Optional OpenTelemetry trace export over OTLP/HTTP: off unless `--otlp-endpoint`
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`) is set.
//!
//! Contract:
//! - Off (the default): no exporter, no thread, no connection; [`continue_trace`] returns at once
//!   and logging is exactly what it is without this module.
//! - On: every `delivery` span (pipeline/mod.rs) becomes an OTel span named `delivery`, its fields
//!   (event, topic, plugin, plugin_version, traceparent) as attributes and the lines logged inside
//!   it (the host's and the plugin's, INFO and up) as span events. Its parent is the delivery's incoming W3C context (trace_context.rs), so a
//!   publisher's trace continues through the host; a delivery without one starts a trace.
//!   Sampling is parent-based (a `traceparent` with flags `00` is not exported; the SDK reads
//!   `OTEL_TRACES_SAMPLER`). Only the host's own spans are exported, whatever `RUST_LOG` says: it
//!   tunes the log, not the traces.
//! - Batched and never in a delivery's way: an ending span goes on the SDK batch processor's
//!   bounded queue (2048 spans, `OTEL_BSP_*`) and the delivery moves on; the processor's own thread
//!   posts protobuf batches to `<endpoint>/v1/traces` every 5 s or 512 spans. A collector that is
//!   down, slow or refusing costs spans only: one attempt gives up after [`REQUEST_TIMEOUT`], the
//!   SDK's retries after `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s); the batch is then lost, with an error
//!   line; a full queue drops new spans. This module warns once when the collector stops
//!   answering (with the cause) and says when it answers again.
//! - Shutdown: [`Telemetry::shutdown`], once `serve` has returned, exports what is queued,
//!   bounded by [`SHUTDOWN_FLUSH`] so an unreachable collector cannot hold the exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryArgs;
use crate::trace_context::TraceContext;

/// The longest one export request may take (OTel's default export timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the exit waits for the last spans to reach the collector.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// Whether export is on: set once by [`Telemetry::start`]; off, a delivery does no OTel work.
static EXPORTING: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "--otlp-endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) {endpoint:?} cannot be used: {why}; give the \
         collector's OTLP/HTTP base URL, e.g. http://localhost:4318, or unset it to turn export off"
    )]
    BadEndpoint { endpoint: String, why: String },
    #[error("building the HTTP client for OTLP export: {0}")]
    Client(reqwest::Error),
    #[error(
        "starting the OTLP exporter for {url}: {source} (check the OTEL_EXPORTER_OTLP_* variables)"
    )]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The running exporter; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: SdkTracerProvider,
    url: String,
    service: String,
}

impl Telemetry {
    /// Starts exporting when `args` name an endpoint (`None`: export is off). `runtime` runs the
    /// export requests: the batch processor's thread is outside any tokio runtime, where reqwest
    /// cannot connect.
    pub fn start(
        args: &TelemetryArgs,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Option<Telemetry>, TelemetryError> {
        let Some(endpoint) = args.otlp_endpoint.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if endpoint.is_empty() {
            return Ok(None);
        }
        let url = traces_url(endpoint)?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(TelemetryError::Client)?;
        let client = OnRuntime {
            client,
            runtime: runtime.clone(),
            url: url.clone(),
            failing: Arc::new(AtomicBool::new(false)),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(url.clone())
            // The only encoding built in; an OTEL_EXPORTER_OTLP_PROTOCOL of grpc cannot apply.
            .with_protocol(Protocol::HttpBinary)
            .build()
            .map_err(|source| TelemetryError::Exporter {
                url: url.clone(),
                source,
            })?;
        let resource = Resource::builder()
            .with_service_name(args.otel_service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        EXPORTING.store(true, Ordering::Relaxed);
        Ok(Some(Telemetry {
            provider,
            url,
            service: args.otel_service_name.clone(),
        }))
    }

    /// Says where spans go; call it once logging is set up.
    pub fn announce(&self) {
        tracing::info!(
            "exporting delivery spans over OTLP to {} as service {:?}",
            self.url,
            self.service
        );
    }

    /// The subscriber layer that turns the host's spans into OTel spans (cli.rs).
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.tracer("task-events-host");
        // The host's spans and lines, and what the plugin logs during a delivery (target
        // `plugin`, already rate-limited); not the HTTP and wasm libraries underneath.
        let own = Targets::new()
            .with_target("task_events_host", tracing::Level::INFO)
            .with_target("plugin", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(own)
    }

    /// Exports the queued spans, waiting at most [`SHUTDOWN_FLUSH`]. Call it outside the tokio
    /// runtime's tasks but while the runtime still runs (the requests run on it).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_FLUSH) {
            tracing::warn!("the last spans may not have reached the OTLP collector: {e}");
        }
    }
}

/// Makes `span` (not yet entered) a child of the delivery's incoming W3C context when export is
/// on, so the publisher's trace continues through the host.
pub fn continue_trace(span: &tracing::Span, trace: Option<&TraceContext>) {
    let Some(trace) = trace.filter(|_| EXPORTING.load(Ordering::Relaxed)) else {
        return;
    };
    let parent = TraceContextPropagator::new().extract(&Carrier(trace));
    // An error means the span is disabled or already started: it is then exported (if at all)
    // as the root of a new trace, which loses the link but never the delivery.
    let _ = span.set_parent(parent);
}

/// The OTLP/HTTP traces URL for a base endpoint, as OTel SDKs resolve
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces` appended (unless it is already there).
fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let bad = |why: &str| TelemetryError::BadEndpoint {
        endpoint: endpoint.to_string(),
        why: why.to_string(),
    };
    let parsed = reqwest::Url::parse(endpoint).map_err(|e| bad(&format!("not a URL ({e})")))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(bad(
                "this build exports over plain HTTP only (no TLS); send to a collector or agent \
                 beside the host that forwards over TLS",
            ));
        }
        other => return Err(bad(&format!("scheme {other:?} is not http"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    })
}

/// A parsed delivery context as the W3C propagator reads it.
struct Carrier<'a>(&'a TraceContext);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.0.traceparent.as_str()),
            "tracestate" => self.0.tracestate.as_deref(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// reqwest's async client, run on the host's tokio runtime, reporting the collector's state
/// changes once each (not per batch).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    url: String,
    failing: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self
            .runtime
            .spawn(async move { client.send_bytes(request).await })
            .await;
        let answer = sent.unwrap_or_else(|e| Err(Box::new(e)));
        let problem = match &answer {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!(
                "it answered {} (does it accept OTLP/HTTP protobuf at this path?)",
                response.status()
            )),
            Err(e) => Some(causes(e.as_ref())),
        };
        match problem {
            Some(problem) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                "OTLP export to {} failed: {problem}; spans are dropped until the collector \
                 answers (deliveries are not affected)",
                self.url
            ),
            None if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("OTLP export to {} works again", self.url)
            }
            _ => {}
        }
        answer
    }
}

/// An error with its causes ("error sending request: … Connection refused"): reqwest's own
/// message names the URL but not why.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_is_the_base_plus_v1_traces() {
        let url = |e: &str| traces_url(e).map_err(|e| e.to_string());
        assert_eq!(
            url("http://otel:4318").unwrap(),
            "http://otel:4318/v1/traces"
        );
        assert_eq!(
            url("http://otel:4318/base/").unwrap(),
            "http://otel:4318/base/v1/traces"
        );
        assert_eq!(
            url("http://otel:4318/v1/traces").unwrap(),
            "http://otel:4318/v1/traces"
        );
        for (bad, why) in [
            ("https://otel:4318", "plain HTTP only"),
            ("otel:4318", "is not http"),
            ("localhost", "not a URL"),
        ] {
            let error = url(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
            assert!(error.contains("--otlp-endpoint"), "{error}");
        }
    }

    #[test]
    fn the_carrier_hands_the_propagator_the_parsed_context() {
        use opentelemetry::trace::TraceContextExt as _;
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(Some(tp), Some("vendor=x1")).unwrap();
        let parent = TraceContextPropagator::new().extract(&Carrier(&ctx));
        let span = parent.span();
        let remote = span.span_context();
        assert!(remote.is_remote() && remote.is_sampled());
        assert_eq!(
            remote.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(remote.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(remote.trace_state().header(), "vendor=x1");
    }
}
