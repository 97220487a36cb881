//! Sessions' documents: the attestation de présence and the attendance sheet (PDF), one session's calendar and
//! a user's subscribed calendar feed (RFC 5545), with its secret token (only its SHA-256 is kept).

use id77_platform::auth::{Caller, Denied};
use id77_platform::validate::uuid;
use id77_platform::{ServiceError, time};
use id77_proto::catalogue::v1 as pb;

use super::sessions::{SessionApi, session_or_not_found, shows_link};
use crate::access;
use crate::documents;
use crate::domain::calendar;
use crate::error::CatalogueError;
use crate::session_docs;
use crate::session_store as store;

const PDF: &str = "application/pdf";
const ICS: &str = "text/calendar; charset=utf-8";

fn document(filename: String, content_type: &str, content: Vec<u8>) -> pb::SessionDocument {
    pb::SessionDocument { filename, content_type: content_type.to_owned(), content }
}

impl SessionApi {
    pub(super) async fn attestation(
        &self,
        caller: Option<&Caller>,
        req: pb::GetAttestationRequest,
    ) -> Result<pb::SessionDocument, ServiceError> {
        let id = uuid("registration_id", &req.registration_id)?;
        let not_found = || ServiceError::from(CatalogueError::RegistrationNotFound(req.registration_id.clone()));
        let mut conn = self.pool.acquire().await?;
        let r = store::registration(&mut conn, id).await?.ok_or_else(not_found)?;
        let s = session_or_not_found(&mut conn, r.session_id, &r.session_id.to_string()).await?;
        access::registration(caller, &s.provider_code, r.member_id).map_err(|d| match d {
            Denied::NotFound => not_found(),
            d => d.into_error("registration", &req.registration_id),
        })?;
        if !(r.attended && r.status == "confirmed" && s.status == "held") {
            return Err(CatalogueError::NotAttended.into());
        }
        let pdf = documents::attestation_pdf(&session_docs::attestation(&s, &r, time::now()));
        Ok(document(format!("attestation-{}-{}.pdf", session_docs::file_stem(&s), r.id), PDF, pdf))
    }

    pub(super) async fn attendance_sheet(
        &self,
        caller: Option<&Caller>,
        req: pb::GetAttendanceSheetRequest,
    ) -> Result<pb::SessionDocument, ServiceError> {
        let id = uuid("session_id", &req.session_id)?;
        let mut conn = self.pool.acquire().await?;
        let s = session_or_not_found(&mut conn, id, &req.session_id).await?;
        access::manage_session(caller, &s.provider_code).map_err(|d| match d {
            Denied::NotFound => CatalogueError::SessionNotFound(req.session_id.clone()).into(),
            d => d.into_error("session", &req.session_id),
        })?;
        let confirmed = store::registrations_of_session(&mut conn, id, &["confirmed".to_owned()]).await?;
        let pdf = documents::attendance_sheet_pdf(&session_docs::attendance_sheet(&s, &confirmed));
        Ok(document(format!("emargement-{}.pdf", session_docs::file_stem(&s)), PDF, pdf))
    }

    pub(super) async fn session_calendar(
        &self,
        caller: Option<&Caller>,
        req: pb::GetSessionRequest,
    ) -> Result<pb::SessionDocument, ServiceError> {
        let id = uuid("id", &req.id)?;
        let mut conn = self.pool.acquire().await?;
        let s = session_or_not_found(&mut conn, id, &req.id).await?;
        let show = shows_link(&mut conn, caller, &s).await?;
        let ics = calendar::render(&s.offer_title, &[session_docs::calendar_event(&s, show)]);
        Ok(document(format!("{}.ics", session_docs::file_stem(&s)), ICS, ics.into_bytes()))
    }

    /// Anonymous: the token is the credential. A member's users get their member's confirmed registrations, a
    /// provider's agents their provider's sessions.
    pub(super) async fn calendar_feed(
        &self,
        req: pb::GetCalendarFeedRequest,
    ) -> Result<pb::SessionDocument, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let feed = match req.token.trim() {
            "" => None,
            token => store::feed_by_hash(&mut conn, &session_docs::token_hash(token)).await?,
        };
        let feed = feed.ok_or(CatalogueError::CalendarFeedNotFound)?;
        let sessions = match (feed.member_id, feed.provider_code.as_deref()) {
            (Some(member), _) => {
                let ids = store::member_calendar(&mut conn, member).await?;
                store::sessions_by_id(&mut conn, &ids).await?
            }
            (None, Some(provider)) => store::provider_calendar(&mut conn, provider).await?,
            (None, None) => Vec::new(),
        };
        let events: Vec<_> = sessions.iter().map(|s| session_docs::calendar_event(s, true)).collect();
        let ics = calendar::render("Mes sessions ID 77", &events);
        tracing::debug!(user = %feed.user_id, events = events.len(), "calendar feed read");
        Ok(document("id77-sessions.ics".to_owned(), ICS, ics.into_bytes()))
    }

    pub(super) async fn issue_feed(&self, caller: Option<&Caller>) -> Result<pb::CalendarFeed, ServiceError> {
        let caller = access::calendar_feed(caller).map_err(|d| d.into_error("calendar feed", ""))?;
        let token = session_docs::new_feed_token().map_err(|e| ServiceError::internal("drawing a feed token", e))?;
        let hash = session_docs::token_hash(&token);
        let mut conn = self.pool.acquire().await?;
        let member = caller.member_id.filter(|_| caller.roles.iter().any(|r| r.is_member_role()));
        let provider = caller.provider_code.as_deref().filter(|_| member.is_none());
        let issued_at = store::upsert_feed(&mut conn, caller.user_id, &hash, member, provider).await?;
        tracing::info!(user = %caller.user_id, "calendar feed issued");
        Ok(pb::CalendarFeed { token, issued_at: Some(time::to_proto(issued_at)) })
    }

    pub(super) async fn revoke_feed(
        &self,
        caller: Option<&Caller>,
    ) -> Result<pb::RevokeCalendarFeedResponse, ServiceError> {
        let caller = access::calendar_feed(caller).map_err(|d| d.into_error("calendar feed", ""))?;
        let mut conn = self.pool.acquire().await?;
        let revoked = store::revoke_feed(&mut conn, caller.user_id).await?;
        tracing::info!(user = %caller.user_id, revoked, "calendar feed revoked");
        Ok(pb::RevokeCalendarFeedResponse { revoked })
    }
}
