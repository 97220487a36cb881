//! The catalogue's session and registration events (issue 22, ADR 0016), consumed through the inbox (durables
//! requests-sessions and requests-registrations): each is mapped to the facts its mails tell and handed to
//! [`crate::notify::sessions`], which mails the participants.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use id77_platform::consumer::event_uuid;
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::{
    RegistrationCancelled, RegistrationConfirmed, RegistrationPromoted, RegistrationStatus, RegistrationWaitlisted,
    SessionCancelled, SessionHeld, SessionReminderDue, SessionScheduled, SessionStatus,
};
use sqlx::PgConnection;

use crate::notify::session_mails::{self as mails, Place, SessionFacts};
use crate::notify::sessions::{self, KnownSession, Participant, SessionNotice};

/// When the event happened (its `occurred_at`, else on arrival).
fn occurred(ts: Option<&id77_proto::prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(time::from_proto).unwrap_or_else(time::now)
}

fn instant(field: &str, ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<DateTime<Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| HandleError::Reject(anyhow!("session without a valid {field}")))
}

/// A session of an event (one without an id or its times can never be mailed about: rejected).
pub fn known_session(session: Option<&pb::Session>) -> Result<KnownSession, HandleError> {
    let s = session.ok_or_else(|| HandleError::Reject(anyhow!("event without its session")))?;
    let place = match &s.place {
        Some(p) if p.online => Place::Online { link: p.online_link.trim().to_owned() },
        Some(p) => Place::InPerson { commune: p.commune_name.trim().to_owned(), address: p.address.trim().to_owned() },
        None => Place::InPerson { commune: String::new(), address: String::new() },
    };
    let status = match s.status() {
        SessionStatus::Cancelled => "cancelled",
        SessionStatus::Held => "held",
        SessionStatus::Scheduled | SessionStatus::Unspecified => "scheduled",
    };
    Ok(KnownSession {
        id: event_uuid("session.id", &s.id)?,
        facts: SessionFacts {
            offer_title: s.offer_title.trim().to_owned(),
            provider_name: s.provider_name.trim().to_owned(),
            starts_at: instant("starts_at", s.starts_at.as_ref())?,
            ends_at: instant("ends_at", s.ends_at.as_ref())?,
            place,
        },
        status: status.to_owned(),
    })
}

/// The person a registration names (None: no participant, nobody to write to).
pub fn participant(r: &pb::Registration) -> Option<Participant> {
    let p = r.participant.as_ref()?;
    Some(Participant {
        email: p.email.trim().to_owned(),
        name: p.name.trim().to_owned(),
        member_name: r.member_name.trim().to_owned(),
    })
}

/// Keeps the sessions; mails every participant of a cancelled session, and those with a seat of a session whose
/// reminder is due.
pub struct SessionEvents;

impl EventHandler for SessionEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if let Some(e) = event.decode_as::<SessionScheduled>()? {
            sessions::record_session(conn, &known_session(e.session.as_ref())?, occurred(e.occurred_at.as_ref()))
                .await?;
        } else if let Some(e) = event.decode_as::<SessionHeld>()? {
            sessions::record_session(conn, &known_session(e.session.as_ref())?, occurred(e.occurred_at.as_ref()))
                .await?;
        } else if let Some(e) = event.decode_as::<SessionCancelled>()? {
            let session = known_session(e.session.as_ref())?;
            let at = occurred(e.occurred_at.as_ref());
            sessions::record_session(conn, &session, at).await?;
            let carried = e.session.as_ref().map_or("", |s| s.cancel_reason.as_str());
            let reason = if e.reason.trim().is_empty() { carried } else { e.reason.as_str() };
            // Every registration it had, whatever the status the cancellation left them in.
            let everyone: Vec<Participant> = e.registrations.iter().filter_map(participant).collect();
            let notice = SessionNotice { kind: mails::KIND_SESSION_CANCELLED, entity: session.id, at };
            sessions::mail_participants(conn, &notice, &everyone, |to| {
                mails::session_cancelled_mail(to, &session.facts, reason)
            })
            .await?;
        } else if let Some(e) = event.decode_as::<SessionReminderDue>()? {
            let session = known_session(e.session.as_ref())?;
            let at = occurred(e.occurred_at.as_ref());
            let seated: Vec<Participant> = e
                .registrations
                .iter()
                .filter(|r| !matches!(r.status(), RegistrationStatus::Waitlisted | RegistrationStatus::Cancelled))
                .filter_map(participant)
                .collect();
            let notice = SessionNotice { kind: mails::KIND_SESSION_REMINDER, entity: session.id, at };
            sessions::mail_participants(conn, &notice, &seated, |to| mails::reminder_mail(to, &session.facts)).await?;
        }
        Ok(())
    }
}

