//! Registrations of named participants to a session: registering (the database confirms or waitlists each,
//! under the session's lock), cancelling (a freed seat promotes the first waitlisted) and rating a held session.
//! Each use case is one transaction, its events written to the outbox in it.

use id77_platform::auth::{Caller, Denied};
use id77_platform::{ServiceError, outbox, time};
use id77_proto::catalogue::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::sessions::{reload, status_of};
use crate::access;
use crate::domain::session::{self, Participant, RegistrationStatus, Step};
use crate::error::CatalogueError;
use crate::proto_map_sessions::registration_to_proto;
use crate::session_store::{self as store, RatingRow, RegisterError, RegistrationRow};

fn now_proto() -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(time::now()))
}

/// The registration as events carry it: with its session (and the session's link: participants are told it).
async fn event_registration(conn: &mut PgConnection, r: &RegistrationRow) -> Result<pb::Registration, ServiceError> {
    let s = reload(conn, r.session_id).await?;
    Ok(registration_to_proto(r, Some(crate::proto_map_sessions::session_to_proto(&s, true))))
}

fn refused(e: RegisterError, email: &str) -> ServiceError {
    match e {
        RegisterError::QuotaReached => CatalogueError::QuotaReached.into(),
        RegisterError::Closed => CatalogueError::RegistrationClosed.into(),
        RegisterError::NotScheduled => CatalogueError::SessionNotScheduled("annulée ou déjà tenue").into(),
        RegisterError::AlreadyRegistered => CatalogueError::AlreadyRegistered(email.to_owned()).into(),
        RegisterError::Db(e) => e.into(),
    }
}

/// Registers participants of `member_id` (decided by the access rules) in the order given, all or none: each
/// is confirmed while seats are left, else waitlisted, by the database. Announced one by one
/// (`registration.confirmed` / `registration.waitlisted`).
pub async fn register(
    pool: &PgPool,
    caller: &Caller,
    session_id: Uuid,
    written: &str,
    member_id: Uuid,
    participants: &[Participant],
) -> Result<Vec<RegistrationRow>, ServiceError> {
    let participants = session::validate_participants(participants).map_err(ServiceError::invalid_fields)?;
    // Only an active member registers. A member the read model does not know yet (just approved, its event on the
    // way) is let through: its users' tokens vouch for it, as they do for a search.
    if let Some(member) = crate::store::member(pool, member_id).await?
        && member.status != "active"
    {
        return Err(CatalogueError::MemberNotActive.into());
    }
    let mut tx = pool.begin().await?;
    if store::session(&mut tx, session_id).await?.is_none() {
        return Err(CatalogueError::SessionNotFound(written.to_owned()).into());
    }
    let mut ids = Vec::with_capacity(participants.len());
    for p in &participants {
        let id = Uuid::now_v7();
        store::insert_registration(&mut tx, id, session_id, member_id, p, caller.user_id)
            .await
            .map_err(|e| refused(e, &p.email))?;
        ids.push(id);
    }
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        let r = store::registration(&mut tx, *id).await?.ok_or_else(|| ServiceError::internal("registering", id))?;
        let registration = Some(event_registration(&mut tx, &r).await?);
        match RegistrationStatus::parse(&r.status) {
            Some(RegistrationStatus::Confirmed) => {
                outbox::enqueue(&mut tx, &pb::RegistrationConfirmed { registration, occurred_at: now_proto() }).await?
            }
            _ => {
                outbox::enqueue(&mut tx, &pb::RegistrationWaitlisted { registration, occurred_at: now_proto() }).await?
            }
        };
        rows.push(r);
    }
    tx.commit().await?;
    tracing::info!(session = %session_id, %member_id, participants = rows.len(), "participants registered");
    Ok(rows)
}

/// Cancels a registration (its member's users, the session's provider, the coordinator) under the session's
/// lock; a confirmed seat freed promotes the first waitlisted (`registration.promoted`). A cancelled
/// registration is returned as is.
pub async fn cancel(
    pool: &PgPool,
    caller: Option<&Caller>,
    id: Uuid,
    written: &str,
    reason: &str,
) -> Result<RegistrationRow, ServiceError> {
    let not_found = || ServiceError::from(CatalogueError::RegistrationNotFound(written.to_owned()));
    let mut tx = pool.begin().await?;
    let session_id = store::session_of_registration(&mut tx, id).await?.ok_or_else(not_found)?;
    store::lock_session(&mut tx, session_id).await?;
    let s = reload(&mut tx, session_id).await?;
    let r = store::registration(&mut tx, id).await?.ok_or_else(not_found)?;
    access::registration(caller, &s.provider_code, r.member_id).map_err(|d| match d {
        Denied::NotFound => not_found(),
        d => d.into_error("registration", written),
    })?;
    let current = RegistrationStatus::parse(&r.status).ok_or_else(|| ServiceError::internal("reading", &r.status))?;
    match session::cancel_registration(current, status_of(&s)?) {
        Ok(Step::AlreadyDone) => return Ok(r),
        Err(st) => return Err(CatalogueError::SessionNotScheduled(st.label_fr()).into()),
        Ok(Step::To(_)) => store::cancel_registration(&mut tx, id, reason).await?,
    }
    let promoted = match current {
        RegistrationStatus::Confirmed => store::promote(&mut tx, session_id).await?,
        _ => None,
    };
    let cancelled = store::registration(&mut tx, id).await?.ok_or_else(not_found)?;
    let registration = Some(event_registration(&mut tx, &cancelled).await?);
    let event = pb::RegistrationCancelled { registration, reason: reason.to_owned(), occurred_at: now_proto() };
    outbox::enqueue(&mut tx, &event).await?;
    if let Some(p) = promoted {
        let p = store::registration(&mut tx, p).await?.ok_or_else(|| ServiceError::internal("promoting", p))?;
        let registration = Some(event_registration(&mut tx, &p).await?);
        outbox::enqueue(&mut tx, &pb::RegistrationPromoted { registration, occurred_at: now_proto() }).await?;
        tracing::info!(registration = %p.id, session = %session_id, "waitlisted participant promoted");
    }
    tx.commit().await?;
    tracing::info!(registration = %id, session = %session_id, "registration cancelled");
    Ok(cancelled)
}

/// A member's rating of a held session one of its participants attended (a new rating replaces the old).
pub async fn rate(
    pool: &PgPool,
    member_id: Uuid,
    session_id: Uuid,
    written: &str,
    score: u32,
    comment: &str,
) -> Result<RatingRow, ServiceError> {
    let (score, comment) = session::validate_rating(score, comment).map_err(ServiceError::invalid_fields)?;
    let mut conn = pool.acquire().await?;
    if store::session(&mut conn, session_id).await?.is_none() {
        return Err(CatalogueError::SessionNotFound(written.to_owned()).into());
    }
    if !store::member_attended(&mut conn, session_id, member_id).await? {
        return Err(CatalogueError::NotAttended.into());
    }
    Ok(store::upsert_rating(&mut conn, session_id, member_id, score, &comment).await?)
}
