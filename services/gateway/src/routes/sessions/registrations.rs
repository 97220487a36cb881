//! Registrations of named participants: a member's users register for their member (the coordinator for any
//! member), list and cancel them; the provider and the coordinator see a session's.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use id77_platform::auth::Role;
use id77_proto::catalogue::v1 as pb;

use super::input::*;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, P, Q, json_problem};
use crate::problem::Problem;
use crate::routes::common::upstream;
use crate::views::{self, Page};

/// Who reads and cancels registrations: the member's users (their own member's), the session's provider, the
/// coordinator.
const READERS: &[Role] = &[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Coordinator];

/// A member's user registers participants for its member; the coordinator for the member it names.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/registrations",
    tag = "sessions",
    operation_id = "registerParticipants",
    summary = "Register participants (member_admin, member_user: for their member; coordinator: `member_id` required)",
    description = "Each participant is confirmed while seats are left, else waitlisted in arrival order: the \
                   catalogue's database enforces the capacity and the member's quota, so concurrent registrations \
                   never over-book. Answered in the order given, each with its status and waiting-list place. A \
                   member's users always register for their own member: `member_id`, if they give it, is their own \
                   (another member's answers 404).",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The session's id.")),
    request_body = RegisterBody,
    responses((status = 201, description = "Registered (events registration.confirmed, registration.waitlisted).",
        body = views::Registrations,
        headers(("Location" = String, description = "/v1/sessions/{id}/registrations")))),
    security(("bearerAuth" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::Coordinator])?;
    let session_id = uuid_path("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let participants = participants(&mut checks, body.participants);
    let member_id = checks.uuid_filter("member_id", body.member_id);
    if caller.has(Role::Coordinator) && member_id.is_empty() {
        checks.fail("member_id", "is required for the coordinator");
    }
    checks.finish()?;
    if !caller.has(Role::Coordinator) && !member_id.is_empty() && !caller.is_of_member(&member_id) {
        // Like every list naming another member: ids cannot be probed.
        return Err(Problem::not_found(format!("member {member_id} not found")));
    }
    let location = format!("/v1/sessions/{session_id}/registrations");
    let request = pb::RegisterRequest { session_id, participants, member_id };
    let response = state.sessions().register(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(super::super::common::created(location, views::Registrations::from(response)))
}

/// A session's registrations: the member's users see their member's, the provider and the coordinator all.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/registrations",
    tag = "sessions",
    operation_id = "listSessionRegistrations",
    summary = "A session's registrations (member users: their member's; its provider_agent, coordinator: all)",
    description = "In arrival order. Another provider's session answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The session's id."), RegistrationParams),
    responses((status = 200, description = "A page of registrations.", body = Page<views::Registration>)),
    security(("bearerAuth" = []))
)]
pub async fn list_session_registrations(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    Q(params): Q<RegistrationParams>,
) -> Result<Json<Page<views::Registration>>, Problem> {
    caller.allow(READERS)?;
    let session_id = uuid_path("id", &id)?;
    registrations_page(&state, &caller, session_id, params).await
}

/// « Mes inscriptions »: the registrations of the caller's member, with their sessions.
#[utoipa::path(
    get,
    path = "/v1/registrations",
    tag = "sessions",
    operation_id = "listRegistrations",
    summary = "The member's registrations, with their sessions (member_admin, member_user)",
    description = "« Mes inscriptions »: every registration of the caller's member, soonest session first, each \
                   with its `session`.",
    params(RegistrationParams),
    responses((status = 200, description = "A page of registrations.", body = Page<views::Registration>)),
    security(("bearerAuth" = []))
)]
pub async fn list_registrations(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<RegistrationParams>,
) -> Result<Json<Page<views::Registration>>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    registrations_page(&state, &caller, String::new(), params).await
}

async fn registrations_page(
    state: &AppState,
    caller: &Authenticated,
    session_id: String,
    params: RegistrationParams,
) -> Result<Json<Page<views::Registration>>, Problem> {
    let mut checks = Checks::new();
    let statuses = registration_statuses(&mut checks, params.status);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::ListRegistrationsRequest { session_id, statuses, page_size, page_token };
    let response =
        state.sessions().list_registrations(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(Page::new(response.registrations, response.next_page_token)))
}

/// The member's users, the session's provider or the coordinator cancel a registration; a freed seat goes to the
/// first on the waiting list.
#[utoipa::path(
    post,
    path = "/v1/registrations/{id}/cancel",
    tag = "sessions",
    operation_id = "cancelRegistration",
    summary = "Cancel a registration (member users: their member's; the session's provider_agent; coordinator)",
    description = "A confirmed seat freed goes to the first on the waiting list, who is told by mail (events \
                   registration.cancelled, registration.promoted). The body, with an optional `reason`, may be \
                   omitted. Another member's registration answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The registration's id.")),
    request_body(content = Option<CancelRegistrationBody>, description = "Optional: no body, `null` or `{}` is no reason.", content_type = "application/json"),
    responses((status = 200, description = "Cancelled.", body = views::Registration)),
    security(("bearerAuth" = []))
)]
pub async fn cancel_registration(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<Option<CancelRegistrationBody>>, JsonRejection>,
) -> Result<Json<views::Registration>, Problem> {
    caller.allow(READERS)?;
    let id = uuid_path("id", &id)?;
    let body = match body {
        Ok(Json(body)) => body.unwrap_or_default(),
        Err(JsonRejection::MissingJsonContentType(_)) => CancelRegistrationBody::default(),
        Err(e) => return Err(json_problem(e)),
    };
    let mut checks = Checks::new();
    let reason = text(&mut checks, "reason", body.reason, MAX_REASON_CHARS, true);
    checks.finish()?;
    let request = pb::CancelRegistrationRequest { id, reason: reason.trim().to_owned() };
    let registration =
        state.sessions().cancel_registration(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(registration.into()))
}

/// 204 without a body.
pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
