//! The REST routes, one module per upstream service, plus health, readiness and the API description. This
//! module only assembles the router: the handlers live in their service's module, what they share in
//! `common`.

mod billing;
mod catalogue;
mod common;
mod conversation;
mod document;
mod identity;
mod membership;
mod meta;
mod notifications;
pub mod operations;
mod password;
mod requests;
mod routing;
mod sessions;

pub use document::{openapi, openapi_json};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post, put};

use crate::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::{live, problem, security, telemetry};

/// The whole API. Layers, outermost first: security headers, logging, CORS, rate limits, body limit.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/openapi.json", get(document::serve))
        .route("/docs", get(meta::docs))
        .route("/.well-known/jwks.json", get(identity::jwks))
        .route("/v1/auth/token", post(identity::issue_token))
        .route("/v1/auth/refresh", post(identity::refresh))
        .route("/v1/auth/logout", post(identity::logout))
        .route("/v1/auth/invitations/accept", post(identity::accept_invitation))
        .route("/v1/auth/password-reset", post(password::request_password_reset))
        .route("/v1/auth/password-reset/confirm", post(password::confirm_password_reset))
        .route("/v1/auth/keys/rotate", post(identity::rotate_keys))
        .route("/v1/me", get(identity::me))
        .route("/v1/me/password", put(password::change_password))
        .route(
            "/v1/me/notification-preferences",
            get(requests::notification_preferences).put(requests::update_notification_preferences),
        )
        .route("/v1/notifications", get(notifications::list))
        .route("/v1/notifications/read-all", post(notifications::mark_all_read))
        .route("/v1/notifications/{id}/read", post(notifications::mark_read))
        .route("/v1/events", get(live::events))
        .route("/v1/users", get(identity::list_users).post(identity::invite))
        .route("/v1/users/{id}", delete(identity::remove_user))
        .route("/v1/audit-events", get(identity::audit_events))
        .route("/v1/operations", get(operations::operations))
        .route("/v1/collectivities", get(membership::search_collectivities))
        .route("/v1/collectivities/{siren}", get(membership::get_collectivity))
        .route("/v1/memberships", post(membership::apply).get(membership::list_members))
        .route("/v1/memberships/{id}", get(membership::get_member))
        .route("/v1/memberships/{id}/approve", post(membership::approve))
        .route("/v1/memberships/{id}/refuse", post(membership::refuse))
        .route("/v1/memberships/{id}/referent", put(identity::assign_referent))
        .route("/v1/offers", get(catalogue::list_offers).post(catalogue::create_offer))
        .route("/v1/offers/{id}", get(catalogue::get_offer).put(catalogue::update_offer))
        .route("/v1/offers/{id}/publish", post(catalogue::publish_offer))
        .route("/v1/offers/{id}/archive", post(catalogue::archive_offer))
        .route("/v1/providers", get(catalogue::list_providers).post(catalogue::create_provider))
        .route("/v1/providers/{code}", put(catalogue::update_provider))
        .route("/v1/offers/{id}/sessions", get(sessions::list_offer_sessions).post(sessions::schedule))
        .route("/v1/sessions", get(sessions::list_sessions))
        .route("/v1/sessions/{id}", get(sessions::get_session))
        .route("/v1/sessions/{id}/cancel", post(sessions::cancel_session))
        .route("/v1/sessions/{id}/registrations", get(sessions::list_session_registrations).post(sessions::register))
        .route("/v1/sessions/{id}/attendance", post(sessions::record_attendance))
        .route("/v1/sessions/{id}/rating", post(sessions::rate))
        .route("/v1/sessions/{id}/attendance-sheet", get(sessions::attendance_sheet))
        .route("/v1/sessions/{id}/calendar", get(sessions::session_calendar))
        .route("/v1/registrations", get(sessions::list_registrations))
        .route("/v1/registrations/{id}/cancel", post(sessions::cancel_registration))
        .route("/v1/registrations/{id}/attestation", get(sessions::attestation))
        .route("/v1/me/calendar-feed", post(sessions::issue_feed).delete(sessions::revoke_feed))
        .route("/v1/calendar-feeds/{token}", get(sessions::calendar_feed))
        .route("/v1/session-statistics", get(sessions::statistics))
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
        .route("/v1/routing/providers/{code}/sla", get(routing::get_sla).put(routing::set_sla))
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
        .layer(middleware::from_fn(crate::caching::conditional))
        .layer(middleware::from_fn_with_state(state.clone(), security::rate_limit))
        .layer(middleware::from_fn_with_state(state.clone(), security::cors))
        .layer(middleware::from_fn(telemetry::trace_request))
        .layer(middleware::from_fn_with_state(state.clone(), security::headers))
        .with_state(state)
}
