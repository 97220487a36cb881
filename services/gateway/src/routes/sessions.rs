//! Training and awareness sessions (issue 22), over the catalogue's `SessionService`: the sessions of an offer
//! and their seats, registrations with a waiting list, attendance, ratings, attestations, calendars and fill
//! rates. The gateway checks the role and the input's form; the catalogue decides on its rows (another member's
//! registration or another provider's session is a 404 there).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use id77_platform::auth::Role;
use id77_proto::catalogue::v1 as pb;

use super::common::{created, upstream, upstream_public};
use crate::AppState;
use crate::auth::{Authenticated, bearer_token};
use crate::extract::{Checks, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

mod documents;
mod input;
mod registrations;

pub use documents::*;
pub use input::*;
pub use registrations::*;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_offer_sessions,
        schedule,
        list_sessions,
        get_session,
        cancel_session,
        record_attendance,
        rate,
        registrations::register,
        registrations::list_session_registrations,
        registrations::list_registrations,
        registrations::cancel_registration,
        documents::attestation,
        documents::attendance_sheet,
        documents::session_calendar,
        documents::issue_feed,
        documents::revoke_feed,
        documents::calendar_feed,
        documents::statistics,
    ),
    components(schemas(
        views::Session,
        views::Place,
        views::Registration,
        views::Registrations,
        views::Participant,
        views::SessionRating,
        views::CalendarFeed,
        views::FillRate,
        views::SessionStatistics,
        views::SessionStatusDoc,
        views::RegistrationStatusDoc,
        PlaceBody,
        ScheduleBody,
        CancelSessionBody,
        CancelRegistrationBody,
        ParticipantBody,
        RegisterBody,
        AttendanceBody,
        RatingBody,
    )),
    modifiers(&SpecificErrors),
)]
pub struct Api;

/// The errors of this module's operations that their shape does not imply: (method, path, status, shared
/// answer, meaning).
const SPECIFIC_ERRORS: &[(&str, &str, &str, &str, &str)] = &[
    ("get", "/v1/sessions", "404", "NotFound", "No offer `offer`."),
    (
        "post",
        "/v1/offers/{id}/sessions",
        "409",
        "Conflict",
        "The offer is not an awareness or training offer (`not-a-training-offer`).",
    ),
    (
        "post",
        "/v1/sessions/{id}/cancel",
        "409",
        "Conflict",
        "The session is no longer scheduled (`session-not-scheduled`).",
    ),
    (
        "post",
        "/v1/sessions/{id}/registrations",
        "409",
        "Conflict",
        "`registration-closed` (deadline passed), `session-not-scheduled`, `quota-reached` (the member's quota), or \
         `already-registered` (a participant with this e-mail).",
    ),
    (
        "post",
        "/v1/registrations/{id}/cancel",
        "409",
        "Conflict",
        "Already cancelled, or the session is no longer scheduled.",
    ),
    (
        "post",
        "/v1/sessions/{id}/attendance",
        "409",
        "Conflict",
        "`session-not-started`, or the session is cancelled or already held (`session-not-scheduled`).",
    ),
    ("post", "/v1/sessions/{id}/rating", "409", "Conflict", "The member had no participant who came (`not-attended`)."),
    (
        "get",
        "/v1/registrations/{id}/attestation",
        "409",
        "Conflict",
        "The participant did not come, or attendance is not recorded yet (`not-attended`).",
    ),
];

/// Adds [`SPECIFIC_ERRORS`] to the operations.
struct SpecificErrors;

impl utoipa::Modify for SpecificErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        for (method, path, status, shared, meaning) in SPECIFIC_ERRORS {
            let Some(item) = doc.paths.paths.get_mut(*path) else { continue };
            let operation = if *method == "get" { item.get.as_mut() } else { item.post.as_mut() };
            let Some(operation) = operation else { continue };
            let mut answer = Ref::new(format!("#/components/responses/{shared}"));
            answer.description = (*meaning).to_owned();
            operation.responses.responses.insert((*status).to_owned(), RefOr::Ref(answer));
        }
    }
}

/// Who schedules, cancels and records attendance: the agents of the offer's provider and the coordinator.
const MANAGERS: &[Role] = &[Role::ProviderAgent, Role::Coordinator];

