//! Handlers of the events requests consumes: membership (member status), catalogue (offers) and routing
//! (referral outcomes). Each runs inside the inbox transaction.

use anyhow::anyhow;
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::catalogue::v1::OfferPublished;
use id77_proto::membership::v1::{MemberApplied, MemberApproved, MemberUpdated};
use id77_proto::routing::v1::{ReferralAccepted, ReferralDeclined, ReferralOffered};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, ReferralOutcome, RequestStatus};
use crate::store;

fn uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw).map_err(|_| HandleError::Reject(anyhow!("{field} {raw:?} is not a UUID")))
}

/// When the event happened, by the publisher's clock. Required: read models order updates by it.
fn occurred(ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<chrono::DateTime<chrono::Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| HandleError::Reject(anyhow!("event without a valid occurred_at")))
}

/// Subject of `MemberUpdated` (the member's referent changed).
pub const SUBJECT_MEMBER_UPDATED: &str = "id77.membership.member.updated";

/// Keeps the member status and member referent read models.
pub struct MemberEvents;

impl EventHandler for MemberEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (member_id, status, at) = match event.subject.as_str() {
            SUBJECT_MEMBER_UPDATED => {
                let e: MemberUpdated = event.decode()?;
                let member_id = uuid("member_id", &e.member_id)?;
                let referent = referent(&e.referent_user_id)?;
                let at = occurred(e.occurred_at.as_ref())?;
                store::upsert_member_referent(conn, member_id, referent, at).await?;
                tracing::info!(%member_id, referent = ?referent, "member referent recorded");
                return Ok(());
            }
            "id77.membership.member.applied" => {
                let e: MemberApplied = event.decode()?;
                (uuid("member_id", &e.member_id)?, "pending", occurred(e.occurred_at.as_ref())?)
            }
            "id77.membership.member.approved" => {
                let e: MemberApproved = event.decode()?;
                (uuid("member_id", &e.member_id)?, "active", occurred(e.occurred_at.as_ref())?)
            }
            other => {
                tracing::debug!(subject = other, "membership event not used by requests");
                return Ok(());
            }
        };
        store::upsert_member_status(conn, member_id, status, at).await?;
        Ok(())
    }
}

/// The referent of a `MemberUpdated`: empty when the member has none.
pub fn referent(raw: &str) -> Result<Option<Uuid>, HandleError> {
    match raw.trim() {
        "" => Ok(None),
        raw => uuid("referent_user_id", raw).map(Some),
    }
}

/// Keeps the offer read model.
pub struct OfferEvents;

impl EventHandler for OfferEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != "id77.catalogue.offer.published" {
            return Ok(());
        }
        let e: OfferPublished = event.decode()?;
        let offer = e.offer.ok_or_else(|| HandleError::Reject(anyhow!("offer.published without offer")))?;
        let id = uuid("offer.id", &offer.id)?;
        store::upsert_offer(conn, id, &offer.code, &offer.title, &offer.provider_code, offer.version).await?;
        Ok(())
    }
}

/// Moves requests along with routing's referral events.
pub struct ReferralEvents;

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let mut offered_at = None;
        let (request_id, outcome, provider, reason) = match event.subject.as_str() {
            "id77.routing.referral.offered" => {
                let e: ReferralOffered = event.decode()?;
                offered_at = e.occurred_at.as_ref().and_then(time::from_proto);
                (e.request_id, ReferralOutcome::Offered, e.provider_code, String::new())
            }
            "id77.routing.referral.accepted" => {
                let e: ReferralAccepted = event.decode()?;
                (e.request_id, ReferralOutcome::Accepted, e.provider_code, String::new())
            }
            "id77.routing.referral.declined" => {
                let e: ReferralDeclined = event.decode()?;
                if e.rerouted {
                    // Routing handed the request on (another provider, or the coordinator's triage queue): the
                    // request is not declined, it stays with routing.
                    tracing::info!(request_id = %e.request_id, next = %e.next_provider_code, "decline re-routed");
                    return Ok(());
                }
                (e.request_id, ReferralOutcome::Declined, e.provider_code, e.reason)
            }
            _ => return Ok(()),
        };
        let request_id = uuid("request_id", &request_id)?;
        let Some(request) = store::request_for_update(conn, request_id).await? else {
            return Err(HandleError::Reject(anyhow!("referral event for unknown request {request_id}")));
        };
        let current = RequestStatus::parse(&request.status).ok_or_else(|| {
            HandleError::Reject(anyhow!("request {request_id} has unknown status {}", request.status))
        })?;
        // A re-route offers the request to another provider; an older offer (a late redelivery) is not one.
        let to_another_provider = request.provider_code.as_deref() != Some(provider.as_str())
            && offered_at.is_none_or(|at| at >= request.updated_at);
        let Some(next) = domain::on_referral(current, outcome, to_another_provider) else {
            tracing::info!(%request_id, status = current.as_str(), ?outcome, "stale referral event ignored");
            return Ok(());
        };
        let reason = if next == current { format!("re-routed to {provider}") } else { reason };
        // An offer is dated by routing's clock, so that a later re-route compares with it (above).
        let at = offered_at.unwrap_or_else(time::now);
        store::set_status(conn, request_id, next.as_str(), Some(provider.as_str()), &reason, at).await?;
        tracing::info!(%request_id, from = current.as_str(), to = next.as_str(), provider, "request moved");
        Ok(())
    }
}
