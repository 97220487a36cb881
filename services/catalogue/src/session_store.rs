//! SQL of sessions, registrations, ratings and calendar feeds. Seats and quotas are decided by the database's
//! triggers (migration 0103): an insert of a registration comes back confirmed or waitlisted, or fails with the
//! SQLSTATE of its refusal ([`RegisterError`]).

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::domain::session::{NewSession, Participant};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: Uuid,
    pub offer_id: Uuid,
    pub offer_code: String,
    pub offer_title: String,
    pub provider_code: String,
    pub provider_name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub online: bool,
    pub commune_insee: String,
    pub commune_name: String,
    pub address: String,
    pub online_link: String,
    pub capacity: i32,
    pub member_quota: i32,
    pub registration_deadline: DateTime<Utc>,
    pub price_per_participant_cents: i64,
    pub details: String,
    pub status: String,
    pub cancel_reason: String,
    pub updated_at: DateTime<Utc>,
    pub confirmed: i64,
    pub waitlisted: i64,
    pub attended: i64,
}

const SESSION_SELECT: &str = "SELECT s.id, s.offer_id, o.code AS offer_code, o.title AS offer_title, s.provider_code,
       p.name AS provider_name, s.starts_at, s.ends_at, s.online, s.commune_insee, s.commune_name, s.address,
       s.online_link, s.capacity, s.member_quota, s.registration_deadline, s.price_per_participant_cents,
       s.details, s.status, s.cancel_reason, s.updated_at,
       (SELECT count(*) FROM registration r WHERE r.session_id = s.id AND r.status = 'confirmed') AS confirmed,
       (SELECT count(*) FROM registration r WHERE r.session_id = s.id AND r.status = 'waitlisted') AS waitlisted,
       (SELECT count(*) FROM registration r WHERE r.session_id = s.id AND r.status = 'confirmed' AND r.attended)
         AS attended
  FROM session s JOIN offer o ON o.id = s.offer_id JOIN provider p ON p.code = s.provider_code";

#[derive(Debug, Clone, FromRow)]
pub struct RegistrationRow {
    pub id: Uuid,
    pub session_id: Uuid,
    pub member_id: Uuid,
    pub member_name: String,
    pub participant_name: String,
    pub participant_function: String,
    pub participant_email: String,
    pub status: String,
    pub arrival: i64,
    pub attended: bool,
    pub registered_by: Uuid,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancel_reason: String,
    /// 1-based place on the waiting list; 0 when not waitlisted.
    pub waitlist_position: i64,
}

const REGISTRATION_SELECT: &str = "SELECT r.id, r.session_id, r.member_id, coalesce(m.name, '') AS member_name,
       r.participant_name, r.participant_function, r.participant_email, r.status, r.arrival, r.attended,
       r.registered_by, r.registered_at, r.updated_at, r.cancel_reason,
       CASE WHEN r.status = 'waitlisted' THEN
         (SELECT count(*) FROM registration w
           WHERE w.session_id = r.session_id AND w.status = 'waitlisted' AND w.arrival <= r.arrival)
       ELSE 0 END AS waitlist_position
  FROM registration r LEFT JOIN member m ON m.member_id = r.member_id";

