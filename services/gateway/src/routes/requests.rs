//! `/v1/requests`: a member's users submit, follow, cancel and rate their member's requests; a provider's agents
//! read the requests referred to them; referents read those of the members they follow; the coordinator reads,
//! cancels and closes any, lists the triage queue and places what is in it (`/v1/triage`), and reads the
//! statistics (`/v1/statistics/requests`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
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

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_COMMENT_CHARS: usize = 2000;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_DATE_CHARS: usize = 40;

#[derive(Debug, Deserialize)]
pub struct Dates {
    start_date: Option<String>,
    end_date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Site {
    address: Option<String>,
    commune_insee: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Submission {
    /// `offer` (default) or `orientation` (an open request: no offer_id).
    kind: Option<String>,
    offer_id: Option<String>,
    subject: Option<String>,
    description: Option<String>,
    /// Required for an exhibition_loan offer.
    dates: Option<Dates>,
    /// For an integrated_engineering offer (the commune defaults to the member's own).
    site: Option<Site>,
}

/// The optional `Idempotency-Key` header: visible ASCII, at most 128 characters; empty when absent.
pub fn idempotency_key(headers: &HeaderMap, checks: &mut Checks) -> String {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return String::new();
    };
    match value.to_str() {
        Ok(key) => {
            let key = key.trim();
            if key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
                checks.fail("Idempotency-Key", format!("must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"));
            }
            key.to_owned()
        }
        Err(_) => {
            checks.fail("Idempotency-Key", "must be visible ASCII");
            String::new()
        }
    }
}

/// A member's user submits a request; `member_id` is the caller's, never the body's.
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
    let request =
        state.requests().submit_request(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(created(format!("/v1/requests/{}", request.id), views::Request::from(request)))
}

/// The member's users, the provider it was referred to, the member's referent, the coordinator. Anyone else's
/// request is "not found", not "forbidden", so ids reveal nothing.
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

#[derive(Debug, Deserialize)]
pub struct ListParams {
    member_id: Option<String>,
    status: Option<String>,
    category: Option<String>,
    /// Submitted on or after (a date, or an RFC 3339 time).
    from: Option<String>,
    /// Submitted on or before this date (the whole day), or before this RFC 3339 time.
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
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
    let raw = raw.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty())?;
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

fn ts(at: Option<DateTime<Utc>>) -> Option<id77_proto::prost_types::Timestamp> {
    at.map(id77_platform::time::to_proto)
}

/// The dashboard query: whose requests (the service decides from the caller's token) and the filters.
fn list_request(caller: &Authenticated, params: ListParams) -> Result<pb::ListRequestsRequest, Problem> {
    let mut checks = Checks::new();
    let member_id = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let status = checks.choice("status", params.status.as_deref(), STATUSES, status_filter);
    let categories = spelled(Category::ALL, Category::as_str, ", ");
    let category = checks.choice("category", params.category.as_deref(), &categories, category_filter);
    let from = instant(&mut checks, "from", params.from, false);
    let to = instant(&mut checks, "to", params.to, true);
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        checks.fail("to", "must not be before from");
    }
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
    })
}

/// A member's users list their member's requests (another member's is "not found"); a referent those of the
/// members it follows (or one of them, `?member_id=`); a provider's agents those referred to their provider;
/// the coordinator all (or one member's). Filters: status, category, from/to (submission dates).
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
pub async fn summary(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<views::RequestSummary>, Problem> {
    caller.allow(LISTERS)?;
    let request = list_request(&caller, params)?;
    let summary =
        state.requests().summarize_requests(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(summary.into()))
}

#[derive(Debug, Deserialize)]
pub struct ReasonBody {
    reason: Option<String>,
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

#[derive(Debug, Deserialize)]
pub struct FeedbackBody {
    rating: Option<u32>,
    comment: Option<String>,
}

/// A member's user rates a completed request (1-5, a comment); again to revise it, until it is closed.
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

#[derive(Debug, Deserialize)]
pub struct PeriodParams {
    from: Option<String>,
    to: Option<String>,
}

/// The coordinator's statistics over the requests submitted in a period (`from` and `to` required; a date `to`
/// includes that day).
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

#[derive(Debug, Deserialize)]
pub struct TriageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

/// The coordinator's triage queue (routing's): open orientation requests and requests no provider was left for.
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

#[derive(Debug, Deserialize)]
pub struct AssignBody {
    offer_id: Option<String>,
    provider_code: Option<String>,
    note: Option<String>,
}

/// The coordinator places a triaged request: an offer (routed by the rules) and/or a provider (offered to it).
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
    let request = routing::AssignTriagedRequest { request_id, offer_id, provider_code, note };
    let referral =
        state.routing().assign_triaged(caller.grpc(request)).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(referral.into()))
}

/// Which notification mails a user gets.
#[derive(Debug, serde::Serialize)]
pub struct NotificationPreferences {
    status_changed: bool,
    message_posted: bool,
}

impl From<pb::NotificationPreferences> for NotificationPreferences {
    fn from(p: pb::NotificationPreferences) -> Self {
        Self { status_changed: p.status_changed, message_posted: p.message_posted }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferencesBody {
    status_changed: Option<bool>,
    message_posted: Option<bool>,
}

/// Any signed-in user reads its own notification preferences (every kind on until changed).
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
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn period_bounds_take_dates_or_times_and_a_date_end_includes_its_day() {
        let mut checks = Checks::new();
        let from = instant(&mut checks, "from", Some("2026-11-01".into()), false);
        let to = instant(&mut checks, "to", Some("2026-11-30".into()), true);
        let at = instant(&mut checks, "to", Some("2026-11-30T10:00:00+01:00".into()), true);
        assert!(checks.finish().is_ok());
        assert_eq!(from.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-01T00:00:00+00:00"));
        assert_eq!(to.map(|t| t.to_rfc3339()).as_deref(), Some("2026-12-01T00:00:00+00:00"));
        assert_eq!(at.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-30T09:00:00+00:00"));
        let mut checks = Checks::new();
        assert_eq!(instant(&mut checks, "from", Some("30/11/2026".into()), false), None);
        assert_eq!(instant(&mut checks, "from", None, false), None);
        assert_eq!(checks.finish().err().map(|p| p.errors.len()), Some(1));
    }

    #[test]
    fn filters_name_the_lifecycle_statuses_and_categories() {
        for name in STATUSES.split(", ") {
            assert!(status_filter(name).is_some(), "{name}");
        }
        assert_eq!(status_filter("open"), None);
        assert_eq!(category_filter("exhibition_loan"), Some("exhibition_loan"));
        assert_eq!(category_filter("expo"), None);
    }

    #[test]
    fn idempotency_keys_are_optional_and_bounded() {
        let mut headers = HeaderMap::new();
        let mut checks = Checks::new();
        assert_eq!(idempotency_key(&headers, &mut checks), "");
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123"));
        assert_eq!(idempotency_key(&headers, &mut checks), "abc-123");
        assert!(checks.finish().is_ok());

        let mut checks = Checks::new();
        if let Ok(long) = HeaderValue::from_str(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)) {
            headers.insert(IDEMPOTENCY_KEY, long);
        }
        idempotency_key(&headers, &mut checks);
        let problem = checks.finish().err();
        assert_eq!(problem.map(|p| p.errors[0].field.clone()).as_deref(), Some("Idempotency-Key"));

        let mut checks = Checks::new();
        if let Ok(binary) = HeaderValue::from_bytes(b"caf\xe9") {
            headers.insert(IDEMPOTENCY_KEY, binary);
        }
        idempotency_key(&headers, &mut checks);
        assert!(checks.finish().is_err());
    }
}
