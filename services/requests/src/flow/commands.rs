//! What users do to a request once it is filed: cancel it (the member's users, the coordinator), close it (the
//! coordinator) and rate it (the member's users). Each locks the request's row, so a cancellation and routing's
//! completion are ordered: whichever requests records first wins (ADR 0013).

use id77_platform::auth::{Caller, Role};
use id77_platform::{ServiceError, time};
use sqlx::PgPool;
use uuid::Uuid;

use super::lifecycle::{self, Cause};
use crate::access::{self, RequestFacts};
use crate::domain::{self, Trigger};
use crate::store::{self, RequestRow};

/// Cancels a request on behalf of the member's users or the coordinator (`reason`: validated).
pub async fn cancel(pool: &PgPool, caller: &Caller, id: Uuid, reason: String) -> Result<RequestRow, ServiceError> {
    let roles = [Role::MemberAdmin, Role::MemberUser, Role::Coordinator];
    command(pool, caller, id, Trigger::Cancel { reason }, &roles, |f| access::cancel_request(caller, f)).await
}

/// Closes a completed request (the coordinator; `reason`: validated).
pub async fn close(pool: &PgPool, caller: &Caller, id: Uuid, reason: String) -> Result<RequestRow, ServiceError> {
    command(pool, caller, id, Trigger::Close { reason }, &[Role::Coordinator], |_| Ok(())).await
}

/// Applies a user's command to a request the caller may act on; returns the request as it now stands.
async fn command(
    pool: &PgPool,
    caller: &Caller,
    id: Uuid,
    trigger: Trigger,
    roles: &[Role],
    allowed: impl Fn(&RequestFacts<'_>) -> Result<(), access::Denied>,
) -> Result<RequestRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let not_found = || ServiceError::not_found("request", &id.to_string());
    let row = store::request_for_update(&mut tx, id).await?.ok_or_else(not_found)?;
    let referent = if caller.has(Role::Referent) { store::referent_of(pool, row.member_id).await? } else { None };
    let facts = RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent };
    allowed(&facts).map_err(|d| d.into_error("request", &id.to_string()))?;
    let state = lifecycle::state_of(&row).map_err(|e| ServiceError::internal("reading a request", e))?;
    let step = domain::lifecycle::apply(&state, &trigger, time::now())?
        .ok_or_else(|| domain::lifecycle::invalid_transition(state.status, trigger.name()))?;
    let who = lifecycle::actor(&mut tx, caller, roles).await?;
    lifecycle::record(&mut tx, &row, &step, &who, &Cause::default()).await?;
    tx.commit().await?;
    store::get_request(pool, id).await?.ok_or_else(not_found)
}

/// Records (or revises) the member's rating of a completed request.
pub async fn feedback(
    pool: &PgPool,
    caller: &Caller,
    id: Uuid,
    rating: u32,
    comment: &str,
) -> Result<RequestRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let not_found = || ServiceError::not_found("request", &id.to_string());
    let row = store::request_for_update(&mut tx, id).await?.ok_or_else(not_found)?;
    let facts = RequestFacts { member_id: row.member_id, provider_code: row.provider_code.as_deref(), referent: None };
    access::give_feedback(caller, &facts).map_err(|d| d.into_error("request", &id.to_string()))?;
    let status = lifecycle::state_of(&row).map_err(|e| ServiceError::internal("reading a request", e))?.status;
    let feedback = domain::validate_feedback(status, rating, comment)?;
    store::upsert_feedback(&mut tx, id, feedback.rating, &feedback.comment, caller.user_id, time::now()).await?;
    tx.commit().await?;
    tracing::info!(request_id = %id, rating = feedback.rating, "feedback recorded");
    store::get_request(pool, id).await?.ok_or_else(not_found)
}
