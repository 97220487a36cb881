//! The REST routes, one module per upstream service, plus health, readiness and the API description.

mod billing;
mod catalogue;
mod conversation;
mod identity;
mod membership;
mod meta;
mod requests;
mod routing;

pub use meta::{DOCS_HTML, OPENAPI_JSON};

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde::Serialize;
use uuid::Uuid;

use crate::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::problem::{self, Problem};
use crate::security;

/// The whole API. Layers, outermost first: security headers, logging, CORS, rate limits, body limit.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(meta::openapi))
        .route("/docs", get(meta::docs))
        .route("/.well-known/jwks.json", get(identity::jwks))
        .route("/v1/auth/token", post(identity::issue_token))
        .route("/v1/auth/refresh", post(identity::refresh))
        .route("/v1/auth/logout", post(identity::logout))
        .route("/v1/auth/invitations/accept", post(identity::accept_invitation))
        .route("/v1/auth/keys/rotate", post(identity::rotate_keys))
        .route("/v1/me", get(identity::me))
        .route(
            "/v1/me/notification-preferences",
            get(requests::notification_preferences).put(requests::update_notification_preferences),
        )
        .route("/v1/events", get(crate::live::events))
        .route("/v1/users", get(identity::list_users).post(identity::invite))
        .route("/v1/users/{id}", delete(identity::remove_user))
        .route("/v1/audit-events", get(identity::audit_events))
        .route("/v1/collectivities", get(membership::search_collectivities))
        .route("/v1/collectivities/{siren}", get(membership::get_collectivity))
        .route("/v1/memberships", post(membership::apply).get(membership::list_members))
        .route("/v1/memberships/{id}", get(membership::get_member))
        .route("/v1/memberships/{id}/approve", post(membership::approve))
        .route("/v1/memberships/{id}/referent", put(identity::assign_referent))
        .route("/v1/offers", get(catalogue::list_offers).post(catalogue::create_offer))
        .route("/v1/offers/{id}", get(catalogue::get_offer).put(catalogue::update_offer))
        .route("/v1/offers/{id}/publish", post(catalogue::publish_offer))
        .route("/v1/offers/{id}/archive", post(catalogue::archive_offer))
        .route("/v1/providers", get(catalogue::list_providers).post(catalogue::create_provider))
        .route("/v1/providers/{code}", put(catalogue::update_provider))
        .route("/v1/exhibitions/{id}/availability", get(catalogue::availability))
        .route("/v1/exhibitions/{id}/bookings", post(catalogue::hold))
        .route("/v1/bookings/{id}/confirm", post(catalogue::confirm_booking))
        .route("/v1/bookings/{id}/release", post(catalogue::release_booking))
        .route("/v1/requests", post(requests::submit).get(requests::list))
        .route("/v1/requests/summary", get(requests::summary))
        .route("/v1/requests/{id}", get(requests::get))
        .route("/v1/requests/{id}/cancel", post(requests::cancel))
        .route("/v1/requests/{id}/close", post(requests::close))
        .route("/v1/requests/{id}/feedback", put(requests::feedback))
        .route("/v1/statistics/requests", get(requests::statistics))
        .route("/v1/triage", get(requests::triage))
        .route("/v1/triage/{request_id}/assign", post(requests::assign_triaged))
        .route("/v1/requests/{id}/routing", get(routing::explain))
        .route("/v1/requests/{id}/messages", get(conversation::list).post(conversation::post))
        .route("/v1/requests/{id}/messages/read", post(conversation::mark_read))
        .route("/v1/requests/{id}/attachments", post(conversation::upload))
        .route("/v1/requests/{id}/attachments/{attachment_id}", get(conversation::download))
        .route("/v1/referrals", get(routing::list))
        .route("/v1/referrals/reassign", post(routing::reassign_bulk))
        .route("/v1/referrals/{id}", get(routing::get))
        .route("/v1/referrals/{id}/reassign", post(routing::reassign))
        .route("/v1/referrals/{id}/withdraw", post(routing::withdraw))
        .route("/v1/referrals/{id}/accept", post(routing::accept))
        .route("/v1/referrals/{id}/decline", post(routing::decline))
        .route("/v1/referrals/{id}/complete", post(routing::complete))
        .route("/v1/referrals/{id}/progress", post(routing::progress))
        .route("/v1/routing/rules", get(routing::list_rules).post(routing::create_rule))
        .route("/v1/routing/rules/reorder", post(routing::reorder_rules))
        .route("/v1/routing/rules/{id}", put(routing::update_rule).delete(routing::delete_rule))
        .route("/v1/routing/providers/{code}/sla", put(routing::set_sla))
        .route("/v1/quotes", get(billing::list))
        .route("/v1/quotes/{id}", get(billing::get))
        .route("/v1/quotes/{id}/accept", post(billing::accept))
        .route("/v1/quotes/{id}/refuse", post(billing::refuse))
        .route("/v1/invoices", get(billing::list_invoices))
        .route("/v1/invoices/{id}", get(billing::get_invoice))
        .route("/v1/invoices/{id}/credit-note", post(billing::credit_note))
        .route("/v1/invoices/{id}/sent", post(billing::mark_sent))
        .route("/v1/invoices/{id}/paid", post(billing::mark_paid))
        .route("/v1/credit-notes/{id}", get(billing::get_credit_note))
        .fallback(problem::not_found_route)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), security::rate_limit))
        .layer(middleware::from_fn_with_state(state.clone(), security::cors))
        .layer(middleware::from_fn(trace_request))
        .layer(middleware::from_fn_with_state(state.clone(), security::headers))
        .with_state(state)
}

/// Logs each call (5xx as warnings), counts it (`id77_http_*` metrics) and runs it in a span that continues the
/// caller's W3C trace context (`traceparent`); the gRPC calls it makes carry the span on (`crate::Traced`).
async fn trace_request(request: Request, next: Next) -> Response {
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

/// Maps a failed gRPC call that carried the caller's token to a problem naming the service; a service that
/// refuses the token answers 401 `invalid_token`.
fn upstream(service: &'static str) -> impl FnOnce(tonic::Status) -> Problem {
    move |status| {
        let problem = Problem::from_upstream(service, &status);
        if problem.status == StatusCode::UNAUTHORIZED { crate::auth::invalid_token(problem.detail) } else { problem }
    }
}

/// Maps a failed anonymous gRPC call (public routes) to a problem naming the service.
fn upstream_public(service: &'static str) -> impl FnOnce(tonic::Status) -> Problem {
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
