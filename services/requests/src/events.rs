//! Handlers of the events requests consumes: membership (member status, referent, territory), catalogue
//! (offers) and routing (referral outcomes). Each runs inside the inbox transaction, dispatches by the event's
//! type, keeps a read model or maps the event and calls its flow ([`crate::flow`]).

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::catalogue::v1::OfferPublished;
use id77_proto::membership::v1::{MemberApplied, MemberApproved, MemberUpdated};
use id77_proto::routing::v1::{
    ReferralAccepted, ReferralCompleted, ReferralDeclined, ReferralExpired, ReferralOffered, ReferralProgressed,
    ReferralWithdrawn,
};
use id77_proto::vocabulary::{Category, MemberKind};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::{Actor, Next, Trigger};
use crate::domain::names;
use crate::flow::FlowError;
use crate::flow::referrals::{self, Routed};
use crate::notify::Mailbag;
use crate::store::{self, RequestRow, Steps, Territory};
use id77_platform::consumer::event_uuid as uuid;
use std::collections::{HashMap, HashSet};

impl From<FlowError> for HandleError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Db(e) => e.into(),
            FlowError::NotYet(why) => Self::Retry(anyhow!(why)),
            FlowError::Refused(why) => Self::Reject(anyhow!(why)),
        }
    }
}

/// When the event happened, by the publisher's clock. Required: read models order updates by it.
fn occurred(ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<DateTime<Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| HandleError::Reject(anyhow!("event without a valid occurred_at")))
}

/// A member's territory as membership states it (`kind`: its `CollectivityKind`).
fn territory(kind: i32, insee_code: &str, epci_siren: &str, arrondissement: &str) -> Territory {
    Territory {
        kind: MemberKind::from_collectivity(kind).map_or("", MemberKind::as_str).to_owned(),
        insee_code: insee_code.trim().to_owned(),
        epci_siren: epci_siren.trim().to_owned(),
        arrondissement: arrondissement.trim().to_owned(),
    }
}

/// Keeps the member status, referent and territory read models.
pub struct MemberEvents;