/// The caller of a public route, when it sent a token (then checked: a bad one is a 401, not ignored), so the
/// catalogue can show it more (another status, the online link).
async fn optional_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<Authenticated>, Problem> {
    match bearer_token(headers)? {
        None => Ok(None),
        Some(_) => Authenticated::from_headers(state, headers).await.map(Some),
    }
}

/// A gRPC request carrying the caller's token when there is one.
fn as_caller<T>(caller: Option<&Authenticated>, message: T) -> tonic::Request<T> {
    match caller {
        Some(caller) => caller.grpc(message),
        None => tonic::Request::new(message),
    }
}

/// The mapping of a failed call, with or without the caller's token.
fn failed(caller: Option<&Authenticated>) -> Box<dyn FnOnce(tonic::Status) -> Problem + Send> {
    if caller.is_some() { Box::new(upstream("catalogue")) } else { Box::new(upstream_public("catalogue")) }
}

/// A list of sessions, from the checked query.
fn list_request(
    offer_id: String,
    status: Option<String>,
    from: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
) -> Result<pb::ListSessionsRequest, Problem> {
    let mut checks = Checks::new();
    let statuses = session_statuses(&mut checks, status);
    let from = proto_time(instant(&mut checks, "from", from));
    let (page_size, page_token) = checks.page(limit.as_deref(), cursor);
    checks.finish()?;
    Ok(pb::ListSessionsRequest { offer_id, statuses, from, page_size, page_token })
}

async fn sessions_page(
    state: &AppState,
    caller: Option<&Authenticated>,
    request: pb::ListSessionsRequest,
) -> Result<Json<Page<views::Session>>, Problem> {
    let response =
        state.sessions().list_sessions(as_caller(caller, request)).await.map_err(failed(caller))?.into_inner();
    Ok(Json(Page::new(response.sessions, response.next_page_token)))
}

const OFFER_ID: &str = "The offer's id (UUID) or code.";

/// An offer's sessions: upcoming scheduled ones for anyone; the provider and the coordinator may ask for others.
#[utoipa::path(
    get,
    path = "/v1/offers/{id}/sessions",
    tag = "sessions",
    operation_id = "listOfferSessions",
    summary = "An offer's sessions with their seats left (public; any status: the offer's provider_agent, coordinator)",
    description = "Upcoming scheduled sessions, soonest first, with `seats_left`. With a token, the offer's \
                   provider and the coordinator may ask for other statuses (`status=cancelled,held`) and past \
                   sessions (`from`); the online link is shown to the participants' member, the provider and the \
                   coordinator only. An unknown offer answers 404.",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = OFFER_ID), OfferSessionParams),
    responses((status = 200, description = "A page of sessions.", body = Page<views::Session>)),
    security((), ("bearerAuth" = []))
)]
pub async fn list_offer_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<String>,
    Q(params): Q<OfferSessionParams>,
) -> Result<Json<Page<views::Session>>, Problem> {
    path_id("id", &id)?;
    let request = list_request(id, params.status, params.from, params.limit, params.cursor)?;
    let caller = optional_caller(&state, &headers).await?;
    sessions_page(&state, caller.as_ref(), request).await
}

/// Sessions across offers: upcoming scheduled ones for anyone, the agent's provider's, or all for the
/// coordinator.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "sessions",
    operation_id = "listSessions",
    summary = "Sessions (public: upcoming scheduled; provider_agent: its provider's; coordinator: all)",
    description = "Soonest first. Anonymous callers and members see upcoming scheduled sessions; a provider's \
                   agent sees its provider's sessions, the coordinator every session, in any status they ask for \
                   (`status=scheduled,held`).",
    params(SessionParams),
    responses((status = 200, description = "A page of sessions.", body = Page<views::Session>)),
    security((), ("bearerAuth" = []))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(params): Q<SessionParams>,
) -> Result<Json<Page<views::Session>>, Problem> {
    let mut checks = Checks::new();
    let offer = checks.filter("offer", params.offer, 64);
    checks.finish()?;
    let request = list_request(offer, params.status, params.from, params.limit, params.cursor)?;
    let caller = optional_caller(&state, &headers).await?;
    sessions_page(&state, caller.as_ref(), request).await
}

