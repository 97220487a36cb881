//! Sessions and registrations: each handler reads the request ([`crate::proto_map_sessions`]), asks the access
//! rules, calls the flow (writes) or the store (reads), and maps the answer back. Documents and calendars are in
//! [`super::session_documents`].

use chrono::{DateTime, Utc};
use id77_platform::auth::{Caller, Denied};
use id77_platform::validate::uuid;
use id77_platform::{ServiceError, page, time};
use id77_proto::catalogue::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access::{self, LinkView, RegistrationsScope, SessionsScope};
use crate::error::CatalogueError;
use crate::flow::{registrations, sessions as flow};
use crate::proto_map::{action_reason, offer_key, optional_uuid};
use crate::proto_map_sessions::{self as map, registration_to_proto, session_to_proto};
use crate::session_store::{self as store, RegistrationFilter, SessionFilter, SessionRow};

/// The SessionService: sessions of awareness and training offers, registrations, attendance, documents.
pub struct SessionApi {
    pub(super) pool: PgPool,
}

impl SessionApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Whether the caller sees the session's online link.
pub(super) async fn shows_link(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    s: &SessionRow,
) -> Result<bool, ServiceError> {
    Ok(match access::online_link(caller, &s.provider_code) {
        LinkView::Shown => true,
        LinkView::Hidden => false,
        LinkView::IfRegistered(member) => s.online && store::member_registered(conn, s.id, member).await?,
    })
}

pub(super) async fn session_or_not_found(
    conn: &mut PgConnection,
    id: Uuid,
    written: &str,
) -> Result<SessionRow, ServiceError> {
    store::session(conn, id).await?.ok_or_else(|| CatalogueError::SessionNotFound(written.to_owned()).into())
}

/// Whose registrations the caller lists: `Some(member)` for a member's users, `None` (the whole session) for
/// its provider and the coordinator, who must name one.
fn registrations_member(
    caller: Option<&Caller>,
    session: Option<&SessionRow>,
    written: &str,
) -> Result<Option<Uuid>, ServiceError> {
    let scope = access::list_registrations(caller, session.map(|s| s.provider_code.as_str())).map_err(|d| match d {
        Denied::NotFound => CatalogueError::SessionNotFound(written.to_owned()).into(),
        d => d.into_error("session", written),
    })?;
    match scope {
        RegistrationsScope::Member(m) => Ok(Some(m)),
        RegistrationsScope::Session => Ok(None),
        RegistrationsScope::NeedsSession => Err(ServiceError::invalid("session_id", "is required for this caller")),
    }
}

/// Who listed sessions, where the listing starts.
fn session_filter(
    scope: &SessionsScope,
    req: &pb::ListSessionsRequest,
    offer: Option<Uuid>,
) -> Result<SessionFilter, ServiceError> {
    let after: Option<(i64, Uuid)> = page::decode(&req.page_token)?;
    let after = after.and_then(|(micros, id)| DateTime::<Utc>::from_timestamp_micros(micros).map(|t| (t, id)));
    let mut statuses = map::session_statuses(&req.statuses)?;
    let mut from = map::instant("from", req.from.as_ref())?;
    let provider_code = match scope {
        SessionsScope::Public => {
            statuses = vec!["scheduled".to_owned()];
            from = Some(from.map_or_else(time::now, |f| f.max(time::now())));
            None
        }
        SessionsScope::Provider(code) => Some(code.clone()),
        SessionsScope::All => None,
    };
    if statuses.is_empty() {
        statuses.push("scheduled".to_owned());
        from = Some(from.unwrap_or_else(time::now));
    }
    Ok(SessionFilter { offer_id: offer, provider_code, statuses, from, after, limit: page::size(req.page_size) })
}

impl SessionApi {
    pub(super) async fn schedule(
        &self,
        caller: Option<&Caller>,
        req: pb::ScheduleSessionRequest,
    ) -> Result<pb::Session, ServiceError> {
        let offer = offer_key("offer_id", &req.offer_id)?;
        let input = map::session_input(&req)?;
        let s = flow::schedule(&self.pool, flow::ScheduledBy::Caller(caller), &offer, &input).await?;
        Ok(session_to_proto(&s, true))
    }

