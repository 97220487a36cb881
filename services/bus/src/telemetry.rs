//! Structured logs and traces through `tracing`.
//!
//! Logs: `ID77_LOG` filters (default `info`), `ID77_LOG_FORMAT=json` switches to one JSON object per line for
//! log collectors.
//!
//! Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://otel-collector:4318`), spans are exported
//! over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, with the standard `OTEL_*` variables honoured
//! (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_SCHEDULE_DELAY`...). The W3C trace context
//! (`traceparent`) then follows a request: HTTP headers at the gateway, gRPC metadata between processes
//! ([`inject_http`] / [`extract_http`]), the outbox row's `trace_context` and the NATS message's `traceparent`
//! header ([`current_traceparent`] / [`extract_nats`]). Without the variable no span leaves the process and
//! nothing is propagated.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Spans exported (the OTLP exporter's own HTTP client, and chatty dependencies, are left out).
const TRACE_FILTER: &str = "info,h2=off,hyper=off,hyper_util=off,tower=off,tonic=off,sqlx=off,async_nats=off,\
                            opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,opentelemetry_http=off";

/// Installs the global subscriber (and the OTLP exporter when configured). Call it inside the Tokio runtime:
/// the exporter sends its batches on it. Safe to call more than once (later calls do nothing).
pub fn init(service: &str) {
    let filter =
        EnvFilter::try_from_env("ID77_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn"));
    let json = std::env::var("ID77_LOG_FORMAT").is_ok_and(|f| f == "json");
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let fmt = if json { fmt.json().flatten_event(true).boxed() } else { fmt.compact().boxed() };
    let (otel, exporter_error) = match otlp_provider(service) {
        Ok(Some(provider)) => {
            let tracer = provider.tracer("id77");
            let _ = PROVIDER.set(provider);
            let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(EnvFilter::new(TRACE_FILTER));
            (Some(layer), None)
        }
        Ok(None) => (None, None),
        Err(error) => (None, Some(error)),
    };
    let result = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel).try_init();
    if result.is_ok() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), otlp, "telemetry initialised");
        if let Some(error) = exporter_error {
            tracing::warn!(error = format!("{error:#}"), "OTLP trace export disabled");
        }
    }
}

/// Exports the spans still buffered and stops the exporter. Call once at the end of `main`.
pub async fn shutdown() {
    if let Some(provider) = PROVIDER.get().cloned() {
        // The batch processor blocks until its thread has exported; that thread sends on this runtime.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// Sends the buffered spans now (tests; a shutting-down process uses [`shutdown`]).
pub async fn flush() {
    if let Some(provider) = PROVIDER.get().cloned() {
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }
}

fn otlp_provider(service: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let Some(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.trim().is_empty()) else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("telemetry::init must run inside the Tokio runtime"))?;
    let client = OnRuntime {
        client: opentelemetry_http::hyper::HyperClient::with_default_connector(
            std::time::Duration::from_secs(10),
            None,
        ),
        runtime,
    };
    let traces = format!("{}/v1/traces", endpoint.trim().trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").unwrap_or(traces))
        .build()?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("id77-{service}"));
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
    Ok(Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()))
}

/// The OTLP exporter's HTTP client: hyper, run on the service's Tokio runtime. The batch span processor exports
/// from a thread of its own, without a reactor; the request is spawned on the runtime and awaited from there.
#[derive(Debug, Clone)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        self.runtime.spawn(async move { client.send_bytes(request).await }).await?
    }
}

/// The current span's context as a `traceparent` value (none when no span is recorded or traces are off).
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Writes the current span's context into HTTP (gRPC) headers.
pub fn inject_http(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
}

/// Makes the context in HTTP (gRPC) headers the parent of `span`, when there is one.
pub fn extract_http(headers: &http::HeaderMap, span: &tracing::Span) {
    set_parent(span, &opentelemetry_http::HeaderExtractor(headers));
}

/// Makes the context in a NATS message's headers the parent of `span`, when there is one.
pub fn extract_nats(headers: &async_nats::HeaderMap, span: &tracing::Span) {
    set_parent(span, &NatsHeaders(headers));
}

/// Makes a stored `traceparent` the parent of `span`.
pub fn extract_traceparent(traceparent: &str, span: &tracing::Span) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    set_parent(span, &carrier);
}

fn set_parent(span: &tracing::Span, carrier: &dyn Extractor) {
    if carrier.get(TRACEPARENT).is_none() {
        return;
    }
    let context = TraceContextPropagator::new().extract(carrier);
    // Fails only when no OpenTelemetry layer is installed (traces off) or the span is disabled: nothing to do.
    let _ = span.set_parent(context);
}

struct NatsHeaders<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_headers_carry_a_traceparent() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(TRACEPARENT, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let carrier = NatsHeaders(&headers);
        let context = TraceContextPropagator::new().extract(&carrier);
        use opentelemetry::trace::TraceContextExt;
        let span = context.span();
        let span_context = span.span_context();
        assert_eq!(span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(span_context.is_remote() && span_context.is_sampled());
    }
}
