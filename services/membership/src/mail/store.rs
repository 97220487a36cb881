//! SQL of the mail queue. [`queue`] takes the caller's connection (its transaction); the sender's functions
//! take the pool.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub email: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    /// Plain text, without the link.
    pub body: &'a str,
    /// Path (and query) on the portal, or empty.
    pub link_path: &'a str,
    pub at: DateTime<Utc>,
}

/// Queues a mail in the caller's transaction.
pub async fn queue(conn: &mut PgConnection, m: &Mail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, email, kind, subject, body, link_path, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())",
    )
    .bind(Uuid::now_v7())
    .bind(m.email)
    .bind(m.kind)
    .bind(m.subject)
    .bind(m.body)
    .bind(m.link_path)
    .bind(m.at)
    .execute(conn)
    .await?;
    Ok(())
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
}

/// Claims up to `limit` due mails for `lease` (several senders skip each other's rows).
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
         RETURNING m.id, m.email, m.subject, m.body, m.link_path, m.attempts",
    )
    .bind(limit)
    .bind(max_attempts)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// A sent mail: its link (which may carry a one-time token) is not kept.
pub async fn mark_sent(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mail_outbox SET sent_at = now(), last_error = NULL, link_path = '' WHERE id = $1")
        .bind(id)
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
