//! Handlers of the events requests consumes: membership (member status, referent, territory), catalogue
//! (offers) and routing (referral outcomes). Each runs inside the inbox transaction. Also [`record`], which writes
//! a lifecycle step and the events it emits, for the handlers and the gRPC commands alike.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use id77_platform::{Event, EventHandler, HandleError, outbox, time};
use id77_proto::catalogue::v1::{OfferCategory, OfferPublished};
use id77_proto::membership::v1::{CollectivityKind, MemberApplied, MemberApproved, MemberUpdated};
use id77_proto::requests::v1::{RequestCancelled, RequestCompleted, RequestStatusChanged};
use id77_proto::routing::v1::{
    ReferralAccepted, ReferralCompleted, ReferralDeclined, ReferralExpired, ReferralOffered, ReferralProgressed,
    ReferralWithdrawn,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::{self, Actor, Next, RequestStatus, State, Step, Trigger};
use crate::store::{self, RequestRow, Territory};

pub const SUBJECT_SUBMITTED: &str = "id77.requests.request.submitted";
pub const SUBJECT_CANCELLED: &str = "id77.requests.request.cancelled";
pub const SUBJECT_COMPLETED: &str = "id77.requests.request.completed";
pub const SUBJECT_STATUS_CHANGED: &str = "id77.requests.request.status_changed";

fn uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw).map_err(|_| HandleError::Reject(anyhow!("{field} {raw:?} is not a UUID")))
}

/// When the event happened, by the publisher's clock. Required: read models order updates by it.
fn occurred(ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<DateTime<Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| HandleError::Reject(anyhow!("event without a valid occurred_at")))
}

/// The lifecycle state of a stored request.
pub fn state_of(row: &RequestRow) -> Result<State, String> {
    let status = RequestStatus::parse(&row.status)
        .ok_or_else(|| format!("request {} has an unknown status {}", row.id, row.status))?;
    Ok(State { status, provider: row.provider_code.clone(), updated_at: row.updated_at })
}

/// Records a step (status, history row by `actor`) and the events it emits through the outbox:
/// `request.status_changed` on every step, `request.completed` on completion, `request.cancelled` on
/// cancellation.
pub async fn record(conn: &mut PgConnection, row: &RequestRow, step: &Step, actor: &Actor) -> Result<(), sqlx::Error> {
    store::apply_step(conn, row.id, step, actor).await?;
    let offer_id = row.offer_id.map(|id| id.to_string()).unwrap_or_default();
    let referent = store::referent_in(conn, row.member_id).await?;
    let changed = RequestStatusChanged {
        request_id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        provider_code: step.provider.clone().unwrap_or_default(),
        referent_user_id: referent.map(|r| r.to_string()).unwrap_or_default(),
        from_status: step.from.as_str().to_owned(),
        to_status: step.to.as_str().to_owned(),
        reason: step.reason.clone(),
        request_subject: row.subject.clone(),
        occurred_at: Some(time::to_proto(step.at)),
    };
    let event_id = outbox::enqueue(conn, SUBJECT_STATUS_CHANGED, &changed).await?;
    crate::notify::status_changed(conn, event_id, row, step, actor).await?;
    match step.to {
        RequestStatus::Completed => {
            let event = RequestCompleted {
                request_id: row.id.to_string(),
                member_id: row.member_id.to_string(),
                offer_id,
                provider_code: step.provider.clone().unwrap_or_default(),
                occurred_at: Some(time::to_proto(step.at)),
            };
            outbox::enqueue(conn, SUBJECT_COMPLETED, &event).await?;
        }
        RequestStatus::Cancelled => {
            let event = RequestCancelled {
                request_id: row.id.to_string(),
                member_id: row.member_id.to_string(),
                reason: step.reason.clone(),
                occurred_at: Some(time::to_proto(step.at)),
            };
            outbox::enqueue(conn, SUBJECT_CANCELLED, &event).await?;
        }
        _ => {}
    }
    tracing::info!(request_id = %row.id, from = step.from.as_str(), to = step.to.as_str(), actor = actor.role(), reason = %step.reason, "request moved");
    Ok(())
}

/// Subject of `MemberUpdated` (the member's referent changed).
pub const SUBJECT_MEMBER_UPDATED: &str = "id77.membership.member.updated";

fn kind_name(kind: i32) -> String {
    match CollectivityKind::try_from(kind) {
        Ok(CollectivityKind::Commune) => "commune",
        Ok(CollectivityKind::Epci) => "epci",
        Ok(CollectivityKind::Syndicat) => "syndicat",
        _ => "",
    }
    .to_owned()
}

