//! One trace follows a request across processes: the real binaries export their spans over OTLP/HTTP to a
//! receiver in this test (a real `/v1/traces` endpoint decoding the protobuf export requests). The caller's
//! `traceparent` is honoured by the gateway, carried in gRPC metadata to requests, stored with requests'
//! outbox row, sent as a NATS header by its relay, continued by routing's consumer, and again through routing's
//! outbox to the provider's referral consumer: one trace id from the HTTP call to the provider. Then every
//! process's `/metrics` exposes the platform's series.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use id77_e2e::{Api, DEMO_PASSWORD, Options, Platform, eventually, metric_sum, metrics_url, onboard_member, scrape};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;

/// A span as the receiver recorded it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Spans = Arc<Mutex<Vec<Span>>>;

async fn receive(State(spans): State<Spans>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                AnyValue::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                });
            }
        }
    }
    if let Ok(mut spans) = spans.lock() {
        spans.extend(received);
    }
    StatusCode::OK
}

/// Starts the OTLP/HTTP receiver; returns its base URL (OTEL_EXPORTER_OTLP_ENDPOINT) and what it records.
async fn start_receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
    let addr = listener.local_addr().expect("receiver address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), spans)
}

fn of_trace(spans: &Spans, trace_id: &str) -> Vec<Span> {
    spans.lock().map(|s| s.iter().filter(|s| s.trace_id == trace_id).cloned().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_follows_a_request_from_the_gateway_to_the_provider() {
    let (endpoint, spans) = start_receiver().await;
    let mut platform = Platform::start_with(
        Options::default().env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint).env("OTEL_BSP_SCHEDULE_DELAY", "200"),
    )
    .await
    .expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");
    let (_, member) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("member");
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer = offers["items"].as_array().and_then(|i| i.first().cloned()).expect("an offer");
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");

    // The caller's own trace context: the gateway must continue it.
    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let caller_span = format!("{:016x}", uuid::Uuid::new_v4().as_u128() as u64 | 1);
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let body =
        json!({"offer_id": offer["id"], "subject": "Tracé de bout en bout", "description": "Une demande suivie."});
    let request = eventually("the submission to be accepted", Duration::from_secs(30), || async {
        let response = api
            .http
            .post(format!("{}/v1/requests", api.base))
            .bearer_auth(&member)
            .header("Idempotency-Key", "trace-1")
            .header("traceparent", &traceparent)
            .json(&body)
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::CREATED).then_some(())?;
        response.json::<serde_json::Value>().await.ok()
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    eventually("the request to be accepted", Duration::from_secs(30), || async {
        let (status, value) = api.get(&format!("/v1/requests/{request_id}"), Some(&member)).await;
        (status == StatusCode::OK && value["status"] == "accepted").then_some(())
    })
    .await;

    // Every hop's span reaches the receiver under the caller's trace id.
    let services = ["id77-gateway", "id77-requests", "id77-routing", "id77-referral-consumer"];
    let trace = eventually("spans of every hop in one trace", Duration::from_secs(30), || async {
        let trace = of_trace(&spans, &trace_id);
        services.iter().all(|s| trace.iter().any(|span| span.service == *s)).then_some(trace)
    })
    .await;
    let by_id: HashMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent_service = |span: &Span| by_id.get(span.parent_span_id.as_str()).map(|p| p.service.clone());
    let summary: Vec<String> =
        trace.iter().map(|s| format!("{} {:?} <- {:?}", s.service, s.name, parent_service(s))).collect();
    let find = |service: &str, name: &str| {
        trace
            .iter()
            .find(|s| s.service == service && s.name.contains(name))
            .unwrap_or_else(|| panic!("no {service} span named {name:?} in {summary:#?}"))
    };

    // The gateway's HTTP span is the child of the caller's span.
    let http = find("id77-gateway", "POST /v1/requests");
    assert_eq!(http.parent_span_id, caller_span, "the incoming traceparent is honoured");
    // requests' gRPC span is the child of a gateway span (gRPC metadata).
    let grpc = find("id77-requests", "SubmitRequest");
    assert_eq!(parent_service(grpc).as_deref(), Some("id77-gateway"), "{summary:#?}");
    // requests' relay publishes in a span under the handler's (the outbox row's trace_context) ...
    let publish = find("id77-requests", "publish id77.requests.request.submitted");
    assert_eq!(parent_service(publish).as_deref(), Some("id77-requests"), "{summary:#?}");
    // ... whose context routing's consumer continues (the NATS traceparent header).
    let handled = find("id77-routing", "handle id77.requests.request.submitted");
    assert_eq!(handled.parent_span_id, publish.span_id, "{summary:#?}");
    // And routing's outbox carries it to the provider's referral consumer.
    let referral = find("id77-referral-consumer", "referral");
    assert_eq!(parent_service(referral).as_deref(), Some("id77-routing"), "{summary:#?}");
    // The provider's reply continues it too: routing applies the acceptance in the same trace.
    let trace = eventually("routing to handle the reply in the trace", Duration::from_secs(30), || async {
        let trace = of_trace(&spans, &trace_id);
        trace
            .iter()
            .any(|s| {
                s.service == "id77-routing"
                    && s.name.starts_with("handle id77.referrals.")
                    && s.name.ends_with(".reply")
            })
            .then_some(trace)
    })
    .await;
    let summary: Vec<String> = trace.iter().map(|s| format!("{} {:?}", s.service, s.name)).collect();
    eprintln!("one trace {trace_id}, {} spans:\n  {}", trace.len(), summary.join("\n  "));

    // The metrics endpoints expose the platform's series.
    let requests = scrape(metrics_url(&platform, "requests").expect("requests metrics")).await.expect("scrape");
    let routing_url = metrics_url(&platform, "routing").expect("routing metrics").to_owned();
    let gateway = scrape(metrics_url(&platform, "gateway").expect("gateway metrics")).await.expect("scrape");
    let method = "/id77.requests.v1.RequestsService/SubmitRequest";
    assert!(
        metric_sum(&requests, "id77_grpc_server_requests_total", &[("service", "requests"), ("method", method)]) >= 1.0,
        "{requests}"
    );
    assert!(metric_sum(&requests, "id77_grpc_server_request_duration_seconds_count", &[("method", method)]) >= 1.0);
    assert!(requests.contains("id77_grpc_server_request_duration_seconds_bucket{"), "{requests}");
    assert!(metric_sum(&requests, "id77_outbox_published_total", &[("service", "requests")]) >= 1.0, "{requests}");
    for series in [
        "id77_build_info",
        "id77_outbox_pending",
        "id77_outbox_oldest_pending_age_seconds",
        "id77_db_pool_connections",
        "id77_db_pool_max_connections",
    ] {
        assert!(requests.contains(&format!("{series}{{service=\"requests\"")), "{series} missing:\n{requests}");
    }
    // Routing's consumer lag is sampled every 5 s.
    let routing = eventually("routing's consumer lag series", Duration::from_secs(20), || {
        let url = routing_url.clone();
        async move {
            let text = scrape(&url).await.ok()?;
            text.contains("id77_consumer_pending_messages{service=\"routing\",durable=\"routing-requests\"}")
                .then_some(text)
        }
    })
    .await;
    assert!(
        metric_sum(&routing, "id77_consumer_events_total", &[("durable", "routing-requests"), ("outcome", "applied")])
            >= 1.0,
        "{routing}"
    );
    assert!(routing.contains("id77_consumer_ack_pending_messages{"), "{routing}");
    assert!(
        metric_sum(
            &gateway,
            "id77_http_requests_total",
            &[("route", "/v1/requests"), ("method", "POST"), ("status", "201")]
        ) >= 1.0,
        "{gateway}"
    );
    assert!(gateway.contains("id77_http_request_duration_seconds_bucket{"), "{gateway}");

    platform.stop().await;
}
