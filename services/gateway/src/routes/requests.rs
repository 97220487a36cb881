//! `/v1/requests`: a member's users submit, follow, cancel and rate their member's requests; a provider's agents
//! read the requests referred to them; referents read those of the members they follow; the coordinator reads,
//! cancels and closes any, lists the triage queue and places what is in it (`/v1/triage`), and reads the
//! statistics (`/v1/statistics/requests`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use id77_platform::auth::Role;
use id77_proto::requests::v1 as pb;
use id77_proto::routing::v1 as routing;
use id77_proto::vocabulary::Category;
use serde::Deserialize;

use super::common::{created, same_member, upstream};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id, spelled};
use crate::problem::Problem;
use crate::views::{self, Page};

mod input;
pub use input::*;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        notification_preferences,
        update_notification_preferences,
        submit,
        list,
        summary,
        get,
        cancel,
        close,
        feedback,
        statistics,
        triage,
        assign_triaged,
    ),
    components(schemas(
        NotificationPreferences,
        NotificationPreferencesBody,
        Submission,
        Dates,
        Site,
        ReasonBody,
        FeedbackBody,
        AssignBody,
        views::Request,
        views::StatusChange,
        views::LoanDates,
        views::Site,
        views::Feedback,
        views::RequestSummary,
        views::RequestStatistics,
        views::KeyCount,
        views::DurationStats,
        views::Satisfaction,
        views::TriageItem,
        views::RequestStatusDoc,
        views::RequestKindDoc,
    )),
    modifiers(&PlainHeaders)
)]
pub struct Api;

/// What the annotations cannot say: an optional header is a string when present, never `null` (the annotations
/// make an `Option` nullable); the preferences update needs at least one property.
struct PlainHeaders;

impl utoipa::Modify for PlainHeaders {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let parameters = doc
            .paths
            .paths
            .get_mut("/v1/requests")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.parameters.as_mut());
        for parameter in parameters.into_iter().flatten() {
            if parameter.name == "Idempotency-Key" {
                let schema = ObjectBuilder::new().schema_type(Type::String).max_length(Some(MAX_IDEMPOTENCY_KEY_CHARS));
                parameter.schema = Some(schema.into());
            }
        }
        // At least one kind (the derive cannot say `minProperties` alone).
        let update = doc.components.as_mut().and_then(|c| c.schemas.get_mut("NotificationPreferencesUpdate"));
        if let Some(utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(update))) = update {
            update.min_properties = Some(1);
            update.max_properties = None;
        }
    }
}

