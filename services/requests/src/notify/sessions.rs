//! Mails to the participants of training sessions (issue 22, ADR 0016): the catalogue owns sessions and
//! registrations and publishes them; requests, the platform's mailer, queues one mail per participant in
//! `mail_outbox`, keyed by the fact it tells (a registration's confirmation, a session's cancellation…) and the
//! participant's address, so a redelivered or republished event queues nothing more. The sender drains them like
//! the other mails. A participant needs no account: when one has that address, the mail is also in its portal
//! notifications. Participants' mails ignore notification preferences (those are about requests).
//!
//! The sessions are kept as the catalogue last told them (`training_session`), for the registration mails.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::session_mails::{self, Addressee, Place, SessionFacts};

/// The key of the mails telling `kind` about `entity` (a registration or a session): the same for every
/// delivery of the fact, whatever the message id it came with.
pub fn mail_key(kind: &str, entity: Uuid) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("id77:{kind}:{entity}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A session as the catalogue states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSession {
    pub id: Uuid,
    pub facts: SessionFacts,
    /// `scheduled`, `cancelled`, `held`.
    pub status: String,
}

/// Keeps `session` as of `at` unless a later state is already kept; true when written.
pub async fn record_session(
    conn: &mut PgConnection,
    session: &KnownSession,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (online, commune, address, link) = match &session.facts.place {
        Place::InPerson { commune, address } => (false, commune.as_str(), address.as_str(), ""),
        Place::Online { link } => (true, "", "", link.as_str()),
    };
    let done = sqlx::query(
        "INSERT INTO training_session (id, offer_title, provider_name, starts_at, ends_at, online, commune_name,
                                       address, online_link, status, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (id) DO UPDATE SET
           offer_title = EXCLUDED.offer_title, provider_name = EXCLUDED.provider_name,
           starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, online = EXCLUDED.online,
           commune_name = EXCLUDED.commune_name, address = EXCLUDED.address, online_link = EXCLUDED.online_link,
           status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
         WHERE training_session.updated_at <= EXCLUDED.updated_at",
    )
    .bind(session.id)
    .bind(&session.facts.offer_title)
    .bind(&session.facts.provider_name)
    .bind(session.facts.starts_at)
    .bind(session.facts.ends_at)
    .bind(online)
    .bind(commune)
    .bind(address)
    .bind(link)
    .bind(&session.status)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    offer_title: String,
    provider_name: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    online: bool,
    commune_name: String,
    address: String,
    online_link: String,
    status: String,
}

/// The session `id` as last told (None: not told yet).
pub async fn known_session(conn: &mut PgConnection, id: Uuid) -> Result<Option<KnownSession>, sqlx::Error> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT offer_title, provider_name, starts_at, ends_at, online, commune_name, address, online_link, status
         FROM training_session WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| KnownSession {
        id,
        facts: SessionFacts {
            offer_title: r.offer_title,
            provider_name: r.provider_name,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            place: if r.online {
                Place::Online { link: r.online_link }
            } else {
                Place::InPerson { commune: r.commune_name, address: r.address }
            },
        },
        status: r.status,
    }))
}

/// A person registered for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub email: String,
    pub name: String,
    /// The collectivité that registered them.
    pub member_name: String,
}

/// What is mailed: `kind` about `entity` (a registration, or a session for every one of its participants).
#[derive(Debug, Clone, Copy)]
pub struct SessionNotice<'a> {
    pub kind: &'a str,
    pub entity: Uuid,
    pub at: DateTime<Utc>,
}

/// Queues one mail per participant with a valid address (`write` makes its subject and body); returns how many
/// were queued now (a fact already mailed to an address queues nothing more).
pub async fn mail_participants(
    conn: &mut PgConnection,
    notice: &SessionNotice<'_>,
    participants: &[Participant],
    write: impl Fn(&Addressee<'_>) -> (String, String),
) -> Result<usize, sqlx::Error> {
    let event_id = mail_key(notice.kind, notice.entity);
    let mut queued = 0;
    for p in participants {
        let email = p.email.trim();
        if !session_mails::is_address(email) {
            tracing::warn!(kind = notice.kind, entity = %notice.entity, "participant without a valid e-mail address: no mail");
            continue;
        }
        let (subject, body) = write(&Addressee { name: &p.name, member_name: &p.member_name });
        let done = sqlx::query(
            "INSERT INTO mail_outbox (id, event_id, recipient_user_id, email, kind, request_id, subject, body,
                                      link_path, created_at, next_attempt_at, participant)
             VALUES ($1, $2,
                     (SELECT user_id FROM notification_recipient
                      WHERE active AND lower(email) = lower($3) ORDER BY user_id LIMIT 1),
                     $3, $4, NULL, $5, $6, $7, $8, now(), true)
             ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(event_id)
        .bind(email)
        .bind(notice.kind)
        .bind(&subject)
        .bind(&body)
        .bind(session_mails::REGISTRATIONS_PATH)
        .bind(notice.at)
        .execute(&mut *conn)
        .await?;
        queued += usize::from(done.rows_affected() > 0);
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_has_one_key_whatever_its_delivery() {
        let registration = Uuid::now_v7();
        let kind = session_mails::KIND_REGISTRATION_CONFIRMED;
        assert_eq!(mail_key(kind, registration), mail_key(kind, registration));
        assert_ne!(mail_key(kind, registration), mail_key(session_mails::KIND_REGISTRATION_PROMOTED, registration));
        assert_ne!(mail_key(kind, registration), mail_key(kind, Uuid::now_v7()));
    }
}