/// What a registration event tells its participant.
enum Told<'a> {
    Confirmed,
    Waitlisted(u32),
    Promoted,
    Cancelled(&'a str),
}

/// Mails the participant of each registration event.
pub struct RegistrationEvents;

impl RegistrationEvents {
    /// The session of `r`: as the registration carries it, else as the sessions' events last told it; not known
    /// yet (its `session.scheduled` is still on its way): retried.
    async fn session_of(conn: &mut PgConnection, r: &pb::Registration) -> Result<KnownSession, HandleError> {
        let id = event_uuid("registration.session_id", &r.session_id)?;
        if let Some(carried) = r.session.as_ref().filter(|s| s.starts_at.is_some() && s.ends_at.is_some()) {
            return known_session(Some(carried));
        }
        sessions::known_session(conn, id)
            .await?
            .ok_or_else(|| HandleError::Retry(anyhow!("session {id} not known yet")))
    }

    /// Whether the sessions' events already told that `r`'s session is cancelled: its participants got that
    /// mail, a late confirmation or promotion would contradict it.
    async fn session_cancelled(conn: &mut PgConnection, r: &pb::Registration) -> Result<bool, HandleError> {
        let id = event_uuid("registration.session_id", &r.session_id)?;
        Ok(sessions::known_session(conn, id).await?.is_some_and(|s| s.status == "cancelled"))
    }

    async fn tell(
        conn: &mut PgConnection,
        r: Option<&pb::Registration>,
        told: Told<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), HandleError> {
        let r = r.ok_or_else(|| HandleError::Reject(anyhow!("registration event without its registration")))?;
        let entity = event_uuid("registration.id", &r.id)?;
        let Some(person) = participant(r) else {
            tracing::warn!(registration = %entity, "registration without a participant: no mail");
            return Ok(());
        };
        if !matches!(told, Told::Cancelled(_)) && Self::session_cancelled(conn, r).await? {
            tracing::info!(registration = %entity, "session already cancelled: no mail");
            return Ok(());
        }
        let session = Self::session_of(conn, r).await?;
        let s = &session.facts;
        let to = mails::Addressee { name: &person.name, member_name: &person.member_name };
        let (kind, mail) = match told {
            Told::Confirmed => (mails::KIND_REGISTRATION_CONFIRMED, mails::confirmed_mail(&to, s)),
            Told::Waitlisted(position) => {
                (mails::KIND_REGISTRATION_WAITLISTED, mails::waitlisted_mail(&to, s, position))
            }
            Told::Promoted => (mails::KIND_REGISTRATION_PROMOTED, mails::promoted_mail(&to, s)),
            Told::Cancelled(reason) => {
                (mails::KIND_REGISTRATION_CANCELLED, mails::registration_cancelled_mail(&to, s, reason))
            }
        };
        let notice = SessionNotice { kind, entity, at };
        sessions::mail_participants(conn, &notice, std::slice::from_ref(&person), |_| mail.clone()).await?;
        Ok(())
    }
}

impl EventHandler for RegistrationEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if let Some(e) = event.decode_as::<RegistrationConfirmed>()? {
            Self::tell(conn, e.registration.as_ref(), Told::Confirmed, occurred(e.occurred_at.as_ref())).await
        } else if let Some(e) = event.decode_as::<RegistrationWaitlisted>()? {
            let position = e.registration.as_ref().map_or(0, |r| r.waitlist_position);
            Self::tell(conn, e.registration.as_ref(), Told::Waitlisted(position), occurred(e.occurred_at.as_ref()))
                .await
        } else if let Some(e) = event.decode_as::<RegistrationPromoted>()? {
            Self::tell(conn, e.registration.as_ref(), Told::Promoted, occurred(e.occurred_at.as_ref())).await
        } else if let Some(e) = event.decode_as::<RegistrationCancelled>()? {
            let carried = e.registration.as_ref().map_or("", |r| r.cancel_reason.as_str());
            let reason = if e.reason.trim().is_empty() { carried } else { e.reason.as_str() };
            Self::tell(conn, e.registration.as_ref(), Told::Cancelled(reason), occurred(e.occurred_at.as_ref())).await
        } else {
            Ok(())
        }
    }
}