/// A member's user submits a request; `member_id` is the caller's, never the body's.
#[utoipa::path(
    post,
    path = "/v1/requests",
    tag = "requests",
    operation_id = "submitRequest",
    summary = "Submit a request (member_admin, member_user)",
    description = "Only a member's users submit; the member is the caller's (never taken from the body). The \
        membership must be active (409 `member-not-active`); an unknown offer is 404.",
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 128, pattern = r"^[\x20-\x7E]*$",
            description = "Client-chosen key (at most 128 characters, visible ASCII): the same key with the same \
                body returns the same request instead of a second one, with `Idempotency-Replayed: true`; with a \
                different body 409 (`idempotency-key-reused`). Safe under concurrent retries."),
    ),
    request_body = Submission,
    responses(
        (status = 201, description = "Submitted (or, with a repeated Idempotency-Key, the request submitted the \
            first time, with the same status and body).", body = views::Request,
            headers(
                ("Location" = String, description = "/v1/requests/{id}"),
                ("Idempotency-Replayed" = String, description = "`true` when this answer replays the request a \
                    previous call with the same `Idempotency-Key` submitted; absent otherwise."),
            )),
        (status = 404, description = "No such offer.", body = crate::api_docs::ProblemDoc,
            content_type = "application/problem+json"),
        (status = 409, description = "`member-not-active`, or `idempotency-key-reused` (the key was used with \
            another body).", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Authenticated,
    headers: HeaderMap,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    let member_id = caller.own_member().ok_or_else(|| Problem::forbidden("only a member's users submit requests"))?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let orientation = match body.kind.as_deref().map(str::trim) {
        None | Some("" | "offer") => false,
        Some("orientation") => true,
        Some(_) => {
            checks.fail("kind", "must be offer or orientation");
            false
        }
    };
    let offer_id = if orientation {
        checks.optional("offer_id", body.offer_id, MAX_ID_CHARS)
    } else {
        checks.required("offer_id", body.offer_id, MAX_ID_CHARS)
    };
    let subject = checks.required("subject", body.subject, MAX_SUBJECT_CHARS);
    let description = if orientation {
        checks.required("description", body.description, MAX_DESCRIPTION_CHARS)
    } else {
        checks.optional("description", body.description, MAX_DESCRIPTION_CHARS)
    };
    let dates = body.dates.map(|d| pb::LoanDates {
        start_date: checks.required("dates.start_date", d.start_date, MAX_DATE_CHARS),
        end_date: checks.required("dates.end_date", d.end_date, MAX_DATE_CHARS),
    });
    let site = body.site.map(|s| pb::Site {
        address: checks.optional("site.address", s.address, MAX_ADDRESS_CHARS),
        commune_insee: checks.optional("site.commune_insee", s.commune_insee, MAX_ID_CHARS),
    });
    let idempotency_key = idempotency_key(&headers, &mut checks);
    checks.finish()?;
    let request = pb::SubmitRequestRequest {
        member_id: member_id.to_string(),
        offer_id: offer_id.trim().to_owned(),
        subject,
        description,
        idempotency_key,
        dates,
        site,
        orientation,
    };
    let answer = state.requests().submit_request(caller.grpc(request)).await.map_err(upstream("requests"))?;
    let replayed = answer.metadata().get(id77_proto::IDEMPOTENCY_REPLAYED_METADATA).is_some_and(|v| v == "true");
    let request = answer.into_inner();
    let mut response = created(format!("/v1/requests/{}", request.id), views::Request::from(request));
    if replayed {
        response.headers_mut().insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The member's users, the provider it was referred to, the member's referent, the coordinator. Anyone else's
/// request is "not found", not "forbidden", so ids reveal nothing.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}",
    tag = "requests",
    operation_id = "getRequest",
    summary = "One request (its member's users, the provider it was referred to, its referent, coordinator)",
    description = "Another member's or provider's request answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    responses((status = 200, description = "OK", body = views::Request)),
    security(("bearerAuth" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Request>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator])?;
    path_id("id", &id)?;
    let request = state
        .requests()
        .get_request(caller.grpc(pb::GetRequestRequest { id: id.clone() }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    // The referent's view is the service's to decide (it knows whom the referent follows).
    let visible = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&request.member_id)
        || caller.is_agent_of(&request.provider_code);
    if !visible {
        return Err(Problem::not_found(format!("request {id} not found")));
    }
    Ok(Json(request.into()))
}

impl From<SummaryParams> for ListParams {
    fn from(p: SummaryParams) -> Self {
        Self {
            member_id: p.member_id,
            status: p.status,
            category: p.category,
            from: p.from,
            to: p.to,
            ..Self::default()
        }
    }
}

const LISTERS: &[Role] = &[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];
const STATUSES: &str = "submitted, triage, referred, accepted, in_progress, completed, closed, declined, cancelled";

fn status_filter(s: &str) -> Option<pb::RequestStatus> {
    Some(match s {
        "submitted" => pb::RequestStatus::Submitted,
        "triage" => pb::RequestStatus::Triage,
        "referred" => pb::RequestStatus::Referred,
        "accepted" => pb::RequestStatus::Accepted,
        "in_progress" => pb::RequestStatus::InProgress,
        "completed" => pb::RequestStatus::Completed,
        "closed" => pb::RequestStatus::Closed,
        "declined" => pb::RequestStatus::Declined,
        "cancelled" => pb::RequestStatus::Cancelled,
        _ => return None,
    })
}

/// An offer's family, as the requests service stores it.
fn category_filter(s: &str) -> Option<&'static str> {
    Category::parse(s).map(Category::as_str)
}

/// A bound of a period: a date (its first instant, or with `end` the first instant of the next day, so the day
/// is included) or an RFC 3339 time.
pub fn instant(checks: &mut Checks, field: &str, raw: Option<String>, end: bool) -> Option<DateTime<Utc>> {
    let raw = raw?.trim().to_owned();
    if raw.is_empty() {
        // `?to=` is not "no bound": a parameter is left out, not given empty (the document's pattern says so).
        checks.fail(field, "must not be empty (leave the parameter out)");
        return None;
    }
    if raw.len() > MAX_DATE_CHARS {
        checks.fail(field, format!("must be at most {MAX_DATE_CHARS} characters"));
        return None;
    }
    if let Ok(day) = NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        let day = if end { day.succ_opt()? } else { day };
        return day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    match DateTime::parse_from_rfc3339(&raw) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            checks.fail(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time");
            None
        }
    }
}

/// Whether the period's end is before its start: a time `to` before `from`, or a date `to` whose whole day is
/// (`to_start` is the bound read as a start, `to` as an end: they differ for a date).
fn before(from: Option<DateTime<Utc>>, to_start: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    match (from, to_start, to) {
        (Some(from), Some(start), Some(end)) if start != end => end <= from,
        (Some(from), _, Some(end)) => end < from,
        _ => false,
    }
}

fn ts(at: Option<DateTime<Utc>>) -> Option<id77_proto::prost_types::Timestamp> {
    at.map(id77_platform::time::to_proto)
}

/// The dashboard query: whose requests (the service decides from the caller's token) and the filters.
fn list_request(caller: &Authenticated, params: ListParams) -> Result<pb::ListRequestsRequest, Problem> {
    let mut checks = Checks::new();
    // A member's id is a UUID: an empty or malformed one names no member (absent means "every one I may see").
    let member_id = match params.member_id.as_deref().map(str::trim) {
        None => String::new(),
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.to_owned(),
        Some(_) => {
            checks.fail("member_id", "must be a member's id (a UUID); leave it out for every member");
            String::new()
        }
    };
    let status = checks.choice("status", params.status.as_deref(), STATUSES, status_filter);
    let categories = spelled(Category::ALL, Category::as_str, ", ");
    let category = checks.choice("category", params.category.as_deref(), &categories, category_filter);
    let from = instant(&mut checks, "from", params.from, false);
    let to_start = instant(&mut Checks::new(), "to", params.to.clone(), false);
    let to = instant(&mut checks, "to", params.to, true);
    if before(from, to_start, to) {
        checks.fail("to", "must not be before from");
    }
    let updated_since = updated_since(&mut checks, params.updated_since);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    // A member's users asking for another member (or acting for no member): not found, before asking the service.
    // Provider agents see the requests referred to them, never a member's list.
    let allowed = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || match caller.own_member() {
            Some(own) => member_id.is_empty() || same_member(&member_id, own),
            None => member_id.is_empty() && caller.own_provider().is_some(),
        }
        || (member_id.is_empty() && caller.own_provider().is_some());
    if !allowed {
        return Err(Problem::not_found(format!("member {member_id} not found")));
    }
    Ok(pb::ListRequestsRequest {
        member_id,
        page_size,
        page_token,
        status: status.map_or(0, i32::from),
        offer_category: category.unwrap_or_default().to_owned(),
        submitted_from: ts(from),
        submitted_to: ts(to),
        updated_since,
    })
}

/// A member's users list their member's requests (another member's is "not found"); a referent those of the
/// members it follows (or one of them, `?member_id=`); a provider's agents those referred to their provider;
/// the coordinator all (or one member's). Filters: status, category, from/to (submission dates).
#[utoipa::path(
    get,
    path = "/v1/requests",
    tag = "requests",
    operation_id = "listRequests",
    summary = "List requests (member users: their member's; referent: the members it follows; provider agents: \
        those referred to their provider; coordinator: all)",
    description = "Dashboard: filters by status, offer category and submission dates; cursor pagination, newest \
        first. A member's users asking for another member get 404. Unknown parameters are refused (400).",
    params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<views::Request>),
        (status = 404, description = "A member the caller may not list (member users: another member).",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Request>>, Problem> {
    caller.allow(LISTERS)?;
    let request = list_request(&caller, params)?;
    let response =
        state.requests().list_requests(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(Page::new(response.requests, response.next_page_token)))
}

/// Counts by status of what `GET /v1/requests` would list with the same filters (the status filter aside).
#[utoipa::path(
    get,
    path = "/v1/requests/summary",
    tag = "requests",
    operation_id = "summarizeRequests",
    summary = "Counts by status of the requests the caller may list",
    description = "Same scope and filters as `GET /v1/requests` (the status filter aside). Unknown parameters \
        (paging included) are refused (400).",
    params(SummaryParams),
    responses(
        (status = 200, description = "OK", body = views::RequestSummary),
        (status = 404, description = "A member the caller may not list (member users: another member).",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn summary(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<SummaryParams>,
) -> Result<Json<views::RequestSummary>, Problem> {
    caller.allow(LISTERS)?;
    let request = list_request(&caller, params.into())?;
    let summary =
        state.requests().summarize_requests(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(summary.into()))
}

fn reason(body: Result<Json<ReasonBody>, JsonRejection>) -> Result<String, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.optional("reason", body.reason, MAX_REASON_CHARS);
    checks.finish()?;
    Ok(reason)
}

/// The member's users (their member's request) or the coordinator cancel a request before its completion;
/// routing withdraws the referral and tells the provider.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/cancel",
    tag = "requests",
    operation_id = "cancelRequest",
    summary = "Cancel a request before its completion (its member's users, coordinator)",
    description = "Emits `request.cancelled`; routing withdraws the open referral and tells the provider. A \
        completed, closed or already cancelled request answers 409 (`invalid-transition`).",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "OK", body = views::Request),
        (status = 409, description = "`invalid-transition`: completed, closed or already cancelled.",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Json<views::Request>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::Coordinator])?;
    path_id("id", &id)?;
    let reason = reason(body)?;
    let request = state
        .requests()
        .cancel_request(caller.grpc(pb::CancelRequestRequest { id, reason }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(request.into()))
}

