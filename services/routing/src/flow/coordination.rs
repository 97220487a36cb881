//! What the coordinator does by hand, each in its own transaction: hands a request to another provider
//! (reassignment), withdraws a referral (the request then waits in the triage queue), and places a request of the
//! triage queue, with an offer (routed by the rules) and/or a provider (offered directly).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::lifecycle::{Assignment, Lifecycle, Placement};
use crate::domain::explanation::MANUAL;
use crate::domain::{Actor, ReferralStatus};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, OfferRow, ReferralRow, RoutedRequestRow};

/// Why a placement was refused because of what was asked (INVALID_ARGUMENT on `offer_id`).
pub const NEEDS_OFFER: &str = "an open orientation request needs an offer (offer_id) to be placed";

impl Lifecycle {
    /// The coordinator (`by`) hands a request to `provider_code`: its open referral (offered) is withdrawn
    /// first; an accepted one cannot be taken back. Works from any referral of the request.
    pub async fn reassign(
        &self,
        pool: &PgPool,
        referral_id: Uuid,
        provider_code: &str,
        note: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        let mut tx = pool.begin().await?;
        let referral = store::get_referral_conn(&mut tx, referral_id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("referral {referral_id}")))?;
        store::lock_request(&mut tx, referral.request_id).await?;
        if store::provider_sla(&mut tx, provider_code).await?.is_none() {
            return Err(RoutingError::ReferralState(format!("provider {provider_code} is unknown")).into());
        }
        if let Some(open) = store::open_referral_for_update(&mut tx, referral.request_id).await? {
            if open.status == ReferralStatus::Accepted.as_str() {
                return Err(RoutingError::ReferralState(format!(
                    "request {} was accepted by {}: it cannot be reassigned",
                    open.request_id, open.provider_code
                ))
                .into());
            }
            if open.provider_code == provider_code {
                let message = format!("referral {} is already with {provider_code}", open.id);
                return Err(RoutingError::ReferralState(message).into());
            }
            let why = if note.is_empty() { "reassigned by the coordinator".to_owned() } else { note.to_owned() };
            self.withdraw(&mut tx, &open, &why, by).await?;
        }
        let request = store::get_routed_request(&mut tx, referral.request_id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("request {}", referral.request_id)))?;
        let offer = store::get_offer(&mut tx, request.offer_id)
            .await?
            .ok_or_else(|| RoutingError::NotYetKnown(format!("offer {} not yet known", request.offer_id)))?;
        let explanation = match note {
            "" => format!("{MANUAL} confiée à {provider_code} par la coordination"),
            note => format!("{MANUAL} confiée à {provider_code} par la coordination ({note})"),
        };
        let assignment = Assignment::by_hand(provider_code, explanation, note, by);
        let created = self.offer_by_hand(&mut tx, &request, &offer, assignment).await?;
        store::resolve_triage(&mut tx, request.request_id, self.now()).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Offers `request` as the coordinator placed it (the next attempt).
    async fn offer_by_hand(
        &self,
        conn: &mut PgConnection,
        request: &RoutedRequestRow,
        offer: &OfferRow,
        assignment: Assignment,
    ) -> Result<ReferralRow, FlowError> {
        let attempt = self.next_attempt(conn, request.request_id).await?;
        self.offer(conn, request, offer, attempt, assignment, None)
            .await?
            .ok_or_else(|| RoutingError::ReferralState("the request changed meanwhile; try again".to_owned()).into())
    }

    /// The coordinator withdraws a referral (offered; `note` says why, else "withdrawn by the coordinator"): the
    /// request is nobody's now and waits in the triage queue (requests shows it as triage).
    pub async fn withdraw_by_coordinator(
        &self,
        pool: &PgPool,
        referral_id: Uuid,
        note: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        let note = if note.is_empty() { "retirée par la coordination" } else { note };
        let not_found = || RoutingError::NotFound(format!("referral {referral_id}"));
        let mut tx = pool.begin().await?;
        // The request's lock, then the referral's: the lock order of every path.
        let referral = store::lock_referral(&mut tx, referral_id).await?.ok_or_else(not_found)?;
        let closed = self.withdraw(&mut tx, &referral, note, by).await?;
        if let Some(request) = store::get_routed_request(&mut tx, closed.request_id).await? {
            store::queue_unplaced(&mut tx, &request, &format!("orientation retirée : {note}"), self.now()).await?;
        }
        tx.commit().await?;
        Ok(closed)
    }

    /// Places a triaged request: `offer` (required for an open request; else the request's own) routed by the
    /// rules, or offered to `provider` when named. Leaves the queue; the referral's events tell requests.
    pub async fn assign_triaged(
        &self,
        pool: &PgPool,
        request_id: Uuid,
        offer: Option<Uuid>,
        provider: Option<&str>,
        note: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        let mut tx = pool.begin().await?;
        store::lock_request(&mut tx, request_id).await?;
        let item = store::open_triage_item(&mut tx, request_id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("request {request_id} in the triage queue")))?;
        let offer_id = offer.or(item.offer_id).ok_or_else(|| RoutingError::invalid("offer_id", NEEDS_OFFER))?;
        let offer = store::get_offer(&mut tx, offer_id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("offer {offer_id}")))?;
        if let Some(open) = store::open_referral_for_update(&mut tx, request_id).await? {
            let message = format!("request {request_id} is already with {}", open.provider_code);
            return Err(RoutingError::ReferralState(message).into());
        }
        let request = self.triaged_request(&mut tx, &item, offer_id).await?;
        let referral = match provider {
            Some(code) => {
                if store::provider_sla(&mut tx, code).await?.is_none() {
                    return Err(RoutingError::NotFound(format!("provider {code}")).into());
                }
                let explanation = match note {
                    "" => format!("{MANUAL} orientée vers {code} par la coordination"),
                    note => format!("{MANUAL} orientée vers {code} par la coordination ({note})"),
                };
                let assignment = Assignment::by_hand(code, explanation, note, by);
                self.offer_by_hand(&mut tx, &request, &offer, assignment).await?
            }
            None => match self.route(&mut tx, &request, &offer, by, note).await? {
                Placement::Offered(referral) => *referral,
                Placement::Triage => {
                    return Err(RoutingError::ReferralState(format!(
                        "no provider is left for request {request_id} with offer {offer_id}: name a provider"
                    ))
                    .into());
                }
            },
        };
        store::resolve_triage(&mut tx, request_id, self.now()).await?;
        tx.commit().await?;
        tracing::info!(%request_id, %offer_id, provider = %referral.provider_code, "triaged request placed");
        Ok(referral)
    }

    /// Routing's copy of a triaged request, now for `offer_id` (an open request is recorded on its first
    /// placement).
    async fn triaged_request(
        &self,
        conn: &mut PgConnection,
        item: &store::TriageRow,
        offer_id: Uuid,
    ) -> Result<RoutedRequestRow, FlowError> {
        match store::get_routed_request(conn, item.request_id).await? {
            Some(mut known) => {
                if known.offer_id != offer_id {
                    store::set_triaged_offer(conn, item.request_id, offer_id).await?;
                    known.offer_id = offer_id;
                }
                Ok(known)
            }
            None => {
                let new = RoutedRequestRow {
                    request_id: item.request_id,
                    member_id: item.member_id,
                    offer_id,
                    subject: item.subject.clone(),
                    description: item.description.clone(),
                };
                store::insert_routed_request(conn, &new, None, self.now()).await?;
                store::set_triaged_offer(conn, item.request_id, offer_id).await?;
                Ok(new)
            }
        }
    }
}
