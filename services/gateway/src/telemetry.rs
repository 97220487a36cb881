//! Per-call telemetry: a span that continues the caller's W3C trace context, the `id77_http_*` metrics and one
//! log line per call.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Logs each call (5xx as warnings), counts it (`id77_http_*` metrics) and runs it in a span that continues the
/// caller's W3C trace context (`traceparent`); the gRPC calls it makes carry the span on (`crate::Traced`).
pub async fn trace_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let route = route.as_deref().unwrap_or("(unmatched)").to_owned();
    // Metrics label: the standard methods, anything else as one series.
    let method_label = match method.as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_owned();
    let span = tracing::info_span!("http", otel.name = %format!("{method} {route}"), otel.kind = "server",
        http.request.method = %method, http.route = %route, http.response.status_code = tracing::field::Empty);
    id77_platform::telemetry::extract_http(request.headers(), &span);
    let started = Instant::now();
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = id77_platform::metrics::global();
    metrics
        .http_requests
        .get_or_create(&id77_platform::metrics::HttpLabels {
            service: "gateway".to_owned(),
            method: method_label.clone(),
            route: route.clone(),
            status: status.to_string(),
        })
        .inc();
    metrics
        .http_duration
        .get_or_create(&id77_platform::metrics::RouteLabels {
            service: "gateway".to_owned(),
            method: method_label,
            route: route.clone(),
        })
        .observe(elapsed);
    let elapsed_ms = elapsed * 1000.0;
    let route = route.as_str();
    if response.status().is_server_error() {
        tracing::warn!(%method, route, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(%method, route, status, elapsed_ms, "request");
    }
    response
}