/// The coordinator closes a completed request.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/close",
    tag = "requests",
    operation_id = "closeRequest",
    summary = "Close a completed request (coordinator)",
    description = "Closed is final; feedback can no longer change. Any other status answers 409 \
        (`invalid-transition`).",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "OK", body = views::Request),
        (status = 409, description = "`invalid-transition`: the request is not completed.",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn close(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Json<views::Request>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let reason = reason(body)?;
    let request = state
        .requests()
        .close_request(caller.grpc(pb::CloseRequestRequest { id, reason }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(request.into()))
}

/// A member's user rates a completed request (1-5, a comment); again to revise it, until it is closed.
#[utoipa::path(
    put,
    path = "/v1/requests/{id}/feedback",
    tag = "requests",
    operation_id = "giveFeedback",
    summary = "Rate a completed request (its member's users)",
    description = "1 to 5 and a comment; may be revised until the coordinator closes the request (then 409 \
        `feedback-not-open`).",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body = FeedbackBody,
    responses(
        (status = 200, description = "OK", body = views::Request),
        (status = 409, description = "`feedback-not-open`: not completed, or already closed.",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn feedback(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<FeedbackBody>, JsonRejection>,
) -> Result<Json<views::Request>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let rating = match body.rating {
        Some(r) if (1..=5).contains(&r) => r,
        _ => {
            checks.fail("rating", "must be an integer from 1 to 5");
            0
        }
    };
    let comment = checks.optional("comment", body.comment, MAX_COMMENT_CHARS);
    checks.finish()?;
    let request = state
        .requests()
        .give_feedback(caller.grpc(pb::GiveFeedbackRequest { request_id: id, rating, comment }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(request.into()))
}

/// The coordinator's statistics over the requests submitted in a period (`from` and `to` required; a date `to`
/// includes that day).
#[utoipa::path(
    get,
    path = "/v1/statistics/requests",
    tag = "requests",
    operation_id = "requestStatistics",
    summary = "Statistics of the requests submitted in a period (coordinator)",
    description = "Counts by status, offer category, provider, EPCI and arrondissement; median time to the first \
        answer and to completion; satisfaction (mean, count, distribution). `from` and `to` are required, and `to` \
        must not be before `from` nor equal to it: the period [from, to) is not empty (a date `to` includes its \
        day, so `from=2026-01-31&to=2026-01-31` is that day); otherwise 400 naming `to`.",
    params(PeriodParams),
    responses((status = 200, description = "OK", body = views::RequestStatistics)),
    security(("bearerAuth" = [])),
)]
pub async fn statistics(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<PeriodParams>,
) -> Result<Json<views::RequestStatistics>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let mut checks = Checks::new();
    let from = instant(&mut checks, "from", params.from, false);
    let to = instant(&mut checks, "to", params.to, true);
    match (from, to) {
        // The service counts over [from, to): not empty (a date `to` includes its day).
        (Some(from), Some(to)) if to <= from => checks.fail("to", "must be after from"),
        (None, _) => checks.fail("from", "is required (YYYY-MM-DD or RFC 3339)"),
        (_, None) => checks.fail("to", "is required (YYYY-MM-DD or RFC 3339)"),
        _ => {}
    }
    checks.finish()?;
    let request = pb::RequestStatisticsRequest { from: ts(from), to: ts(to) };
    let stats =
        state.requests().get_request_statistics(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(stats.into()))
}

/// The coordinator's triage queue (routing's): open orientation requests and requests no provider was left for.
#[utoipa::path(
    get,
    path = "/v1/triage",
    tag = "requests",
    operation_id = "listTriage",
    summary = "The coordinator's triage queue (coordinator)",
    description = "Open orientation requests, and requests no provider was left for (all declined or expired) or \
        whose referral the coordinator withdrew; oldest first.",
    params(TriageParams),
    responses((status = 200, description = "OK", body = Page<views::TriageItem>)),
    security(("bearerAuth" = [])),
)]
pub async fn triage(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<TriageParams>,
) -> Result<Json<Page<views::TriageItem>>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let mut checks = Checks::new();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let response = state
        .routing()
        .list_triage(caller.grpc(routing::ListTriageRequest { page_size, page_token }))
        .await
        .map_err(upstream("routing"))?
        .into_inner();
    Ok(Json(Page::new(response.items, response.next_page_token)))
}

