//! Routing's referral outcomes moving requests along (offered, accepted, declined, expired, withdrawn,
//! progressed, completed), in any order: a stale or repeated event changes nothing. Requests decides a request's
//! fate (ADR 0013): a cancellation recorded first makes a later completion stale.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::FlowError;
use super::lifecycle::{self, Cause};
use crate::domain::lifecycle::{Actor, Trigger};
use crate::domain::names::ProviderNames;
use crate::notify::Mailbag;
use crate::store::{self, RequestRow, Steps};

/// What requests takes from one of routing's referral events.
#[derive(Debug, Clone)]
pub struct Routed {
    pub request_id: Uuid,
    pub trigger: Trigger,
    pub at: DateTime<Utc>,
    /// A provider's answer (accepted, declined): dates the first answer.
    pub answer: bool,
    /// The referral's offer (an open request takes it); empty or not a UUID: none.
    pub offer_id: String,
    pub referral_id: String,
    /// Who did it, as routing says (the coordinator, an agent, a provider's connector; the platform for
    /// routing's timers).
    pub actor: Actor,
    /// The coordinator's note when it placed the request by hand.
    pub note: String,
}

/// Applies a referral event to its request, in the consumer's transaction, its step gathered in `steps` and its
/// mails in `mails`.
pub async fn apply(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    steps: &mut Steps,
    r: Routed,
) -> Result<(), FlowError> {
    let request = store::request_for_update(conn, r.request_id).await?;
    // The history line names the providers (issue 21).
    let names = store::provider_names(conn, &r.trigger.providers()).await?;
    apply_locked(conn, mails, steps, r, request, &names).await
}

/// [`apply`] to the request as locked by the caller (`None`: unknown), with the names of (at least) the event's
/// providers: a consumer's batch locks its requests and reads its providers' names once ([`crate::events`]).
pub async fn apply_locked(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    steps: &mut Steps,
    r: Routed,
    request: Option<RequestRow>,
    names: &ProviderNames,
) -> Result<(), FlowError> {
    let request_id = r.request_id;
    let Some(mut request) = request else {
        return Err(FlowError::Refused(format!("referral event for unknown request {request_id}")));
    };
    // An open orientation request gets the offer the coordinator attached at triage.
    if request.offer_id.is_none()
        && let Ok(offer_id) = Uuid::parse_str(r.offer_id.trim())
    {
        let Some(offer) = store::offer(conn, offer_id).await? else {
            return Err(FlowError::NotYet(format!("offer {offer_id} of request {request_id} not yet known")));
        };
        if store::attach_offer(conn, request_id, &offer).await? {
            tracing::info!(%request_id, %offer_id, "offer attached to an open request");
            request.offer_id = Some(offer_id);
        }
    }
    let state = lifecycle::state_of(&request).map_err(FlowError::Refused)?;
    let step = crate::domain::lifecycle::apply_named(&state, &r.trigger, r.at, names)
        .map_err(|e| FlowError::Refused(e.message))?;
    let Some(step) = step else {
        if r.answer {
            // The provider answered all the same (after a cancellation, say): its first answer is dated.
            store::mark_answered(conn, request_id, r.at).await?;
        }
        // A cancellation recorded first makes a later completion stale: requests decides (ADR 0013).
        tracing::info!(%request_id, status = state.status.as_str(), trigger = r.trigger.name(), referral_id = %r.referral_id, "stale referral event ignored");
        return Ok(());
    };
    let step = step.with_note(&r.note);
    let cause = Cause { referral_id: &r.referral_id, answered_at: r.answer.then_some(r.at), ..Cause::default() };
    lifecycle::record_into(conn, mails, steps, &request, &step, &r.actor, &cause).await?;
    Ok(())
}
