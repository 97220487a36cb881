//! The documents of sessions: the attestation of a participant who came and the attendance sheet (PDF), the
//! iCalendar of a session and a user's feed (anonymous, by its secret token, so calendar applications can
//! subscribe), and the coordinator's fill rates.

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use id77_platform::auth::Role;
use id77_proto::catalogue::v1 as pb;

use super::input::*;
use super::registrations::no_content;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, P, Q};
use crate::problem::Problem;
use crate::routes::common::{upstream, upstream_public};
use crate::routes::conversation::content_disposition;
use crate::views;

/// The media type of every calendar answered.
pub const CALENDAR: &str = "text/calendar; charset=utf-8";
/// A calendar feed's answer: the URL is the credential, so no shared cache keeps it.
pub const FEED_CACHE_CONTROL: &str = "private, no-store";

// A downloaded document, as the OpenAPI document describes it (inlined in the answers).
/// A PDF or iCalendar document.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct SessionFileDoc(Vec<u8>);

/// A PDF answer to download: `attachment` with the service's file name.
fn pdf(document: pb::SessionDocument) -> Response {
    let disposition = HeaderValue::from_str(&content_disposition(&document.filename))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    (headers, document.content).into_response()
}

/// A calendar answer shown inline (`session-….ics`), with its strong ETag so subscribed applications revalidate.
fn calendar(document: pb::SessionDocument, cache_control: Option<&'static str>) -> Response {
    let inline = content_disposition(&document.filename).replacen("attachment", "inline", 1);
    let disposition = HeaderValue::from_str(&inline).unwrap_or_else(|_| HeaderValue::from_static("inline"));
    let etag = HeaderValue::from_str(&crate::caching::etag_of(&document.content)).ok();
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CALENDAR)), (header::CONTENT_DISPOSITION, disposition)],
        document.content,
    )
        .into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(value) = cache_control {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// A session's calendar is named `session-….ics` (the catalogue's name, e.g. the offer's code and the day, after it).
fn session_file(mut document: pb::SessionDocument) -> pb::SessionDocument {
    if !document.filename.starts_with("session-") {
        document.filename = format!("session-{}", document.filename);
    }
    document
}

/// The attestation of presence of a participant who came.
#[utoipa::path(
    get,
    path = "/v1/registrations/{id}/attestation",
    tag = "sessions",
    operation_id = "getAttestation",
    summary = "Attestation de présence of a participant who came, as PDF (member users: their member's; the session's provider_agent; coordinator)",
    description = "Only once attendance is recorded and the participant came. Another member's registration \
                   answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The registration's id.")),
    responses((status = 200, description = "An A4 PDF to download.", content((inline(SessionFileDoc) = "application/pdf")),
        headers(("Content-Disposition" = String, description = "`attachment; filename=\"<name>.pdf\"`.")))),
    security(("bearerAuth" = []))
)]
pub async fn attestation(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Coordinator])?;
    let registration_id = uuid_path("id", &id)?;
    let request = pb::GetAttestationRequest { registration_id };
    let document =
        state.sessions().get_attestation(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(pdf(document))
}

/// The sheet the participants sign.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/attendance-sheet",
    tag = "sessions",
    operation_id = "getAttendanceSheet",
    summary = "Attendance sheet to sign, as PDF (the session's provider_agent, coordinator)",
    description = "The confirmed participants, one line each, with a column for signatures. Another provider's \
                   session answers 404.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The session's id.")),
    responses((status = 200, description = "An A4 PDF to download.", content((inline(SessionFileDoc) = "application/pdf")),
        headers(("Content-Disposition" = String, description = "`attachment; filename=\"<name>.pdf\"`.")))),
    security(("bearerAuth" = []))
)]
pub async fn attendance_sheet(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::ProviderAgent, Role::Coordinator])?;
    let session_id = uuid_path("id", &id)?;
    let request = pb::GetAttendanceSheetRequest { session_id };
    let document =
        state.sessions().get_attendance_sheet(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(pdf(document))
}

