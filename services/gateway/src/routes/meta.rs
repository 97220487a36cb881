//! Liveness, readiness and the API description.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::AppState;
use crate::api_docs::DOCS_HTML;
use crate::problem::{FieldError, Problem};

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, docs), components(schemas(Readiness, Liveness, ReadyStatus)))]
pub struct Api;

// `GET /healthz` as the document describes it.
/// Always `ok`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Liveness {
    Ok,
}

/// Always `ready`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ReadyStatus {
    Ready,
}

// `GET /readyz` as the document describes it (the handler builds the JSON).
/// Every service behind the gateway answers its health check with SERVING.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    status: ReadyStatus,
    /// Each service behind the gateway, by name: `serving`.
    #[schema(example = json!({"membership": "serving", "catalogue": "serving"}))]
    upstreams: std::collections::BTreeMap<String, String>,
}

/// How long one upstream gets to answer a readiness check.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "Liveness",
    description = "The process answers; says nothing of the services behind it (see `/readyz`).",
    responses((status = 200, description = "The process answers.", body = Liveness, content_type = "text/plain")),
    security(())
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// One upstream's health: `Ok` when it answers SERVING, else why not.
async fn check(channel: Channel) -> Result<(), String> {
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest { service: String::new() });
    match tokio::time::timeout(READY_TIMEOUT, call).await {
        Err(_) => Err("no answer within 2 s".to_owned()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(response)) => match ServingStatus::try_from(response.into_inner().status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(other) => Err(other.as_str_name().to_owned()),
            Err(_) => Err("unknown status".to_owned()),
        },
    }
}

/// Readiness: every upstream's gRPC health check answers SERVING (checked concurrently).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    summary = "Readiness: every service answers its gRPC health check with SERVING",
    description = "Each service gets 2 seconds to answer, all checked at once.",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready; `errors` lists the services that are not serving (`field`: the \
                                      service, `detail`: why).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    let checks: Vec<_> = state
        .upstreams()
        .iter()
        .map(|(name, channel)| {
            let (name, channel) = (*name, channel.clone());
            tokio::spawn(async move { (name, check(channel).await) })
        })
        .collect();
    let mut upstreams = serde_json::Map::new();
    let mut failing: Vec<FieldError> = Vec::new();
    for task in checks {
        let (name, result) = match task.await {
            Ok(done) => done,
            Err(error) => ("(check)", Err(error.to_string())),
        };
        match result {
            Ok(()) => {
                upstreams.insert(name.to_owned(), "serving".into());
            }
            Err(why) => {
                upstreams.insert(name.to_owned(), why.clone().into());
                failing.push(FieldError { field: name.to_owned(), detail: why });
            }
        }
    }
    if failing.is_empty() {
        Ok(Json(serde_json::json!({ "status": "ready", "upstreams": upstreams })))
    } else {
        let names: Vec<_> = failing.iter().map(|f| f.field.as_str()).collect();
        let mut problem = Problem::unavailable(format!("not ready: {} not serving", names.join(", ")));
        problem.errors = failing;
        Err(problem)
    }
}

/// The interactive page that reads the document.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    operation_id = "docs",
    summary = "Interactive page listing the operations, with a try-it form",
    description = "Self-contained (no CDN); its inline script and style are allowed by hash in the \
                   Content-Security-Policy.",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")),
    security(())
)]
pub async fn docs() -> Response {
    let mut response = DOCS_HTML.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