    pub(super) async fn cancel(
        &self,
        caller: Option<&Caller>,
        req: pb::CancelSessionRequest,
    ) -> Result<pb::Session, ServiceError> {
        let id = uuid("id", &req.id)?;
        let reason = action_reason(&req.reason)?;
        let s = flow::cancel(&self.pool, caller, id, &req.id, reason).await?;
        Ok(session_to_proto(&s, true))
    }

    pub(super) async fn get(
        &self,
        caller: Option<&Caller>,
        req: pb::GetSessionRequest,
    ) -> Result<pb::Session, ServiceError> {
        let id = uuid("id", &req.id)?;
        let mut conn = self.pool.acquire().await?;
        let s = session_or_not_found(&mut conn, id, &req.id).await?;
        let show = shows_link(&mut conn, caller, &s).await?;
        Ok(session_to_proto(&s, show))
    }

    pub(super) async fn list(
        &self,
        caller: Option<&Caller>,
        req: pb::ListSessionsRequest,
    ) -> Result<pb::ListSessionsResponse, ServiceError> {
        let offer = match req.offer_id.trim() {
            "" => None,
            raw => {
                let key = offer_key("offer_id", raw)?;
                let row = crate::store::offer_by_key(&self.pool, key.id, &key.code).await?;
                let row = row.filter(|o| o.status != "draft").ok_or(CatalogueError::OfferNotFound(key.written))?;
                Some((row.id, row.provider_code))
            }
        };
        let scope = access::list_sessions(caller, offer.as_ref().map(|o| o.1.as_str()));
        let filter = session_filter(&scope, &req, offer.map(|o| o.0))?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_sessions(&mut conn, &filter).await?;
        let (rows, next) = page::split(rows, filter.limit, |s| page::encode(&(s.starts_at.timestamp_micros(), s.id)));
        let mut sessions = Vec::with_capacity(rows.len());
        for s in &rows {
            let show = shows_link(&mut conn, caller, s).await?;
            sessions.push(session_to_proto(s, show));
        }
        Ok(pb::ListSessionsResponse { sessions, next_page_token: next })
    }

    pub(super) async fn register(
        &self,
        caller: Option<&Caller>,
        req: pb::RegisterRequest,
    ) -> Result<pb::RegisterResponse, ServiceError> {
        let session_id = uuid("session_id", &req.session_id)?;
        let asked = optional_uuid("member_id", &req.member_id)?;
        let member_id = access::register_for(caller, asked).map_err(|d| d.into_error("member", &req.member_id))?;
        let caller = caller.ok_or_else(id77_platform::auth::forbidden)?;
        let participants = map::participants(&req.participants);
        let rows =
            registrations::register(&self.pool, caller, session_id, &req.session_id, member_id, &participants).await?;
        Ok(pb::RegisterResponse { registrations: rows.iter().map(|r| registration_to_proto(r, None)).collect() })
    }

    pub(super) async fn cancel_registration(
        &self,
        caller: Option<&Caller>,
        req: pb::CancelRegistrationRequest,
    ) -> Result<pb::Registration, ServiceError> {
        let id = uuid("id", &req.id)?;
        let reason = action_reason(&req.reason)?;
        let r = registrations::cancel(&self.pool, caller, id, &req.id, reason).await?;
        Ok(registration_to_proto(&r, None))
    }

    pub(super) async fn list_registrations(
        &self,
        caller: Option<&Caller>,
        req: pb::ListRegistrationsRequest,
    ) -> Result<pb::ListRegistrationsResponse, ServiceError> {
        let session_id = optional_uuid("session_id", &req.session_id)?;
        let mut conn = self.pool.acquire().await?;
        let session = match session_id {
            Some(id) => Some(session_or_not_found(&mut conn, id, &req.session_id).await?),
            None => None,
        };
        let member_id = registrations_member(caller, session.as_ref(), &req.session_id)?;
        let after: Option<i64> = page::decode(&req.page_token)?;
        let filter = RegistrationFilter {
            session_id,
            member_id,
            statuses: map::registration_statuses(&req.statuses)?,
            after,
            limit: page::size(req.page_size),
        };
        let rows = store::list_registrations(&mut conn, &filter).await?;
        let (rows, next) = page::split(rows, filter.limit, |r| page::encode(&r.arrival));
        let mut out = Vec::with_capacity(rows.len());
        let mut sessions = std::collections::HashMap::new();
        for r in &rows {
            if member_id.is_some() && !sessions.contains_key(&r.session_id) {
                let s = flow::reload(&mut conn, r.session_id).await?;
                let show = shows_link(&mut conn, caller, &s).await?;
                sessions.insert(r.session_id, session_to_proto(&s, show));
            }
            out.push(registration_to_proto(r, sessions.get(&r.session_id).cloned()));
        }
        Ok(pb::ListRegistrationsResponse { registrations: out, next_page_token: next })
    }

