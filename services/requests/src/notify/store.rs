//! SQL of the notifications: recipients, preferences, the mail outbox.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An account as membership last told it.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub active: bool,
    pub version: i64,
}

/// Stores the account unless a newer version is already stored; true when it was written.
pub async fn upsert_recipient(conn: &mut PgConnection, r: &Recipient) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO notification_recipient (user_id, email, display_name, role, member_id, provider_code, active, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (user_id) DO UPDATE SET
           email = EXCLUDED.email, display_name = EXCLUDED.display_name, role = EXCLUDED.role,
           member_id = EXCLUDED.member_id, provider_code = EXCLUDED.provider_code, active = EXCLUDED.active,
           version = EXCLUDED.version
         WHERE notification_recipient.version < EXCLUDED.version",
    )
    .bind(r.user_id)
    .bind(&r.email)
    .bind(&r.display_name)
    .bind(&r.role)
    .bind(r.member_id)
    .bind(&r.provider_code)
    .bind(r.active)
    .bind(r.version)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The display name membership last gave for a user (None: unknown or empty).
pub async fn display_name(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let name: Option<String> = sqlx::query_scalar("SELECT display_name FROM notification_recipient WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()))
}

/// A user's preferences (every kind on when never set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub status_changed: bool,
    pub message_posted: bool,
}

pub async fn preferences(pool: &PgPool, user_id: Uuid) -> Result<Preferences, sqlx::Error> {
    let row: Option<(bool, bool)> =
        sqlx::query_as("SELECT status_changed, message_posted FROM notification_preference WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let (status_changed, message_posted) = row.unwrap_or((true, true));
    Ok(Preferences { status_changed, message_posted })
}

/// Changes the kinds given (None: unchanged) and returns the result.
pub async fn update_preferences(
    pool: &PgPool,
    user_id: Uuid,
    status_changed: Option<bool>,
    message_posted: Option<bool>,
) -> Result<Preferences, sqlx::Error> {
    let (status_changed, message_posted): (bool, bool) = sqlx::query_as(
        "INSERT INTO notification_preference (user_id, status_changed, message_posted, updated_at)
         VALUES ($1, COALESCE($2, true), COALESCE($3, true), now())
         ON CONFLICT (user_id) DO UPDATE SET
           status_changed = COALESCE($2, notification_preference.status_changed),
           message_posted = COALESCE($3, notification_preference.message_posted),
           updated_at = now()
         RETURNING status_changed, message_posted",
    )
    .bind(user_id)
    .bind(status_changed)
    .bind(message_posted)
    .fetch_one(pool)
    .await?;
    Ok(Preferences { status_changed, message_posted })
}

/// A mail claimed for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub email: String,
    pub subject: String,
    pub body: String,
    pub link_path: String,
    pub attempts: i32,
    /// What it tells (the sender ends a participant's mail of a session differently).
    pub kind: String,
}

/// Claims up to `limit` due mails for `lease` (several senders skip each other's rows): their next try moves
/// past the lease, so a sender that dies leaves them to another one after it.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    max_attempts: i32,
    lease: std::time::Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE mail_outbox m SET attempts = m.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $3)
         FROM (SELECT id FROM mail_outbox
               WHERE sent_at IS NULL AND attempts < $2 AND next_attempt_at <= now()
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
         WHERE m.id = due.id
         RETURNING m.id, m.email, m.subject, m.body, m.link_path, m.attempts, m.kind",
    )
    .bind(limit)
    .bind(max_attempts)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Marks the mails `ids` sent (nothing to do for none).
pub async fn mark_sent(pool: &PgPool, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE mail_outbox SET sent_at = now(), last_error = NULL WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .map(|_| ())
}

pub async fn mark_failed(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    retry_in: std::time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .execute(pool)
    .await
    .map(|_| ())
}

/// Mails not sent yet (and not given up on).
pub async fn backlog(pool: &PgPool, max_attempts: i32) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND attempts < $1")
        .bind(max_attempts)
        .fetch_one(pool)
        .await
}