/// Keeps the member status, referent and territory read models.
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
                let territory = Territory {
                    kind: kind_name(e.kind),
                    insee_code: e.insee_code.trim().to_owned(),
                    epci_siren: e.epci_siren.trim().to_owned(),
                    arrondissement: e.arrondissement.trim().to_owned(),
                };
                store::upsert_member_territory(conn, member_id, &territory, at).await?;
                tracing::info!(%member_id, referent = ?referent, "member referent recorded");
                return Ok(());
            }
            "id77.membership.member.applied" => {
                let e: MemberApplied = event.decode()?;
                (uuid("member_id", &e.member_id)?, "pending", occurred(e.occurred_at.as_ref())?)
            }
            "id77.membership.member.approved" => {
                let e: MemberApproved = event.decode()?;
                let member_id = uuid("member_id", &e.member_id)?;
                let at = occurred(e.occurred_at.as_ref())?;
                let territory = Territory {
                    kind: kind_name(e.kind),
                    insee_code: e.insee_code.trim().to_owned(),
                    epci_siren: e.epci_siren.trim().to_owned(),
                    arrondissement: e.arrondissement.trim().to_owned(),
                };
                store::upsert_member_territory(conn, member_id, &territory, at).await?;
                (member_id, "active", at)
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

/// The category name of a catalogue offer ("" when unspecified).
pub fn category_name(category: i32) -> &'static str {
    match OfferCategory::try_from(category) {
        Ok(OfferCategory::IntegratedEngineering) => "integrated_engineering",
        Ok(OfferCategory::AwarenessTraining) => "awareness_training",
        Ok(OfferCategory::ExhibitionLoan) => "exhibition_loan",
        _ => "",
    }
}

/// Keeps the offer read model (with each offer's current version and category).
pub struct OfferEvents;

impl EventHandler for OfferEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != "id77.catalogue.offer.published" {
            return Ok(());
        }
        let e: OfferPublished = event.decode()?;
        let offer = e.offer.ok_or_else(|| HandleError::Reject(anyhow!("offer.published without offer")))?;
        let id = uuid("offer.id", &offer.id)?;
        let category = category_name(offer.category);
        store::upsert_offer(conn, id, &offer.code, &offer.title, &offer.provider_code, offer.version, category).await?;
        Ok(())
    }
}

fn next(rerouted: bool, next_provider: &str) -> Next {
    match (rerouted, next_provider.trim()) {
        (false, _) => Next::Nowhere,
        (true, "") => Next::Triage,
        (true, p) => Next::Provider(p.to_owned()),
    }
}

/// When a routing event happened; routing always says, an event without it is dated on arrival.
fn routed_at(ts: Option<&id77_proto::prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(time::from_proto).unwrap_or_else(time::now)
}

/// Moves requests along with routing's referral events (offered, accepted, declined, expired, withdrawn,
/// progressed, completed), in any order: a stale or repeated event changes nothing.
pub struct ReferralEvents;

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // (request, trigger, when, whether it is a provider's answer, offer of the referral)
        let (request_id, trigger, at, answer, offer_id) = match event.subject.as_str() {
            "id77.routing.referral.offered" => {
                let e: ReferralOffered = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                (e.request_id, Trigger::Offered { provider: e.provider_code }, at, false, e.offer_id)
            }
            "id77.routing.referral.accepted" => {
                let e: ReferralAccepted = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                (e.request_id, Trigger::Accepted { provider: e.provider_code }, at, true, e.offer_id)
            }
            "id77.routing.referral.declined" => {
                let e: ReferralDeclined = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                let next = next(e.rerouted, &e.next_provider_code);
                (
                    e.request_id,
                    Trigger::Declined { provider: e.provider_code, reason: e.reason, next },
                    at,
                    true,
                    e.offer_id,
                )
            }
            "id77.routing.referral.expired" => {
                let e: ReferralExpired = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                let next = next(e.rerouted, &e.next_provider_code);
                (e.request_id, Trigger::Expired { provider: e.provider_code, next }, at, false, e.offer_id)
            }
            "id77.routing.referral.withdrawn" => {
                let e: ReferralWithdrawn = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                (
                    e.request_id,
                    Trigger::Withdrawn { provider: e.provider_code, reason: e.reason },
                    at,
                    false,
                    e.offer_id,
                )
            }
            "id77.routing.referral.progressed" => {
                let e: ReferralProgressed = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                (
                    e.request_id,
                    Trigger::Progressed { provider: e.provider_code, note: e.note },
                    at,
                    false,
                    String::new(),
                )
            }
            "id77.routing.referral.completed" => {
                let e: ReferralCompleted = event.decode()?;
                let at = routed_at(e.occurred_at.as_ref());
                (e.request_id, Trigger::Completed { provider: e.provider_code }, at, false, e.offer_id)
            }
            _ => return Ok(()),
        };
        let request_id = uuid("request_id", &request_id)?;
        let Some(mut request) = store::request_for_update(conn, request_id).await? else {
            return Err(HandleError::Reject(anyhow!("referral event for unknown request {request_id}")));
        };
        // An open orientation request gets the offer the coordinator attached at triage.
        if request.offer_id.is_none()
            && let Ok(offer_id) = Uuid::parse_str(offer_id.trim())
        {
            let Some(offer) = store::offer(conn, offer_id).await? else {
                return Err(HandleError::Retry(anyhow!("offer {offer_id} of request {request_id} not yet known")));
            };
            if store::attach_offer(conn, request_id, &offer).await? {
                tracing::info!(%request_id, %offer_id, "offer attached to an open request");
                request.offer_id = Some(offer_id);
            }
        }
        if answer {
            store::mark_answered(conn, request_id, at).await?;
        }
        let state = state_of(&request).map_err(|e| HandleError::Reject(anyhow!(e)))?;
        let step = lifecycle::apply(&state, &trigger, at).map_err(|e| HandleError::Reject(anyhow!(e.message)))?;
        let Some(step) = step else {
            tracing::info!(%request_id, status = state.status.as_str(), trigger = trigger.name(), "stale referral event ignored");
            return Ok(());
        };
        record(conn, &request, &step, &Actor::System).await?;
        Ok(())
    }
}