/// The coordinator places a triaged request: an offer (routed by the rules) and/or a provider (offered to it).
#[utoipa::path(
    post,
    path = "/v1/triage/{request_id}/assign",
    tag = "requests",
    operation_id = "assignTriaged",
    summary = "Place a triaged request (coordinator)",
    description = "With an offer (required for an open request; routed by the rules unless a provider is named) \
        and/or a provider (offered to it directly); at least one of `offer_id`, `provider_code`. The request leaves \
        the queue; its status follows routing's events. No such request, offer or provider: 404; a request no \
        longer in the queue (already placed, cancelled...): 409 `invalid-transition`.",
    params(("request_id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body = AssignBody,
    responses(
        (status = 200, description = "OK", body = views::Referral),
        (status = 409, description = "`invalid-transition`: the request is not (any more) in the triage queue; \
            `referral-state`: it is already with a provider, or no provider is left for the offer (name one).",
            body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn assign_triaged(
    State(state): State<AppState>,
    caller: Authenticated,
    P(request_id): P<String>,
    body: Result<Json<AssignBody>, JsonRejection>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("request_id", &request_id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let offer_id = checks.optional("offer_id", body.offer_id, MAX_ID_CHARS).trim().to_owned();
    let provider_code = checks.optional("provider_code", body.provider_code, MAX_ID_CHARS).trim().to_owned();
    let note = checks.optional("note", body.note, MAX_REASON_CHARS);
    if offer_id.is_empty() && provider_code.is_empty() {
        checks.fail("offer_id", "an offer_id or a provider_code is required");
    }
    checks.finish()?;
    let request = routing::AssignTriagedRequest { request_id: request_id.clone(), offer_id, provider_code, note };
    let refusal = match state.routing().assign_triaged(caller.grpc(request)).await {
        Ok(referral) => return Ok(Json(referral.into_inner().into())),
        Err(status) => upstream("routing")(status),
    };
    Err(not_in_triage(&state, &caller, &request_id, refusal).await)
}

/// Routing answers "not found" for a request that is not in its triage queue, whether the request does not
/// exist or was already placed (or cancelled): the requests service tells which, so a request that exists is a
/// conflict with its state rather than a missing resource.
async fn not_in_triage(state: &AppState, caller: &Authenticated, request_id: &str, refusal: Problem) -> Problem {
    if refusal.status != axum::http::StatusCode::NOT_FOUND || !refusal.detail.contains("triage queue") {
        return refusal;
    }
    let lookup = pb::GetRequestRequest { id: request_id.to_owned() };
    match state.requests().get_request(caller.grpc(lookup)).await {
        Ok(request) => {
            let status = views::request_status(request.into_inner().status);
            Problem::of(
                id77_platform::ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                format!("request {request_id} is not in the triage queue (it is {status})"),
            )
        }
        Err(_) => refusal,
    }
}

/// Which notification mails a user gets.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NotificationPreferences {
    /// A mail when one of the member's requests changes status (member's users).
    status_changed: bool,
    /// A mail when a message is posted on a thread the user takes part in.
    message_posted: bool,
}

impl From<pb::NotificationPreferences> for NotificationPreferences {
    fn from(p: pb::NotificationPreferences) -> Self {
        Self { status_changed: p.status_changed, message_posted: p.message_posted }
    }
}

/// The kinds to change (at least one; `true` or `false`, never `null`); a kind left out keeps its value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NotificationPreferencesUpdate)]
pub struct NotificationPreferencesBody {
    #[serde(default, deserialize_with = "boolean")]
    #[schema(value_type = bool, required = false)]
    status_changed: Option<bool>,
    #[serde(default, deserialize_with = "boolean")]
    #[schema(value_type = bool, required = false)]
    message_posted: Option<bool>,
}

/// A present field must be a boolean (`null` is refused, not taken for "left out").
fn boolean<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    bool::deserialize(deserializer).map(Some)
}

/// Any signed-in user reads its own notification preferences (every kind on until changed).
#[utoipa::path(
    get,
    path = "/v1/me/notification-preferences",
    tag = "auth",
    operation_id = "getNotificationPreferences",
    summary = "The caller's own notification mail preferences (any authenticated caller)",
    description = "Every kind is on until the user turns it off. Live updates (`/v1/events`) are not affected.",
    responses((status = 200, description = "OK", body = NotificationPreferences)),
    security(("bearerAuth" = [])),
)]
pub async fn notification_preferences(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<NotificationPreferences>, Problem> {
    let preferences = state
        .requests()
        .get_notification_preferences(caller.grpc(pb::GetNotificationPreferencesRequest {}))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(preferences.into()))
}

/// Any signed-in user changes its own notification preferences; a kind left out keeps its value.
#[utoipa::path(
    put,
    path = "/v1/me/notification-preferences",
    tag = "auth",
    operation_id = "updateNotificationPreferences",
    summary = "Change the caller's own notification mail preferences (any authenticated caller)",
    description = "A kind left out keeps its value; at least one must be given, as `true` or `false` (`null` and \
        unknown fields are refused with 400). Status mails go to the member's users; message mails to the other \
        side of the thread.",
    request_body = NotificationPreferencesBody,
    responses((status = 200, description = "OK", body = NotificationPreferences)),
    security(("bearerAuth" = [])),
)]
pub async fn update_notification_preferences(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<NotificationPreferencesBody>, JsonRejection>,
) -> Result<Json<NotificationPreferences>, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    if body.status_changed.is_none() && body.message_posted.is_none() {
        return Err(Problem::bad_request(
            "INVALID_BODY",
            "give at least one of status_changed, message_posted (true or false)",
        ));
    }
    let preferences = state
        .requests()
        .update_notification_preferences(caller.grpc(pb::UpdateNotificationPreferencesRequest {
            status_changed: body.status_changed,
            message_posted: body.message_posted,
        }))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(preferences.into()))
}

#[cfg(test)]
mod tests;
