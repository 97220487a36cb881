//! Sessions of awareness and training offers: scheduling (with its reminder timer), cancelling (every
//! registration with it), recording attendance (the session is held) and firing due reminders. Each use case
//! is one transaction, its events written to the outbox in it.

use chrono::{DateTime, Utc};
use id77_platform::auth::{Caller, Denied};
use id77_platform::{ServiceError, outbox, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::vocabulary::Category;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access;
use crate::domain::session::{self, AttendanceRefusal, SessionInput, SessionStatus, Step};
use crate::domain::working_days;
use crate::domain::{OfferKey, OfferStatus};
use crate::error::CatalogueError;
use crate::proto_map_sessions::{participant_to_proto, registration_to_proto, session_to_proto};
use crate::session_store::{self as store, RegistrationRow, SessionRow};

fn now_proto() -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(time::now()))
}

fn session_not_found(written: &str) -> ServiceError {
    CatalogueError::SessionNotFound(written.to_owned()).into()
}

/// The session as events carry it: with its online link (participants are told it).
fn event_session(s: &SessionRow) -> Option<pb::Session> {
    Some(session_to_proto(s, true))
}

pub(crate) fn status_of(s: &SessionRow) -> Result<SessionStatus, ServiceError> {
    SessionStatus::parse(&s.status).ok_or_else(|| ServiceError::internal("reading a session", &s.status))
}

pub(crate) async fn reload(conn: &mut PgConnection, id: Uuid) -> Result<SessionRow, ServiceError> {
    store::session(conn, id).await?.ok_or_else(|| ServiceError::internal("reading a session back", id))
}

/// Who schedules a session.
#[derive(Debug, Clone, Copy)]
pub enum ScheduledBy<'a> {
    /// A caller, whose rights are checked.
    Caller(Option<&'a Caller>),
    /// The start-up demo (`ID77_DEMO_SESSIONS`), trusted.
    Demo,
}

/// A new session of a published awareness or training offer, by an agent of its provider or the coordinator.
/// Announced with `session.scheduled`.
pub async fn schedule(
    pool: &PgPool,
    by: ScheduledBy<'_>,
    offer: &OfferKey,
    input: &SessionInput,
) -> Result<SessionRow, ServiceError> {
    let not_found = || ServiceError::from(CatalogueError::OfferNotFound(offer.written.clone()));
    let row = crate::store::offer_by_key(pool, offer.id, &offer.code).await?;
    let row = row.filter(|o| o.status != OfferStatus::Draft.as_str()).ok_or_else(not_found)?;
    if let ScheduledBy::Caller(caller) = by {
        access::manage_session(caller, &row.provider_code).map_err(|d| match d {
            Denied::NotFound => not_found(),
            d => d.into_error("offer", &offer.written),
        })?;
    }
    if Category::parse(&row.category).is_none_or(|c| !session::has_sessions(c)) {
        return Err(CatalogueError::NotATrainingOffer(row.code).into());
    }
    if row.status != OfferStatus::Published.as_str() {
        return Err(CatalogueError::InvalidTransition { from: "archived", action: "schedule a session of" }.into());
    }
    let new = session::validate_session(input, time::now()).map_err(ServiceError::invalid_fields)?;
    let id = Uuid::now_v7();
    let remind_at = working_days::reminder_at(new.starts_at);
    let mut tx = pool.begin().await?;
    store::insert_session(&mut tx, id, row.id, &row.provider_code, &new, Some(remind_at)).await?;
    let s = reload(&mut tx, id).await?;
    outbox::enqueue(&mut tx, &pb::SessionScheduled { session: event_session(&s), occurred_at: now_proto() }).await?;
    tx.commit().await?;
    tracing::info!(session = %id, offer = %s.offer_code, starts_at = %s.starts_at, "session scheduled");
    Ok(s)
}

/// Locks a session and checks that the caller manages it (another provider's agent: "not found").
async fn lock_managed(
    conn: &mut PgConnection,
    caller: Option<&Caller>,
    id: Uuid,
    written: &str,
) -> Result<SessionRow, ServiceError> {
    if !store::lock_session(conn, id).await? {
        return Err(session_not_found(written));
    }
    let s = reload(conn, id).await?;
    access::manage_session(caller, &s.provider_code).map_err(|d| match d {
        Denied::NotFound => session_not_found(written),
        d => d.into_error("session", written),
    })?;
    Ok(s)
}

/// Cancels a scheduled session and every registration of it, in one transaction; `session.cancelled` carries
/// the registrations (each participant is told). A cancelled session is returned as is.
pub async fn cancel(
    pool: &PgPool,
    caller: Option<&Caller>,
    id: Uuid,
    written: &str,
    reason: &str,
) -> Result<SessionRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let s = lock_managed(&mut tx, caller, id, written).await?;
    match session::cancel_session(status_of(&s)?) {
        Ok(Step::AlreadyDone) => return Ok(s),
        Err(current) => return Err(CatalogueError::SessionNotScheduled(current.label_fr()).into()),
        Ok(Step::To(next)) => store::set_session_status(&mut tx, id, next.as_str(), reason).await?,
    }
    let cancelled = store::cancel_registrations_of_session(&mut tx, id, reason).await?;
    let registrations = store::registrations_by_id(&mut tx, &cancelled).await?;
    let s = reload(&mut tx, id).await?;
    let event = pb::SessionCancelled {
        session: event_session(&s),
        reason: reason.to_owned(),
        registrations: registrations.iter().map(|r| registration_to_proto(r, None)).collect(),
        occurred_at: now_proto(),
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(session = %id, registrations = cancelled.len(), "session cancelled");
    Ok(s)
}

