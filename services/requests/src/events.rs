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
use crate::notify::domain::CancelCause;
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

/// What a step tells beyond itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause<'a> {
    /// The referral whose event made the step: `request.completed` carries it (billing invoices its accepted
    /// quote).
    pub referral_id: &'a str,
    /// Why a cancellation happened (a person, a refused or expired quote): the provider's mail says it.
    pub cancel: CancelCause<'a>,
    /// The provider known to hold the request when requests' own state does not say so yet (a quote's issuer
    /// whose acceptance requests has not consumed yet): told of a cancellation all the same.
    pub provider: Option<&'a str>,
}

/// Records a step (status, history row by `actor`) and the events it emits through the outbox:
/// `request.status_changed` on every step (and the member's users' mails), `request.completed` on completion
/// (with the referral), `request.cancelled` on cancellation (with who and the provider that held the request,
/// whose agents get a mail).
pub async fn record(
    conn: &mut PgConnection,
    row: &RequestRow,
    step: &Step,
    actor: &Actor,
    cause: &Cause<'_>,
) -> Result<(), sqlx::Error> {
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
                referral_id: cause.referral_id.trim().to_owned(),
            };
            outbox::enqueue(conn, SUBJECT_COMPLETED, &event).await?;
        }
        RequestStatus::Cancelled => {
            let provider = step.provider_before().or(cause.provider.map(str::trim).filter(|p| !p.is_empty()));
            let event = RequestCancelled {
                request_id: row.id.to_string(),
                member_id: row.member_id.to_string(),
                reason: step.reason.clone(),
                occurred_at: Some(time::to_proto(step.at)),
                actor_user_id: actor.user_id().map(|id| id.to_string()).unwrap_or_default(),
                actor_role: actor.role().to_owned(),
                actor_name: actor.name().to_owned(),
                provider_code: provider.unwrap_or_default().to_owned(),
            };
            outbox::enqueue(conn, SUBJECT_CANCELLED, &event).await?;
            if let Some(provider) = provider {
                let told =
                    crate::notify::cancelled_for_provider(conn, event_id, row, provider, step, actor, cause.cancel)
                        .await?;
                tracing::info!(request_id = %row.id, provider, agents = told, "provider told of the cancellation");
            }
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

/// What requests takes from one of routing's referral events.
struct Routed {
    request_id: String,
    trigger: Trigger,
    at: DateTime<Utc>,
    /// A provider's answer (accepted, declined): dates the first answer.
    answer: bool,
    /// The referral's offer (an open request takes it).
    offer_id: String,
    referral_id: String,
    actor: Actor,
    /// The coordinator's note when it placed the request by hand.
    note: String,
}

/// Moves requests along with routing's referral events (offered, accepted, declined, expired, withdrawn,
/// progressed, completed), in any order: a stale or repeated event changes nothing. Each step names who did it
/// as routing says (the coordinator, an agent, a provider's connector; the platform for routing's timers).
pub struct ReferralEvents;

fn routed(event: &Event) -> Result<Option<Routed>, HandleError> {
    Ok(Some(match event.subject.as_str() {
        "id77.routing.referral.offered" => {
            let e: ReferralOffered = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Offered { provider: e.provider_code },
                answer: false,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: e.note,
            }
        }
        "id77.routing.referral.accepted" => {
            let e: ReferralAccepted = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Accepted { provider: e.provider_code },
                answer: true,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        "id77.routing.referral.declined" => {
            let e: ReferralDeclined = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Declined {
                    provider: e.provider_code,
                    reason: e.reason,
                    next: next(e.rerouted, &e.next_provider_code),
                },
                answer: true,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        "id77.routing.referral.expired" => {
            // Routing's own timer: the platform did it.
            let e: ReferralExpired = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::System,
                trigger: Trigger::Expired { provider: e.provider_code, next: next(e.rerouted, &e.next_provider_code) },
                answer: false,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        "id77.routing.referral.withdrawn" => {
            let e: ReferralWithdrawn = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Withdrawn { provider: e.provider_code, reason: e.reason },
                answer: false,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        "id77.routing.referral.progressed" => {
            let e: ReferralProgressed = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Progressed { provider: e.provider_code, note: e.note },
                answer: false,
                request_id: e.request_id,
                offer_id: String::new(),
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        "id77.routing.referral.completed" => {
            let e: ReferralCompleted = event.decode()?;
            Routed {
                at: routed_at(e.occurred_at.as_ref()),
                actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
                trigger: Trigger::Completed { provider: e.provider_code },
                answer: false,
                request_id: e.request_id,
                offer_id: e.offer_id,
                referral_id: e.referral_id,
                note: String::new(),
            }
        }
        _ => return Ok(None),
    }))
}

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(r) = routed(event)? else {
            return Ok(());
        };
        let request_id = uuid("request_id", &r.request_id)?;
        let Some(mut request) = store::request_for_update(conn, request_id).await? else {
            return Err(HandleError::Reject(anyhow!("referral event for unknown request {request_id}")));
        };
        // An open orientation request gets the offer the coordinator attached at triage.
        if request.offer_id.is_none()
            && let Ok(offer_id) = Uuid::parse_str(r.offer_id.trim())
        {
            let Some(offer) = store::offer(conn, offer_id).await? else {
                return Err(HandleError::Retry(anyhow!("offer {offer_id} of request {request_id} not yet known")));
            };
            if store::attach_offer(conn, request_id, &offer).await? {
                tracing::info!(%request_id, %offer_id, "offer attached to an open request");
                request.offer_id = Some(offer_id);
            }
        }
        if r.answer {
            store::mark_answered(conn, request_id, r.at).await?;
        }
        let state = state_of(&request).map_err(|e| HandleError::Reject(anyhow!(e)))?;
        let step = lifecycle::apply(&state, &r.trigger, r.at).map_err(|e| HandleError::Reject(anyhow!(e.message)))?;
        let Some(step) = step else {
            // A cancellation recorded first makes a later completion stale: requests decides (ADR 0013).
            tracing::info!(%request_id, status = state.status.as_str(), trigger = r.trigger.name(), referral_id = %r.referral_id, "stale referral event ignored");
            return Ok(());
        };
        let step = step.with_note(&r.note);
        let cause = Cause { referral_id: &r.referral_id, ..Cause::default() };
        record(conn, &request, &step, &r.actor, &cause).await?;
        Ok(())
    }
}
