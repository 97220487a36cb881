//! SQL of the routing service.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct OfferRow {
    pub offer_id: Uuid,
    pub code: String,
    pub title: String,
    pub provider_code: String,
    pub version: i32,
}

#[derive(Debug, Clone, FromRow)]
pub struct ReferralRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub offer_id: Uuid,
    pub member_id: Uuid,
    pub provider_code: String,
    pub status: String,
    pub reason: String,
    pub assignment: String,
    pub offered_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

const REFERRAL_COLUMNS: &str =
    "id, request_id, offer_id, member_id, provider_code, status, reason, assignment, offered_at, decided_at";

/// Inserts or updates an offer of the read model. A version older than (or equal to) the stored one changes
/// nothing. Returns whether the row changed.
pub async fn upsert_offer(conn: &mut PgConnection, offer: &OfferRow) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "INSERT INTO offer (offer_id, code, title, provider_code, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (offer_id) DO UPDATE SET code = EXCLUDED.code, title = EXCLUDED.title,
           provider_code = EXCLUDED.provider_code, version = EXCLUDED.version, updated_at = now()
         WHERE offer.version < EXCLUDED.version",
    )
    .bind(offer.offer_id)
    .bind(&offer.code)
    .bind(&offer.title)
    .bind(&offer.provider_code)
    .bind(offer.version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

pub async fn get_offer(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as("SELECT offer_id, code, title, provider_code, version FROM offer WHERE offer_id = $1")
        .bind(offer_id)
        .fetch_optional(conn)
        .await
}

/// Inserts a new referral unless the request already has one. Returns the row only when it was inserted.
pub async fn insert_referral(conn: &mut PgConnection, r: &ReferralRow) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO referral (id, request_id, offer_id, member_id, provider_code, status, reason, assignment,
                               offered_at, decided_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9)
         ON CONFLICT (request_id) DO NOTHING
         RETURNING {REFERRAL_COLUMNS}"
    )))
    .bind(r.id)
    .bind(r.request_id)
    .bind(r.offer_id)
    .bind(r.member_id)
    .bind(&r.provider_code)
    .bind(&r.status)
    .bind(&r.reason)
    .bind(&r.assignment)
    .bind(r.offered_at)
    .bind(r.decided_at)
    .fetch_optional(conn)
    .await
}

pub async fn referral_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referral WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn get_referral(pool: &PgPool, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referral WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Records a decision (accepted, declined...) on a referral.
pub async fn decide(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<ReferralRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE referral SET status = $2, reason = $3, decided_at = $4, updated_at = $4 WHERE id = $1
         RETURNING {REFERRAL_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Referrals, oldest first, optionally of one request and/or one provider, keyset-paginated on
/// (offered_at, id).
pub async fn list_referrals(
    pool: &PgPool,
    request_id: Option<Uuid>,
    provider_code: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    // No cursor on the first page (chrono's minimum date is outside PostgreSQL's timestamp range).
    let (after_at, after_id) = after.map_or((None, Uuid::nil()), |(at, id)| (Some(at), id));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFERRAL_COLUMNS} FROM referral
         WHERE ($1::uuid IS NULL OR request_id = $1) AND ($2::text IS NULL OR provider_code = $2)
           AND ($3::timestamptz IS NULL OR (offered_at, id) > ($3, $4))
         ORDER BY offered_at, id LIMIT $5"
    )))
    .bind(request_id)
    .bind(provider_code)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Queues an open request (no offer) for the coordinator. A replay changes nothing. Returns whether it was new.
pub async fn queue_for_triage(
    conn: &mut PgConnection,
    request_id: Uuid,
    member_id: Uuid,
    subject: &str,
    description: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO triage (request_id, member_id, subject, description, received_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(member_id)
    .bind(subject)
    .bind(description)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}
