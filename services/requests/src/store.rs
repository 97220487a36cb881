//! SQL of the requests service.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct RequestRow {
    pub id: Uuid,
    pub member_id: Uuid,
    pub offer_id: Uuid,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub provider_code: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub status: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

const REQUEST_COLUMNS: &str =
    "id, member_id, offer_id, subject, description, status, provider_code, submitted_at, updated_at";

/// Records a member's status if the event is newer than what is stored.
pub async fn upsert_member_status(
    conn: &mut PgConnection,
    member_id: Uuid,
    status: &str,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_status (member_id, status, as_of) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET status = EXCLUDED.status, as_of = EXCLUDED.as_of
         WHERE member_status.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(status)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who follows a member if the event is not older than what is stored (`None`: nobody).
pub async fn upsert_member_referent(
    conn: &mut PgConnection,
    member_id: Uuid,
    referent_user_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_referent (member_id, referent_user_id, as_of) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET referent_user_id = EXCLUDED.referent_user_id, as_of = EXCLUDED.as_of
         WHERE member_referent.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(referent_user_id)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// The referent following a member, if any.
pub async fn referent_of(pool: &PgPool, member_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT referent_user_id FROM member_referent WHERE member_id = $1")
            .bind(member_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

pub async fn member_status(conn: &mut PgConnection, member_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM member_status WHERE member_id = $1")
        .bind(member_id)
        .fetch_optional(conn)
        .await
}

/// Records an offer version if it is not older than the stored one.
pub async fn upsert_offer(
    conn: &mut PgConnection,
    offer_id: Uuid,
    code: &str,
    title: &str,
    provider_code: &str,
    version: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO offer (offer_id, code, title, provider_code, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (offer_id) DO UPDATE SET code = EXCLUDED.code, title = EXCLUDED.title,
           provider_code = EXCLUDED.provider_code, version = EXCLUDED.version
         WHERE offer.version <= EXCLUDED.version",
    )
    .bind(offer_id)
    .bind(code)
    .bind(title)
    .bind(provider_code)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn offer_exists(conn: &mut PgConnection, offer_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM offer WHERE offer_id = $1)").bind(offer_id).fetch_one(conn).await
}

pub async fn by_idempotency_key(
    conn: &mut PgConnection,
    member_id: Uuid,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE member_id = $1 AND idempotency_key = $2"
    )))
    .bind(member_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

pub async fn insert_request(conn: &mut PgConnection, r: &RequestRow, key: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO request (id, member_id, offer_id, subject, description, status, provider_code, idempotency_key,
                              submitted_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(r.id)
    .bind(r.member_id)
    .bind(r.offer_id)
    .bind(&r.subject)
    .bind(&r.description)
    .bind(&r.status)
    .bind(&r.provider_code)
    .bind(key)
    .bind(r.submitted_at)
    .bind(r.updated_at)
    .execute(&mut *conn)
    .await?;
    add_history(conn, r.id, &r.status, "", r.submitted_at).await
}

pub async fn add_history(
    conn: &mut PgConnection,
    request_id: Uuid,
    status: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO request_history (request_id, status, reason, at) VALUES ($1, $2, $3, $4)")
        .bind(request_id)
        .bind(status)
        .bind(reason)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn request_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REQUEST_COLUMNS} FROM request WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    provider_code: Option<&str>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE request SET status = $2, provider_code = COALESCE($3, provider_code), updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(provider_code)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    add_history(conn, id, status, reason, at).await
}

pub async fn get_request(pool: &PgPool, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REQUEST_COLUMNS} FROM request WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn history(pool: &PgPool, id: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as("SELECT status, reason, at FROM request_history WHERE request_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(pool)
        .await
}

/// A member's requests, oldest first, keyset-paginated on (submitted_at, id).
pub async fn list_by_member(
    pool: &PgPool,
    member_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    // No cursor: NULL, the first page (chrono's MIN is outside PostgreSQL's range).
    let (after_at, after_id) = (after.map(|a| a.0), after.map(|a| a.1).unwrap_or_default());
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE member_id = $1 AND ($2::timestamptz IS NULL OR (submitted_at, id) > ($2, $3))
         ORDER BY submitted_at, id LIMIT $4"
    )))
    .bind(member_id)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