    pub(super) async fn record_attendance(
        &self,
        caller: Option<&Caller>,
        req: pb::RecordAttendanceRequest,
    ) -> Result<pb::Session, ServiceError> {
        let id = uuid("session_id", &req.session_id)?;
        let attended = map::uuids("attended_registration_ids", &req.attended_registration_ids)?;
        let s = flow::record_attendance(&self.pool, caller, id, &req.session_id, &attended).await?;
        Ok(session_to_proto(&s, true))
    }

    pub(super) async fn rate(
        &self,
        caller: Option<&Caller>,
        req: pb::RateSessionRequest,
    ) -> Result<pb::SessionRating, ServiceError> {
        let id = uuid("session_id", &req.session_id)?;
        let member_id = access::rate(caller).map_err(|d| d.into_error("session", &req.session_id))?;
        let rating = registrations::rate(&self.pool, member_id, id, &req.session_id, req.score, &req.comment).await?;
        Ok(map::rating_to_proto(&rating))
    }

    pub(super) async fn statistics(
        &self,
        caller: Option<&Caller>,
        req: pb::SessionStatisticsRequest,
    ) -> Result<pb::SessionStatisticsResponse, ServiceError> {
        access::session_statistics(caller).map_err(|d| d.into_error("statistics", ""))?;
        // Open ends: 2000-01-01 and 2100-01-01 (PostgreSQL's range is narrower than chrono's).
        let open = |secs| DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let from = map::instant("from", req.from.as_ref())?.unwrap_or_else(|| open(946_684_800));
        let to = map::instant("to", req.to.as_ref())?.unwrap_or_else(|| open(4_102_444_800));
        if to < from {
            return Err(ServiceError::invalid("to", "must not be before from"));
        }
        let mut conn = self.pool.acquire().await?;
        let (overall, by_offer, by_epci) = store::statistics(&mut conn, from, to).await?;
        Ok(pb::SessionStatisticsResponse {
            overall: overall.first().map(map::fill_to_proto),
            by_offer: by_offer.iter().map(map::fill_to_proto).collect(),
            by_epci: by_epci.iter().map(map::fill_to_proto).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anyone_lists_upcoming_scheduled_sessions_the_provider_and_coordinator_any() {
        let cancelled =
            pb::ListSessionsRequest { statuses: vec![pb::SessionStatus::Cancelled as i32], ..Default::default() };
        let public = session_filter(&SessionsScope::Public, &cancelled, None).unwrap_or_default();
        assert_eq!(public.statuses, ["scheduled"]);
        assert!(public.from.is_some_and(|f| f >= time::now() - chrono::Duration::seconds(5)));
        let all = session_filter(&SessionsScope::All, &cancelled, None).unwrap_or_default();
        assert_eq!(
            (all.statuses.as_slice(), all.from, all.provider_code),
            (["cancelled".to_owned()].as_slice(), None, None)
        );
        let own = session_filter(&SessionsScope::Provider("caue77".into()), &pb::ListSessionsRequest::default(), None);
        let own = own.unwrap_or_default();
        assert_eq!(
            (own.provider_code.as_deref(), own.statuses.as_slice()),
            (Some("caue77"), ["scheduled".to_owned()].as_slice())
        );
        assert!(own.from.is_some() && own.limit == 20);
        let bad = pb::ListSessionsRequest { page_token: "zz".into(), ..Default::default() };
        assert!(session_filter(&SessionsScope::All, &bad, None).is_err());
    }
}
