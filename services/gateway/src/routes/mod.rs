//! The REST routes, one module per upstream service, plus health, readiness and the API description.

mod billing;
mod catalogue;
mod membership;
mod meta;
mod requests;
mod routing;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use uuid::Uuid;

use crate::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::problem::{self, Problem};

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(meta::openapi))
        .route("/docs", get(meta::docs))
        .route("/v1/collectivities", get(membership::search_collectivities))
        .route("/v1/collectivities/{siren}", get(membership::get_collectivity))
        .route("/v1/memberships", post(membership::apply).get(membership::list_members))
        .route("/v1/memberships/{id}", get(membership::get_member))
        .route("/v1/memberships/{id}/approve", post(membership::approve))
        .route("/v1/offers", get(catalogue::list_offers))
        .route("/v1/offers/{id}", get(catalogue::get_offer))
        .route("/v1/providers", get(catalogue::list_providers))
        .route("/v1/requests", post(requests::submit).get(requests::list))
        .route("/v1/requests/{id}", get(requests::get))
        .route("/v1/referrals", get(routing::list))
        .route("/v1/referrals/{id}", get(routing::get))
        .route("/v1/quotes", get(billing::list))
        .route("/v1/quotes/{id}", get(billing::get))
        .fallback(problem::not_found_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// Logs each call (5xx as warnings) and sets `nosniff`.
async fn trace_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let route = route.as_deref().unwrap_or("(unmatched)");
    if response.status().is_server_error() {
        tracing::warn!(%method, route, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(%method, route, status, elapsed_ms, "request");
    }
    response
}

/// Maps a failed gRPC call to a problem naming the service.
fn upstream(service: &'static str) -> impl FnOnce(tonic::Status) -> Problem {
    move |status| Problem::from_upstream(service, &status)
}

/// 201 with `Location` and the created resource.
fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Whether an id from a service designates `member` (UUIDs compared as UUIDs, not as text).
fn same_member(id: &str, member: Uuid) -> bool {
    Uuid::parse_str(id).is_ok_and(|id| id == member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_compare_as_uuids() {
        let id = Uuid::now_v7();
        assert!(same_member(&id.to_string(), id));
        assert!(same_member(&id.to_string().to_uppercase(), id));
        assert!(same_member(&id.simple().to_string(), id));
        assert!(!same_member(&Uuid::now_v7().to_string(), id));
        assert!(!same_member("", id));
    }
}