/// A provider's agent (its own offers) or the coordinator schedules a session.
#[utoipa::path(
    post,
    path = "/v1/offers/{id}/sessions",
    tag = "sessions",
    operation_id = "scheduleSession",
    summary = "Schedule a session of an awareness or training offer (the offer's provider_agent, coordinator)",
    description = "The start is in the future (at most two years ahead) and the end after it (at most 31 days \
                   later); the registration deadline (default: the start) is not after the start. In person (`place.online: false`) needs a commune of \
                   Seine-et-Marne (`77xxx`) and an address; online needs an https `online_link`. Another \
                   provider's offer answers 404.",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = OFFER_ID)),
    request_body = ScheduleBody,
    responses((status = 201, description = "Scheduled (event session.scheduled).", body = views::Session,
        headers(("Location" = String, description = "/v1/sessions/{id}")))),
    security(("bearerAuth" = []))
)]
pub async fn schedule(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ScheduleBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(MANAGERS)?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let request = schedule_request(id, body)?;
    let session =
        state.sessions().schedule_session(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(created(format!("/v1/sessions/{}", session.id), views::Session::from(session)))
}

fn schedule_request(offer_id: String, body: ScheduleBody) -> Result<pb::ScheduleSessionRequest, Problem> {
    let mut checks = Checks::new();
    let starts_at = required_instant(&mut checks, "starts_at", body.starts_at);
    let ends_at = required_instant(&mut checks, "ends_at", body.ends_at);
    let registration_deadline = instant(&mut checks, "registration_deadline", body.registration_deadline);
    let place = place(&mut checks, body.place);
    let capacity = body.capacity.unwrap_or(0);
    if !(1..=MAX_CAPACITY).contains(&capacity) {
        checks.fail("capacity", format!("is required, from 1 to {MAX_CAPACITY}"));
    }
    let member_quota = body.member_quota.unwrap_or(0);
    if member_quota > MAX_CAPACITY {
        checks.fail("member_quota", format!("must be at most {MAX_CAPACITY}"));
    }
    let price = body.price_per_participant_cents.unwrap_or(0);
    if !(0..=MAX_PRICE_CENTS).contains(&price) {
        checks.fail("price_per_participant_cents", format!("must be from 0 to {MAX_PRICE_CENTS}"));
    }
    let details = text(&mut checks, "details", body.details, MAX_DETAILS_CHARS, true);
    checks.finish()?;
    Ok(pb::ScheduleSessionRequest {
        offer_id,
        starts_at: proto_time(starts_at),
        ends_at: proto_time(ends_at),
        place: Some(place),
        capacity,
        member_quota,
        registration_deadline: proto_time(registration_deadline),
        price_per_participant_cents: price,
        details,
    })
}

const SESSION_ID: &str = "The session's id.";

/// One session; the online link only to its participants' member, its provider and the coordinator.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    tag = "sessions",
    operation_id = "getSession",
    summary = "One session (public; the online link: its participants' member, its provider_agent, coordinator)",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = SESSION_ID)),
    responses((status = 200, description = "The session.", body = views::Session)),
    security((), ("bearerAuth" = []))
)]
pub async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    P(id): P<String>,
) -> Result<Json<views::Session>, Problem> {
    let id = uuid_path("id", &id)?;
    let caller = optional_caller(&state, &headers).await?;
    let request = as_caller(caller.as_ref(), pb::GetSessionRequest { id });
    let session = state.sessions().get_session(request).await.map_err(failed(caller.as_ref()))?.into_inner();
    Ok(Json(session.into()))
}