/// The collectivité's name in the member read model (the row exists: the member event wrote it first), unless a
/// later event already named it.
pub async fn name_member(
    conn: &mut PgConnection,
    member_id: Uuid,
    name: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE member SET name = $2 WHERE member_id = $1 AND (name = '' OR occurred_at <= $3)")
        .bind(member_id)
        .bind(name)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a scheduled session.
pub async fn insert_session(
    conn: &mut PgConnection,
    id: Uuid,
    offer_id: Uuid,
    provider_code: &str,
    s: &NewSession,
    remind_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session (id, offer_id, provider_code, starts_at, ends_at, online, commune_insee, commune_name,
           address, online_link, capacity, member_quota, registration_deadline, price_per_participant_cents,
           details, remind_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(id)
    .bind(offer_id)
    .bind(provider_code)
    .bind(s.starts_at)
    .bind(s.ends_at)
    .bind(s.place.online)
    .bind(&s.place.commune_insee)
    .bind(&s.place.commune_name)
    .bind(&s.place.address)
    .bind(&s.place.online_link)
    .bind(s.capacity)
    .bind(s.member_quota)
    .bind(s.registration_deadline)
    .bind(s.price_per_participant_cents)
    .bind(&s.details)
    .bind(remind_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn session(conn: &mut PgConnection, id: Uuid) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SESSION_SELECT} WHERE s.id = $1"))).bind(id).fetch_optional(conn).await
}

/// Locks a session row (the same lock the admission trigger takes); `false` if unknown.
pub async fn lock_session(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM session WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(conn).await?;
    Ok(row.is_some())
}

/// Advisory lock serialising the demo's sessions (replicas starting at once schedule them once).
const DEMO_LOCK: i64 = 0x1d77_ca7a_0002;

/// Waits for the demo lock, held by this connection until [`unlock_demo`].
pub async fn lock_demo(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)").bind(DEMO_LOCK).execute(conn).await?;
    Ok(())
}

pub async fn unlock_demo(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(DEMO_LOCK).execute(conn).await?;
    Ok(())
}

pub async fn any_session(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let (exists,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM session)").fetch_one(conn).await?;
    Ok(exists)
}

/// What a session listing asks for.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub offer_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub statuses: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    /// Keyset: after this (starts_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Sessions by start, then id; one more than `limit` to tell whether a next page exists.
pub async fn list_sessions(conn: &mut PgConnection, f: &SessionFilter) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SESSION_SELECT}
          WHERE ($1::uuid IS NULL OR s.offer_id = $1)
            AND ($2::text IS NULL OR s.provider_code = $2)
            AND (cardinality($3::text[]) = 0 OR s.status = ANY($3))
            AND ($4::timestamptz IS NULL OR s.starts_at >= $4)
            AND ($5::timestamptz IS NULL OR (s.starts_at, s.id) > ($5, $6))
          ORDER BY s.starts_at, s.id
          LIMIT $7"
    )))
    .bind(f.offer_id)
    .bind(f.provider_code.as_deref())
    .bind(&f.statuses)
    .bind(f.from)
    .bind(f.after.map(|a| a.0))
    .bind(f.after.map(|a| a.1))
    .bind(f.limit + 1)
    .fetch_all(conn)
    .await
}

pub async fn set_session_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    cancel_reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session SET status = $2, cancel_reason = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(cancel_reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Why the database refused a registration.
#[derive(Debug)]
pub enum RegisterError {
    QuotaReached,
    Closed,
    NotScheduled,
    /// The e-mail already has an active registration of the member.
    AlreadyRegistered,
    Db(sqlx::Error),
}

/// Inserts a registration: the admission trigger confirms or waitlists it, or refuses it.
pub async fn insert_registration(
    conn: &mut PgConnection,
    id: Uuid,
    session_id: Uuid,
    member_id: Uuid,
    p: &Participant,
    registered_by: Uuid,
) -> Result<(), RegisterError> {
    let done = sqlx::query(
        "INSERT INTO registration (id, session_id, member_id, participant_name, participant_function,
           participant_email, registered_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(session_id)
    .bind(member_id)
    .bind(&p.name)
    .bind(&p.function)
    .bind(&p.email)
    .bind(registered_by)
    .execute(conn)
    .await;
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) => match e.code().as_deref() {
            Some("P7701") => Err(RegisterError::QuotaReached),
            Some("P7702") => Err(RegisterError::Closed),
            Some("P7703") => Err(RegisterError::NotScheduled),
            Some("23505") => Err(RegisterError::AlreadyRegistered),
            _ => Err(RegisterError::Db(sqlx::Error::Database(e))),
        },
        Err(e) => Err(RegisterError::Db(e)),
    }
}

pub async fn registration(conn: &mut PgConnection, id: Uuid) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{REGISTRATION_SELECT} WHERE r.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn registrations_by_id(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{REGISTRATION_SELECT} WHERE r.id = ANY($1) ORDER BY r.arrival")))
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// The session of a registration, without locking anything.
pub async fn session_of_registration(conn: &mut PgConnection, id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT session_id FROM registration WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| r.0))
}

/// A session's registrations in the given statuses (all when empty), by arrival.
pub async fn registrations_of_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    statuses: &[String],
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REGISTRATION_SELECT} WHERE r.session_id = $1 AND (cardinality($2::text[]) = 0 OR r.status = ANY($2))
          ORDER BY r.arrival"
    )))
    .bind(session_id)
    .bind(statuses)
    .fetch_all(conn)
    .await
}

/// What a registration listing asks for.
#[derive(Debug, Clone, Default)]
pub struct RegistrationFilter {
    pub session_id: Option<Uuid>,
    pub member_id: Option<Uuid>,
    pub statuses: Vec<String>,
    /// Keyset: after this arrival.
    pub after: Option<i64>,
    pub limit: i64,
}