impl EventHandler for MemberEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if let Some(e) = event.decode_as::<MemberUpdated>()? {
            let member_id = uuid("member_id", &e.member_id)?;
            let referent = referent(&e.referent_user_id)?;
            let at = occurred(e.occurred_at.as_ref())?;
            store::upsert_member_referent(conn, member_id, referent, at).await?;
            let territory = territory(e.kind, &e.insee_code, &e.epci_siren, &e.arrondissement);
            store::upsert_member_territory(conn, member_id, &territory, at).await?;
            tracing::info!(%member_id, referent = ?referent, "member referent recorded");
            return Ok(());
        }
        crate::notify::agents::on_member_event(conn, event).await?;
        let (member_id, status, at) = if let Some(e) = event.decode_as::<MemberApplied>()? {
            (uuid("member_id", &e.member_id)?, "pending", occurred(e.occurred_at.as_ref())?)
        } else if let Some(e) = event.decode_as::<MemberApproved>()? {
            let member_id = uuid("member_id", &e.member_id)?;
            let at = occurred(e.occurred_at.as_ref())?;
            let territory = territory(e.kind, &e.insee_code, &e.epci_siren, &e.arrondissement);
            store::upsert_member_territory(conn, member_id, &territory, at).await?;
            (member_id, "active", at)
        } else {
            tracing::debug!(subject = %event.subject, "membership event not used by requests");
            return Ok(());
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

/// Keeps the offer read model (with each offer's current version and category) and its provider's name.
pub struct OfferEvents;

impl EventHandler for OfferEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(e) = event.decode_as::<OfferPublished>()? else {
            return Ok(());
        };
        let offer = e.offer.ok_or_else(|| HandleError::Reject(anyhow!("offer.published without offer")))?;
        let id = uuid("offer.id", &offer.id)?;
        // "" when the category is unspecified.
        let category = Category::from_proto(offer.category).map_or("", Category::as_str);
        store::upsert_offer(conn, id, &offer.code, &offer.title, &offer.provider_code, offer.version, category).await?;
        // The provider the event names, if it is the offer's (its name is what people read, issue 21).
        if let Some(provider) =
            e.provider.filter(|p| !p.code.trim().is_empty() && p.code.trim() == offer.provider_code.trim())
        {
            let name: String = provider.name.trim().chars().take(names::MAX_NAME_CHARS).collect();
            store::upsert_provider(conn, &provider.code, &name).await?;
        }
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

/// Moves requests along with routing's referral events ([`referrals`]). Each step names who did it as routing
/// says (the coordinator, an agent, a provider's connector; the platform for routing's timers).
pub struct ReferralEvents;

/// What requests takes from one of routing's referral events (`None`: not one requests follows).
fn routed(event: &Event) -> Result<Option<Routed>, HandleError> {
    if let Some(e) = event.decode_as::<ReferralOffered>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Offered { provider: e.provider_code },
            answer: false,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: e.note,
        }));
    }
    if let Some(e) = event.decode_as::<ReferralAccepted>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Accepted { provider: e.provider_code },
            answer: true,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    if let Some(e) = event.decode_as::<ReferralDeclined>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Declined {
                provider: e.provider_code,
                reason: e.reason,
                next: next(e.rerouted, &e.next_provider_code),
            },
            answer: true,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    if let Some(e) = event.decode_as::<ReferralExpired>()? {
        // Routing's own timer: the platform did it.
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::System,
            trigger: Trigger::Expired { provider: e.provider_code, next: next(e.rerouted, &e.next_provider_code) },
            answer: false,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    if let Some(e) = event.decode_as::<ReferralWithdrawn>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Withdrawn { provider: e.provider_code, reason: e.reason },
            answer: false,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    if let Some(e) = event.decode_as::<ReferralProgressed>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Progressed { provider: e.provider_code, note: e.note },
            answer: false,
            offer_id: String::new(),
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    if let Some(e) = event.decode_as::<ReferralCompleted>()? {
        return Ok(Some(Routed {
            request_id: uuid("request_id", &e.request_id)?,
            at: routed_at(e.occurred_at.as_ref()),
            actor: Actor::from_event(&e.actor_user_id, &e.actor_role, &e.actor_name),
            trigger: Trigger::Completed { provider: e.provider_code },
            answer: false,
            offer_id: e.offer_id,
            referral_id: e.referral_id,
            note: String::new(),
        }));
    }
    Ok(None)
}

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (mut mails, mut steps) = (Mailbag::default(), Steps::default());
        crate::notify::agents::on_referral_event(conn, &mut mails, event).await?;
        if let Some(routed) = routed(event)? {
            referrals::apply(conn, &mut mails, &mut steps, routed).await?;
        }
        steps.write(conn).await?;
        mails.write(conn).await?;
        Ok(())
    }

    const BATCHES: bool = true;

    /// As [`Self::handle`] for each event in order, with the batch's requests locked (in id order), its providers'
    /// names and its mails' recipients read, and its steps and its mails written, in one statement each, not per
    /// event (issue 23).
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let routed = events.iter().map(|event| routed(event)).collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<Uuid> = routed.iter().flatten().map(|r| r.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut locked: HashMap<Uuid, RequestRow> =
            store::requests_for_update(conn, &ids).await?.into_iter().map(|row| (row.id, row)).collect();
        let names = {
            let codes: Vec<&str> = routed.iter().flatten().flat_map(|r| r.trigger.providers()).collect();
            store::provider_names(conn, &codes).await?
        };
        let mut mails = Mailbag::default();
        let members: Vec<Uuid> = locked.values().map(|row| row.member_id).collect();
        let providers: Vec<&str> = routed.iter().flatten().flat_map(|r| r.trigger.providers()).collect();
        mails.load(conn, &members, &providers).await?;
        let mut steps = Steps::default();
        let mut seen = HashSet::new();
        for (event, routed) in events.iter().zip(routed) {
            crate::notify::agents::on_referral_event(conn, &mut mails, event).await?;
            let Some(routed) = routed else { continue };
            let request = again(conn, &mut locked, &mut seen, &steps, routed.request_id).await?;
            referrals::apply_locked(conn, &mut mails, &mut steps, routed, request, &names).await?;
        }
        steps.write(conn).await?;
        mails.write(conn).await?;
        Ok(())
    }
}

/// The request an event of a batch applies to: the first of its events finds it as locked with the batch; a later
/// one as the batch's steps left it, else (no step yet) reads it again (an earlier event may have attached an
/// offer).
pub(crate) async fn again(
    conn: &mut PgConnection,
    locked: &mut HashMap<Uuid, RequestRow>,
    seen: &mut HashSet<Uuid>,
    steps: &Steps,
    id: Uuid,
) -> Result<Option<RequestRow>, sqlx::Error> {
    if seen.insert(id) {
        return Ok(locked.remove(&id));
    }
    match steps.moved(id) {
        Some(row) => Ok(Some(row.clone())),
        None => store::request_for_update(conn, id).await,
    }
}