/// One session as iCalendar (RFC 5545), times in Europe/Paris.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/calendar",
    tag = "sessions",
    operation_id = "getSessionCalendar",
    summary = "One session as iCalendar (public)",
    description = "RFC 5545, one VEVENT with its Europe/Paris VTIMEZONE; a cancelled session is `STATUS:CANCELLED`.",
    params(("id" = String, Path, format = "uuid", max_length = 36, description = "The session's id.")),
    responses((status = 200, description = "The session's calendar.", content((inline(SessionFileDoc) = "text/calendar")),
        headers(
            ("Content-Disposition" = String, description = "`inline; filename=\"session-<id>.ics\"`."),
            ("ETag" = String, description = "Strong tag of the calendar; send it back in `If-None-Match`."),
        ))),
    security(())
)]
pub async fn session_calendar(State(state): State<AppState>, P(id): P<String>) -> Result<Response, Problem> {
    let id = uuid_path("id", &id)?;
    let document = state
        .sessions()
        .get_session_calendar(pb::GetSessionRequest { id })
        .await
        .map_err(upstream_public("catalogue"))?
        .into_inner();
    Ok(calendar(session_file(document), None))
}

/// A user's calendar feed, by its secret token: no other credential, so calendar applications can subscribe.
#[utoipa::path(
    get,
    path = "/v1/calendar-feeds/{token}",
    tag = "sessions",
    operation_id = "getCalendarFeed",
    summary = "A user's calendar feed, by its secret token (anyone holding the token)",
    description = "RFC 5545: a member's user gets its member's confirmed registrations, a provider's agent its \
                   provider's scheduled sessions. The token is the credential: an unknown or revoked one \
                   answers 404; answers are `Cache-Control: private, no-store`.",
    params(("token" = String, Path, min_length = 16, max_length = 128, pattern = r"^[A-Za-z0-9_-]{16,128}$", description = "The feed's token, as issued by `POST /v1/me/calendar-feed`.")),
    responses((status = 200, description = "The user's calendar.", content((inline(SessionFileDoc) = "text/calendar")),
        headers(
            ("Content-Disposition" = String, description = "`inline; filename=\"<name>.ics\"`."),
            ("Cache-Control" = String, description = "`private, no-store`."),
            ("ETag" = String, description = "Strong tag of the calendar; send it back in `If-None-Match`."),
        ))),
    security(())
)]
pub async fn calendar_feed(State(state): State<AppState>, P(token): P<String>) -> Result<Response, Problem> {
    let well_formed =
        (16..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        let mut checks = Checks::new();
        checks.fail("token", "must be 16 to 128 characters of A-Z, a-z, 0-9, - and _");
        checks.finish()?;
    }
    let document = state
        .sessions()
        .get_calendar_feed(pb::GetCalendarFeedRequest { token })
        .await
        .map_err(upstream_public("catalogue"))?
        .into_inner();
    Ok(calendar(document, Some(FEED_CACHE_CONTROL)))
}

/// The base of the absolute URLs answered: `ID77_PUBLIC_URL`, else the request's `Host`, over https when a
/// trusted proxy says so.
fn base_url(state: &AppState, request: &Request) -> String {
    if let Some(base) = state.public_url() {
        return base.to_owned();
    }
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let https = crate::security::over_https(request.headers(), peer, state.trust_forwarded_for());
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// The caller's feed: a new token (the previous one stops working), shown once.
#[utoipa::path(
    post,
    path = "/v1/me/calendar-feed",
    tag = "sessions",
    operation_id = "issueCalendarFeed",
    summary = "Issue the caller's calendar feed URL (any signed-in user)",
    description = "A new secret token replaces the previous one, which stops working. The token and the URL are \
                   shown once (only a hash is kept): subscribe to `url` in a calendar application.",
    responses((status = 201, description = "The feed.", body = views::CalendarFeed,
        headers(("Cache-Control" = String, description = "`no-store`: the answer holds a credential.")))),
    security(("bearerAuth" = []))
)]
pub async fn issue_feed(
    State(state): State<AppState>,
    caller: Authenticated,
    request: Request,
) -> Result<Response, Problem> {
    let base = base_url(&state, &request);
    let feed = state
        .sessions()
        .issue_calendar_feed(caller.grpc(pb::IssueCalendarFeedRequest {}))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    let mut response = (StatusCode::CREATED, Json(views::CalendarFeed::new(feed, &base))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revokes the caller's feed (its URL then answers 404); nothing to revoke is not an error.
#[utoipa::path(
    delete,
    path = "/v1/me/calendar-feed",
    tag = "sessions",
    operation_id = "revokeCalendarFeed",
    summary = "Revoke the caller's calendar feed (any signed-in user)",
    responses((status = 204, description = "Revoked (or there was none).")),
    security(("bearerAuth" = []))
)]
pub async fn revoke_feed(State(state): State<AppState>, caller: Authenticated) -> Result<Response, Problem> {
    state
        .sessions()
        .revoke_calendar_feed(caller.grpc(pb::RevokeCalendarFeedRequest {}))
        .await
        .map_err(upstream("catalogue"))?;
    Ok(no_content())
}