/// Registrations by arrival; one more than `limit` to tell whether a next page exists.
pub async fn list_registrations(
    conn: &mut PgConnection,
    f: &RegistrationFilter,
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{REGISTRATION_SELECT}
          WHERE ($1::uuid IS NULL OR r.session_id = $1)
            AND ($2::uuid IS NULL OR r.member_id = $2)
            AND (cardinality($3::text[]) = 0 OR r.status = ANY($3))
            AND ($4::bigint IS NULL OR r.arrival > $4)
          ORDER BY r.arrival
          LIMIT $5"
    )))
    .bind(f.session_id)
    .bind(f.member_id)
    .bind(&f.statuses)
    .bind(f.after)
    .bind(f.limit + 1)
    .fetch_all(conn)
    .await
}

/// Whether the member holds an active registration for the session.
pub async fn member_registered(
    conn: &mut PgConnection,
    session_id: Uuid,
    member_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let (yes,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM registration WHERE session_id = $1 AND member_id = $2 AND status <> 'cancelled')",
    )
    .bind(session_id)
    .bind(member_id)
    .fetch_one(conn)
    .await?;
    Ok(yes)
}

pub async fn cancel_registration(conn: &mut PgConnection, id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE registration SET status = 'cancelled', cancel_reason = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Cancels every active registration of a session; their ids, by arrival.
pub async fn cancel_registrations_of_session(
    conn: &mut PgConnection,
    session_id: Uuid,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "UPDATE registration SET status = 'cancelled', cancel_reason = $2, updated_at = now()
          WHERE session_id = $1 AND status <> 'cancelled' RETURNING id, arrival",
    )
    .bind(session_id)
    .bind(reason)
    .fetch_all(conn)
    .await?;
    let mut rows = rows;
    rows.sort_by_key(|r| r.1);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The first waitlisted becomes confirmed if a seat is free (under the session's lock); its id.
pub async fn promote(conn: &mut PgConnection, session_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let (id,): (Option<Uuid>,) =
        sqlx::query_as("SELECT registration_promote($1)").bind(session_id).fetch_one(conn).await?;
    Ok(id)
}

/// Marks who came among the confirmed registrations (every other confirmed one did not).
pub async fn record_attendance(
    conn: &mut PgConnection,
    session_id: Uuid,
    attended: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE registration SET attended = (id = ANY($2)), updated_at = now()
          WHERE session_id = $1 AND status = 'confirmed'",
    )
    .bind(session_id)
    .bind(attended)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct RatingRow {
    pub session_id: Uuid,
    pub member_id: Uuid,
    pub score: i32,
    pub comment: String,
    pub rated_at: DateTime<Utc>,
}

/// Writes (or rewrites) a member's rating of a session.
pub async fn upsert_rating(
    conn: &mut PgConnection,
    session_id: Uuid,
    member_id: Uuid,
    score: i32,
    comment: &str,
) -> Result<RatingRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO session_rating (session_id, member_id, score, comment) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session_id, member_id) DO UPDATE SET score = $3, comment = $4, rated_at = now()
         RETURNING session_id, member_id, score, comment, rated_at",
    )
    .bind(session_id)
    .bind(member_id)
    .bind(score)
    .bind(comment)
    .fetch_one(conn)
    .await
}

/// Whether one of the member's participants attended the session.
pub async fn member_attended(conn: &mut PgConnection, session_id: Uuid, member_id: Uuid) -> Result<bool, sqlx::Error> {
    let (yes,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM registration WHERE session_id = $1 AND member_id = $2 AND attended
                          AND status = 'confirmed')",
    )
    .bind(session_id)
    .bind(member_id)
    .fetch_one(conn)
    .await?;
    Ok(yes)
}

