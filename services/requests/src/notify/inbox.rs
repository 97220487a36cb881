//! SQL of the in-portal notifications: each queued mail (`mail_outbox`) is a notification its recipient lists and
//! marks read; and the notices that are not about a request's member (agents, coordinators).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::Candidate;

/// The active coordinators, with their preferences.
pub async fn coordinators(conn: &mut PgConnection) -> Result<Vec<Candidate>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.user_id, r.email, r.display_name, r.role, r.member_id, r.provider_code,
                COALESCE(p.status_changed, true) AS status_changed, COALESCE(p.message_posted, true) AS message_posted
         FROM notification_recipient r LEFT JOIN notification_preference p ON p.user_id = r.user_id
         WHERE r.active AND r.email <> '' AND r.role = 'coordinator'
         ORDER BY r.user_id",
    )
    .fetch_all(conn)
    .await
}

/// A notification as its recipient reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: Uuid,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub link_path: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// `user_id`'s notifications, newest first: created after `since` if given, before the cursor `after`
/// (created_at, id) if given; at most `limit`.
pub async fn list(
    pool: &PgPool,
    user_id: Uuid,
    since: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    let (before_at, before_id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    sqlx::query_as(
        "SELECT id, kind, subject, body, link_path, created_at, read_at FROM mail_outbox
         WHERE recipient_user_id = $1
           AND ($2::timestamptz IS NULL OR created_at > $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(user_id)
    .bind(since)
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many of `user_id`'s notifications are unread.
pub async fn unread(pool: &PgPool, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE recipient_user_id = $1 AND read_at IS NULL")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// Marks `user_id`'s notification `id` read (None: all of them); false when `id` is not one of theirs.
pub async fn mark_read(pool: &PgPool, user_id: Uuid, id: Option<Uuid>) -> Result<bool, sqlx::Error> {
    let Some(id) = id else {
        sqlx::query("UPDATE mail_outbox SET read_at = now() WHERE recipient_user_id = $1 AND read_at IS NULL")
            .bind(user_id)
            .execute(pool)
            .await?;
        return Ok(true);
    };
    let found: Option<Uuid> = sqlx::query_scalar(
        "UPDATE mail_outbox SET read_at = COALESCE(read_at, now()) WHERE recipient_user_id = $1 AND id = $2
         RETURNING id",
    )
    .bind(user_id)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// The subject of request `id` (empty when requests does not know it).
pub async fn request_subject(conn: &mut PgConnection, id: Uuid) -> Result<String, sqlx::Error> {
    let subject: Option<String> =
        sqlx::query_scalar("SELECT subject FROM request WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(subject.unwrap_or_default())
}