/// Fill and attendance rates: overall, per offer, per EPCI.
#[utoipa::path(
    get,
    path = "/v1/session-statistics",
    tag = "sessions",
    operation_id = "sessionStatistics",
    summary = "Fill and attendance rates of sessions, overall, per offer and per EPCI (coordinator, operator)",
    description = "Sessions starting in [`from`, `to`) (both optional; `to` not before `from`), cancelled ones \
                   left out. Fill rate = `confirmed / seats`, attendance rate = `attended / confirmed`.",
    params(StatisticsParams),
    responses((status = 200, description = "The rates.", body = views::SessionStatistics)),
    security(("bearerAuth" = []))
)]
pub async fn statistics(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<StatisticsParams>,
) -> Result<Json<views::SessionStatistics>, Problem> {
    caller.allow(&[Role::Coordinator, Role::Operator])?;
    let mut checks = Checks::new();
    let from = instant(&mut checks, "from", params.from);
    let to = instant(&mut checks, "to", params.to);
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        checks.fail("to", "must not be before from");
    }
    checks.finish()?;
    let request = pb::SessionStatisticsRequest { from: proto_time(from), to: proto_time(to) };
    let response =
        state.sessions().session_statistics(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(response.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(filename: &str, content: &[u8]) -> pb::SessionDocument {
        pb::SessionDocument { filename: filename.into(), content_type: "whatever".into(), content: content.to_vec() }
    }

    #[test]
    fn pdfs_are_attachments_of_their_type_whatever_the_service_says() {
        let response = pdf(document("attestation-présence.pdf", b"%PDF-1.7"));
        let headers = response.headers();
        assert_eq!(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/pdf"));
        let disposition = headers.get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(disposition.starts_with("attachment; filename=\"attestation-pr_sence.pdf\""), "{disposition}");
    }

    #[test]
    fn calendars_are_inline_tagged_and_feeds_never_stored() {
        let response = calendar(document("session-1.ics", b"BEGIN:VCALENDAR"), Some(FEED_CACHE_CONTROL));
        let headers = response.headers();
        let get = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(get(header::CONTENT_TYPE), CALENDAR);
        assert!(get(header::CONTENT_DISPOSITION).starts_with("inline; filename=\"session-1.ics\""));
        assert_eq!(get(header::ETAG), crate::caching::etag_of(b"BEGIN:VCALENDAR"));
        assert_eq!(get(header::CACHE_CONTROL), "private, no-store");
        assert_eq!(session_file(document("atelier-2027-03-16.ics", b"")).filename, "session-atelier-2027-03-16.ics");
        assert_eq!(session_file(document("session-1.ics", b"")).filename, "session-1.ics");
        let response = calendar(document("session-1.ics", b"x"), None);
        assert!(response.headers().get(header::CACHE_CONTROL).is_none());
    }

    #[tokio::test]
    async fn absolute_urls_come_from_the_host_without_a_configured_base() {
        let mut config = crate::Config::with_all_upstreams("http://127.0.0.1:1");
        let state = crate::AppState::new(&config).unwrap_or_else(|e| panic!("{e}"));
        let request = |host: &str| {
            axum::http::Request::builder()
                .uri("/v1/me/calendar-feed")
                .header(header::HOST, host)
                .body(axum::body::Body::empty())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(base_url(&state, &request("api.id77.fr:8443")), "http://api.id77.fr:8443");
        assert_eq!(base_url(&state, &request("evil.fr/<script>")), "http://localhost");
        config.public_url = Some("https://api.id77.fr/base".into());
        let state = crate::AppState::new(&config).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(base_url(&state, &request("other:1")), "https://api.id77.fr/base");
    }
}