/// The provider's agent or the coordinator cancels a scheduled session; every participant is told.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/cancel",
    tag = "sessions",
    operation_id = "cancelSession",
    summary = "Cancel a scheduled session (its provider_agent, coordinator)",
    description = "Every registration is cancelled and every participant gets a mail with the `reason` (event \
                   session.cancelled). Another provider's session answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = SESSION_ID)),
    request_body = CancelSessionBody,
    responses((status = 200, description = "Cancelled.", body = views::Session)),
    security(("bearerAuth" = []))
)]
pub async fn cancel_session(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<CancelSessionBody>, JsonRejection>,
) -> Result<Json<views::Session>, Problem> {
    caller.allow(MANAGERS)?;
    let id = uuid_path("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = required_text(&mut checks, "reason", body.reason, MAX_REASON_CHARS, true);
    checks.finish()?;
    let request = pb::CancelSessionRequest { id, reason: reason.trim().to_owned() };
    let session =
        state.sessions().cancel_session(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(session.into()))
}

/// The provider's agent or the coordinator records who came, once the session has started.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/attendance",
    tag = "sessions",
    operation_id = "recordAttendance",
    summary = "Record who came (its provider_agent, coordinator)",
    description = "Once the session has started: the confirmed registrations listed came, every other confirmed \
                   one did not. The session becomes held (event session.held; a priced session is invoiced per \
                   participant who came). Another provider's session answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = SESSION_ID)),
    request_body = AttendanceBody,
    responses((status = 200, description = "The session, held.", body = views::Session)),
    security(("bearerAuth" = []))
)]
pub async fn record_attendance(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<AttendanceBody>, JsonRejection>,
) -> Result<Json<views::Session>, Problem> {
    caller.allow(MANAGERS)?;
    let session_id = uuid_path("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let attended_registration_ids = registration_ids(&mut checks, body.attended_registration_ids);
    checks.finish()?;
    let request = pb::RecordAttendanceRequest { session_id, attended_registration_ids };
    let session =
        state.sessions().record_attendance(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(session.into()))
}

/// A member's user rates a held session its member attended (one rating per member, replaced when rated again).
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/rating",
    tag = "sessions",
    operation_id = "rateSession",
    summary = "Rate a held session the member attended (member_admin, member_user)",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = SESSION_ID)),
    request_body = RatingBody,
    responses((status = 200, description = "The member's rating.", body = views::SessionRating)),
    security(("bearerAuth" = []))
)]
pub async fn rate(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<RatingBody>, JsonRejection>,
) -> Result<Json<views::SessionRating>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    let session_id = uuid_path("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let score = body.score.unwrap_or(0);
    if !(1..=5).contains(&score) {
        checks.fail("score", "is required, from 1 to 5");
    }
    let comment = text(&mut checks, "comment", body.comment, MAX_COMMENT_CHARS, true);
    checks.finish()?;
    let request = pb::RateSessionRequest { session_id, score, comment: comment.trim().to_owned() };
    let rating = state.sessions().rate_session(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(rating.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> ScheduleBody {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_schedule_body_maps_to_the_request_with_instants_in_utc() {
        let request = schedule_request(
            "sensibilisation-urbanisme".into(),
            body(serde_json::json!({
                "starts_at": "2027-03-16T09:30:00+01:00", "ends_at": "2027-03-16T12:30:00+01:00",
                "place": {"online": false, "commune_insee": "77288", "address": "Hôtel du Département"},
                "capacity": 2.0, "member_quota": 1, "price_per_participant_cents": 4500, "details": "Programme\n- a"
            })),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(request.starts_at.map(|t| t.seconds), Some(1_805_185_800));
        assert_eq!((request.capacity, request.member_quota, request.price_per_participant_cents), (2, 1, 4500));
        assert_eq!(request.registration_deadline, None);
        assert_eq!(request.place.map(|p| p.commune_insee), Some("77288".into()));
    }

    #[test]
    fn a_schedule_body_reports_every_bad_field() {
        let problem = schedule_request(
            "x".into(),
            body(serde_json::json!({"starts_at": "2027-03-16", "capacity": 0, "price_per_participant_cents": -1})),
        )
        .err();
        let fields: Vec<_> = problem.map(|p| p.errors.into_iter().map(|e| e.field).collect()).unwrap_or_default();
        assert_eq!(fields, ["starts_at", "ends_at", "place", "capacity", "price_per_participant_cents"]);
    }

    #[test]
    fn a_place_must_be_an_object() {
        assert!(serde_json::from_value::<ScheduleBody>(serde_json::json!({"place": [true]})).is_err());
    }
}