/// Sessions whose reminder is due, locked (others' locked ones skipped).
pub async fn lock_due_reminders(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM session WHERE status = 'scheduled' AND reminded_at IS NULL AND remind_at <= $1
          ORDER BY remind_at LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn mark_reminded(conn: &mut PgConnection, id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session SET reminded_at = $2 WHERE id = $1").bind(id).bind(now).execute(conn).await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct FeedRow {
    pub user_id: Uuid,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
}

/// Issues (or replaces) a user's feed token hash.
pub async fn upsert_feed(
    conn: &mut PgConnection,
    user_id: Uuid,
    token_hash: &[u8],
    member_id: Option<Uuid>,
    provider_code: Option<&str>,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let (issued_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO calendar_feed (user_id, token_hash, member_id, provider_code) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET token_hash = $2, member_id = $3, provider_code = $4,
           issued_at = now(), revoked_at = NULL
         RETURNING issued_at",
    )
    .bind(user_id)
    .bind(token_hash)
    .bind(member_id)
    .bind(provider_code)
    .fetch_one(conn)
    .await?;
    Ok(issued_at)
}

/// Revokes a user's feed; `false` if there was no live one.
pub async fn revoke_feed(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE calendar_feed SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The live feed with this token hash.
pub async fn feed_by_hash(conn: &mut PgConnection, token_hash: &[u8]) -> Result<Option<FeedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, member_id, provider_code FROM calendar_feed WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// The sessions of a member's calendar feed: those it holds a confirmed seat for, and the cancelled ones it was
/// registered to (so that subscribed calendars show them cancelled), of the last 90 days and to come.
pub async fn member_calendar(conn: &mut PgConnection, member_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT r.session_id FROM registration r JOIN session s ON s.id = r.session_id
          WHERE r.member_id = $1 AND (r.status = 'confirmed' OR s.status = 'cancelled')
            AND s.ends_at > now() - interval '90 days'
          LIMIT 500",
    )
    .bind(member_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Sessions by id (for calendars).
pub async fn sessions_by_id(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SESSION_SELECT} WHERE s.id = ANY($1) ORDER BY s.starts_at, s.id")))
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// A provider's sessions for its calendar feed: upcoming (and of the last 90 days), cancelled included.
pub async fn provider_calendar(conn: &mut PgConnection, provider_code: &str) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SESSION_SELECT} WHERE s.provider_code = $1 AND s.ends_at > now() - interval '90 days'
          ORDER BY s.starts_at, s.id LIMIT 500"
    )))
    .bind(provider_code)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct FillRow {
    pub key: String,
    pub label: String,
    pub sessions: i64,
    pub seats: i64,
    pub confirmed: i64,
    pub attended: i64,
}

/// Fill and attendance of the non-cancelled sessions starting in [from, to): overall (`key` empty), per offer
/// and per EPCI of the registered members (seats and sessions: of the sessions where the EPCI registered).
pub async fn statistics(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<FillRow>, Vec<FillRow>, Vec<FillRow>), sqlx::Error> {
    let scope = "WITH s AS (SELECT * FROM session WHERE status <> 'cancelled' AND starts_at >= $1 AND starts_at < $2),
         r AS (SELECT r.* FROM registration r JOIN s ON s.id = r.session_id WHERE r.status = 'confirmed')";
    let overall = format!(
        "{scope} SELECT '' AS key, 'Toutes les sessions' AS label, (SELECT count(*) FROM s) AS sessions,
           (SELECT coalesce(sum(capacity), 0)::bigint FROM s) AS seats, (SELECT count(*) FROM r) AS confirmed,
           (SELECT count(*) FROM r WHERE attended) AS attended"
    );
    let by_offer = format!(
        "{scope} SELECT o.code AS key, o.title AS label, count(*) AS sessions, sum(s.capacity)::bigint AS seats,
           sum((SELECT count(*) FROM r WHERE r.session_id = s.id))::bigint AS confirmed,
           sum((SELECT count(*) FROM r WHERE r.session_id = s.id AND r.attended))::bigint AS attended
           FROM s JOIN offer o ON o.id = s.offer_id GROUP BY o.code, o.title ORDER BY o.code"
    );
    let by_epci = format!(
        "{scope}, e AS (SELECT r.session_id, coalesce(m.epci_siren, '') AS epci, r.attended
                         FROM r LEFT JOIN member m ON m.member_id = r.member_id)
         SELECT e.epci AS key, CASE WHEN e.epci = '' THEN 'EPCI inconnu' ELSE e.epci END AS label,
           count(DISTINCT e.session_id) AS sessions,
           (SELECT coalesce(sum(capacity), 0) FROM s WHERE s.id IN
              (SELECT session_id FROM e e2 WHERE e2.epci = e.epci))::bigint AS seats,
           count(*) AS confirmed, count(*) FILTER (WHERE e.attended) AS attended
           FROM e GROUP BY e.epci ORDER BY e.epci"
    );
    let run = |sql: String| sqlx::query_as::<_, FillRow>(sqlx::AssertSqlSafe(sql));
    let overall = run(overall).bind(from).bind(to).fetch_all(&mut *conn).await?;
    let by_offer = run(by_offer).bind(from).bind(to).fetch_all(&mut *conn).await?;
    let by_epci = run(by_epci).bind(from).bind(to).fetch_all(&mut *conn).await?;
    Ok((overall, by_offer, by_epci))
}