/// Each member's participants at a held session, as billing invoices them.
fn member_attendance(registrations: &[RegistrationRow]) -> Vec<pb::MemberAttendance> {
    let mut out: Vec<pb::MemberAttendance> = Vec::new();
    for r in registrations {
        let member_id = r.member_id.to_string();
        let i = match out.iter().position(|m| m.member_id == member_id) {
            Some(i) => i,
            None => {
                out.push(pb::MemberAttendance { member_id, member_name: r.member_name.clone(), ..Default::default() });
                out.len() - 1
            }
        };
        let m = &mut out[i];
        m.registered += 1;
        if r.attended {
            m.attended += 1;
            m.attendees.push(participant_to_proto(r));
        }
    }
    out
}

/// Records who came (ids of confirmed registrations of the session) once the session has started: the session
/// becomes held, announced with `session.held` and each member's attendance. A held session is returned as is.
pub async fn record_attendance(
    pool: &PgPool,
    caller: Option<&Caller>,
    id: Uuid,
    written: &str,
    attended: &[Uuid],
) -> Result<SessionRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let s = lock_managed(&mut tx, caller, id, written).await?;
    match session::hold_session(status_of(&s)?, s.starts_at, time::now()) {
        Ok(Step::AlreadyDone) => return Ok(s),
        Err(AttendanceRefusal::NotStarted) => return Err(CatalogueError::SessionNotStarted.into()),
        Err(AttendanceRefusal::NotScheduled(st)) => {
            return Err(CatalogueError::SessionNotScheduled(st.label_fr()).into());
        }
        Ok(Step::To(_)) => {}
    }
    let confirmed = store::registrations_of_session(&mut tx, id, &["confirmed".to_owned()]).await?;
    if let Some(unknown) = attended.iter().find(|a| !confirmed.iter().any(|r| r.id == **a)) {
        let msg = format!("{unknown} is not a confirmed registration of this session");
        return Err(ServiceError::invalid("attended_registration_ids", &msg));
    }
    store::record_attendance(&mut tx, id, attended).await?;
    store::set_session_status(&mut tx, id, SessionStatus::Held.as_str(), "").await?;
    let confirmed = store::registrations_of_session(&mut tx, id, &["confirmed".to_owned()]).await?;
    let s = reload(&mut tx, id).await?;
    let event = pb::SessionHeld {
        session: event_session(&s),
        members: member_attendance(&confirmed),
        occurred_at: now_proto(),
    };
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(session = %id, attended = attended.len(), "session held");
    Ok(s)
}

/// Most reminders fired per scan.
const REMINDERS_PER_SCAN: i64 = 50;

/// Fires the reminders due at `now`: each scheduled session's `session.reminder_due` with its confirmed
/// registrations, once (`reminded_at` set in the same transaction; rows locked by another replica skipped).
pub async fn fire_due_reminders(pool: &PgPool, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let mut tx = pool.begin().await?;
    let due = store::lock_due_reminders(&mut tx, now, REMINDERS_PER_SCAN).await?;
    for id in &due {
        let s = reload(&mut tx, *id).await?;
        let confirmed = store::registrations_of_session(&mut tx, *id, &["confirmed".to_owned()]).await?;
        let event = pb::SessionReminderDue {
            session: event_session(&s),
            registrations: confirmed.iter().map(|r| registration_to_proto(r, None)).collect(),
            occurred_at: now_proto(),
        };
        outbox::enqueue(&mut tx, &event).await?;
        store::mark_reminded(&mut tx, *id, now).await?;
        tracing::info!(session = %id, participants = confirmed.len(), "session reminder due");
    }
    tx.commit().await?;
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(member: u128, attended: bool, name: &str) -> RegistrationRow {
        let t = time::now();
        RegistrationRow {
            id: Uuid::now_v7(),
            session_id: Uuid::nil(),
            member_id: Uuid::from_u128(member),
            member_name: format!("Commune {member}"),
            participant_name: name.into(),
            participant_function: String::new(),
            participant_email: format!("{name}@x.fr"),
            status: "confirmed".into(),
            arrival: 1,
            attended,
            registered_by: Uuid::nil(),
            registered_at: t,
            updated_at: t,
            cancel_reason: String::new(),
            waitlist_position: 0,
        }
    }

    #[test]
    fn attendance_is_counted_per_member() {
        let members =
            member_attendance(&[reg(1, true, "a"), reg(2, false, "b"), reg(1, false, "c"), reg(1, true, "d")]);
        assert_eq!(members.len(), 2);
        assert_eq!((members[0].registered, members[0].attended), (3, 2));
        assert_eq!(members[0].attendees.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["a", "d"]);
        assert_eq!((members[1].registered, members[1].attended, members[1].member_name.as_str()), (1, 0, "Commune 2"));
    }
}
