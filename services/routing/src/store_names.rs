//! SQL of the names a referral's screens show (issue 21): the collectivité's name, who submitted the request and
//! how to reach them, read with the offer's title and the provider's name in one query for a whole page.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// What a referral's screens name, from routing's read models (empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow)]
pub struct ReferralNames {
    pub referral_id: Uuid,
    pub member_name: String,
    pub offer_title: String,
    pub provider_name: String,
    pub requester_name: String,
    pub requester_email: String,
    pub request_subject: String,
}

/// Who submitted a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    pub user_id: Option<Uuid>,
    pub name: String,
    pub email: String,
}

impl Requester {
    /// An event without a requester (published before requests carried one): nothing to record.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.name.trim().is_empty() && self.email.trim().is_empty()
    }
}

/// Records the collectivité's name (an empty name keeps the stored one); the member row is created if routing
/// did not know the member yet (its facts come with the same event through [`crate::store::upsert_member`]).
pub async fn set_member_name(
    conn: &mut PgConnection,
    member_id: Uuid,
    name: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if name.trim().is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO member (member_id, name, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET name = EXCLUDED.name",
    )
    .bind(member_id)
    .bind(name.trim())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who submitted a request; a replay changes nothing, nor does an event without a requester. An open
/// request's only (a routed one's goes with [`crate::store::insert_routed_request`]).
pub async fn remember_requester(
    conn: &mut PgConnection,
    request_id: Uuid,
    requester: &Requester,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if requester.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO request_contact (request_id, requester_user_id, requester_name, requester_email, received_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(requester.user_id)
    .bind(requester.name.trim())
    .bind(requester.email.trim())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The names of these referrals, in one query (a referral routing does not know is left out).
pub async fn referral_names(pool: &PgPool, referral_ids: &[Uuid]) -> Result<Vec<ReferralNames>, sqlx::Error> {
    if referral_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT r.id AS referral_id, COALESCE(m.name, '') AS member_name, COALESCE(o.title, '') AS offer_title,
                COALESCE(p.name, '') AS provider_name, COALESCE(c.requester_name, '') AS requester_name,
                COALESCE(c.requester_email, '') AS requester_email, COALESCE(q.subject, '') AS request_subject
         FROM referral r
         LEFT JOIN member m ON m.member_id = r.member_id
         LEFT JOIN offer o ON o.offer_id = r.offer_id
         LEFT JOIN provider p ON p.code = r.provider_code
         LEFT JOIN request_contact c ON c.request_id = r.request_id
         LEFT JOIN routed_request q ON q.request_id = r.request_id
         WHERE r.id = ANY($1)",
    )
    .bind(referral_ids)
    .fetch_all(pool)
    .await
}
