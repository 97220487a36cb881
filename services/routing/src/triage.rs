//! The coordinator's triage queue: open orientation requests (no offer) and requests no provider was left for.
//! The coordinator lists it and places a request, with an offer (routed by the rules) and/or a provider (offered
//! directly); the request then leaves the queue. Runs on the caller's transaction, like [`crate::flow`].

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::Actor;
use crate::flow::{Assignment, FlowError, Lifecycle, Placement};
use crate::store::{self, ReferralRow, RoutedRequestRow};

#[derive(Debug, Clone, FromRow)]
pub struct TriageRow {
    pub request_id: Uuid,
    pub member_id: Uuid,
    pub subject: String,
    pub description: String,
    pub offer_id: Option<Uuid>,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

const COLUMNS: &str = "request_id, member_id, subject, description, offer_id, reason, received_at";

/// The open queue, oldest first, keyset-paginated on (received_at, request_id).
pub async fn list(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TriageRow>, sqlx::Error> {
    let (after_at, after_id) = after.map_or((None, Uuid::nil()), |(at, id)| (Some(at), id));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triage WHERE resolved_at IS NULL
           AND ($1::timestamptz IS NULL OR (received_at, request_id) > ($1, $2))
         ORDER BY received_at, request_id LIMIT $3"
    )))
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

async fn open_item(conn: &mut PgConnection, request_id: Uuid) -> Result<Option<TriageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM triage WHERE request_id = $1 AND resolved_at IS NULL FOR UPDATE"
    )))
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// The request is now for `offer_id` (routing's copy and its triage row, should it come back to the queue).
async fn set_offer(conn: &mut PgConnection, request_id: Uuid, offer_id: Uuid) -> Result<(), sqlx::Error> {
    for table in ["routed_request", "triage"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET offer_id = $2 WHERE request_id = $1")))
            .bind(request_id)
            .bind(offer_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Why an assignment was refused because of what was asked (the gRPC layer maps it to INVALID_ARGUMENT).
pub const NEEDS_OFFER: &str = "an open orientation request needs an offer (offer_id) to be placed";

impl Lifecycle {
    /// Places a triaged request: `offer` (required for an open request; else the request's own) routed by the
    /// rules, or offered to `provider` when named. Leaves the queue; the referral's events tell requests.
    pub async fn assign_triaged(
        &self,
        conn: &mut PgConnection,
        request_id: Uuid,
        offer: Option<Uuid>,
        provider: Option<&str>,
        note: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        store::lock_request(conn, request_id).await?;
        let item = open_item(conn, request_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("request {request_id} in the triage queue")))?;
        let offer_id = offer.or(item.offer_id).ok_or_else(|| FlowError::Refused(NEEDS_OFFER.to_owned()))?;
        let offer =
            store::get_offer(conn, offer_id).await?.ok_or_else(|| FlowError::NotFound(format!("offer {offer_id}")))?;
        if let Some(open) = store::open_referral_for_update(conn, request_id).await? {
            return Err(FlowError::Refused(format!("request {request_id} is already with {}", open.provider_code)));
        }
        let request = match store::get_routed_request(conn, request_id).await? {
            Some(mut known) => {
                if known.offer_id != offer_id {
                    set_offer(conn, request_id, offer_id).await?;
                    known.offer_id = offer_id;
                }
                known
            }
            None => {
                let new = RoutedRequestRow {
                    request_id,
                    member_id: item.member_id,
                    offer_id,
                    subject: item.subject.clone(),
                    description: item.description.clone(),
                };
                store::insert_routed_request(conn, &new, self.now()).await?;
                set_offer(conn, request_id, offer_id).await?;
                new
            }
        };
        let referral = match provider {
            Some(code) => {
                if store::provider_sla(conn, code).await?.is_none() {
                    return Err(FlowError::NotFound(format!("provider {code}")));
                }
                let attempt =
                    store::referrals_of(conn, request_id).await?.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
                let explanation = match note {
                    "" => format!("manual: triaged to {code} by the coordinator"),
                    note => format!("manual: triaged to {code} by the coordinator ({note})"),
                };
                let assignment = Assignment {
                    provider_code: code.to_owned(),
                    rule: None,
                    explanation,
                    by: by.clone(),
                    note: note.to_owned(),
                };
                self.offer(conn, &request, &offer, attempt, assignment)
                    .await?
                    .ok_or_else(|| FlowError::Refused("the request changed meanwhile; try again".to_owned()))?
            }
            None => match self.route(conn, &request, &offer, by, note).await? {
                Placement::Offered(referral) => *referral,
                Placement::Triage => {
                    return Err(FlowError::Refused(format!(
                        "no provider is left for request {request_id} with offer {offer_id}: name a provider"
                    )));
                }
            },
        };
        store::resolve_triage(conn, request_id, self.now()).await?;
        tracing::info!(%request_id, %offer_id, provider = %referral.provider_code, "triaged request placed");
        Ok(referral)
    }
}
