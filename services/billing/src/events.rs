//! Event handlers. Each writes only through the connection it is given, in the transaction that also records
//! the message in the inbox: an event has its effect once, however often it is delivered. The read models
//! (tariffs and providers, members and their referents) are written here; a quote's life and invoicing (of
//! completed requests and of held sessions) are `flow`'s, which the handlers call with the event's facts, checked.

use chrono::DateTime;
use id77_platform::consumer::{Event, EventHandler, HandleError};
use id77_platform::{ConsumerSpec, time};
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::events::durables;
use id77_proto::membership::v1 as membership;
use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;
use id77_proto::vocabulary::PriceKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Accepted, Actor, Attendance, HeldSession, PriceRule, Stated, Tariff, Vat};
use crate::flow::invoices::{self, Completion};
use crate::flow::quotes::{self, Cancellation};
use crate::flow::sessions;
use crate::parties::{Issuers, ProviderFacts};
use crate::store;
use id77_platform::consumer::event_uuid as parse_uuid;

/// Offers of the catalogue, for the tariff read model.
pub fn offers_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_OFFERS)
}

/// Accepted referrals, which may call for a quote.
pub fn referrals_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_REFERRALS)
}

/// Completed requests, which may call for an invoice (requests decides; routing's referral.completed is only
/// the provider's claim).
pub fn request_completions_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_REQUEST_COMPLETIONS)
}

/// Cancelled requests, whose quotes are voided.
pub fn request_cancellations_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_REQUEST_CANCELLATIONS)
}

/// Membership's member events, for the referent read model.
pub fn members_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_MEMBERS)
}

/// Held training sessions (the catalogue's `session.held`), invoiced per participant.
pub fn sessions_consumer() -> ConsumerSpec {
    ConsumerSpec::from(durables::BILLING_SESSIONS)
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

/// Keeps `tariff` up to date from `OfferPublished`; an older version than the stored one is ignored.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(published) = event.decode_as::<catalogue::OfferPublished>()? else {
            tracing::debug!(subject = %event.subject, "catalogue event not used by billing");
            return Ok(());
        };
        if let Some(provider) = published.provider.as_ref().filter(|p| !p.code.trim().is_empty()) {
            let kind = match catalogue::ProviderKind::try_from(provider.kind) {
                Ok(catalogue::ProviderKind::DepartmentalService) => "departmental_service",
                Ok(catalogue::ProviderKind::AssociatedOrganisation) => "associated_organisation",
                _ => "unspecified",
            };
            let facts = ProviderFacts {
                code: provider.code.trim().to_owned(),
                name: provider.name.trim().to_owned(),
                kind: kind.to_owned(),
            };
            store::upsert_provider(conn, &facts).await?;
        }
        let offer = published.offer.ok_or_else(|| reject("OfferPublished without an offer".into()))?;
        let tariff = Tariff::parse(
            &offer.id,
            &offer.code,
            &offer.title,
            &offer.provider_code,
            offer.billed,
            offer.price_cents,
            offer.version,
        )
        .map_err(reject)?;
        let tariff = match offer_terms(&offer) {
            Ok(Some((rule, vat))) => tariff.with_terms(rule, vat),
            Ok(None) => tariff,
            Err(e) => return Err(reject(format!("offer {}: {e}", tariff.offer_id))),
        };
        let written = store::upsert_tariff(conn, &tariff).await?;
        if written {
            tracing::info!(offer_id = %tariff.offer_id, offer = %tariff.offer_code, version = tariff.version,
                billed = tariff.billed, price_cents = tariff.price_cents, "tariff updated");
        } else {
            tracing::debug!(offer_id = %tariff.offer_id, version = tariff.version, "tariff version already known");
        }
        Ok(())
    }
}

/// The offer's own price rule and VAT terms; `None` when it carries no price rule (legacy flat terms apply).
fn offer_terms(offer: &catalogue::Offer) -> Result<Option<(PriceRule, Vat)>, String> {
    let Some(rule) = offer.price_rule.as_ref() else { return Ok(None) };
    if catalogue::PriceKind::try_from(rule.kind).is_err() {
        return Err(format!("unknown price kind {}", rule.kind));
    }
    // Unspecified: the legacy terms apply.
    let Some(kind) = PriceKind::from_proto(rule.kind) else { return Ok(None) };
    let rule = PriceRule::new(kind, rule.amount_cents, rule.days, rule.floor_cents, rule.cap_cents)?;
    Ok(Some((rule, Vat::parse(offer.vat_rate_bp, &offer.vat_note)?)))
}

/// Proposes a quote to the member when a provider accepts a referral for a billed offer
/// (`flow::quotes::propose`).
pub struct ReferralAcceptedHandler {
    pub issuers: std::sync::Arc<Issuers>,
    /// How long a proposed quote waits for a member admin's answer (`ID77_QUOTE_VALIDITY_DAYS`).
    pub validity: chrono::Duration,
}

/// The accepted referral a routing event carries, with the amount its provider stated (`None`: not an
/// acceptance).
fn acceptance(event: &Event) -> Result<Option<(Accepted, Option<Stated>)>, HandleError> {
    let Some(msg) = event.decode_as::<routing::ReferralAccepted>()? else {
        tracing::debug!(subject = %event.subject, "routing event not used by billing");
        return Ok(None);
    };
    let accepted =
        Accepted::parse(&msg.referral_id, &msg.request_id, &msg.member_id, &msg.offer_id, &msg.provider_code)
            .map_err(reject)?;
    let stated = Stated::parse(msg.amount_cents, &msg.quote_note)
        .map_err(|e| reject(format!("referral {}: {e}", accepted.referral_id)))?;
    Ok(Some((accepted, stated)))
}

impl EventHandler for ReferralAcceptedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some((accepted, stated)) = acceptance(event)? else { return Ok(()) };
        quotes::propose(conn, &self.issuers, self.validity, &accepted, stated.as_ref()).await?;
        Ok(())
    }

    const BATCHES: bool = true;

    /// As [`Self::handle`] for each event in order, the referrals' contexts (quote already issued, request
    /// cancelled, tariff, member, provider) read in one statement for the batch, not one per referral (issue 23).
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let acceptances: Vec<(Accepted, Option<Stated>)> = events
            .iter()
            .map(|event| acceptance(event))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let keys: Vec<_> =
            acceptances.iter().map(|(a, _)| (a.referral_id, a.request_id, a.offer_id, a.member_id)).collect();
        let contexts = store::quoting_contexts(conn, &keys).await?;
        if contexts.len() != acceptances.len() {
            return Err(HandleError::Retry(anyhow::anyhow!(
                "{} contexts read for {} referrals",
                contexts.len(),
                keys.len()
            )));
        }
        for ((accepted, stated), context) in acceptances.iter().zip(contexts) {
            quotes::propose_in(conn, &self.issuers, self.validity, accepted, stated.as_ref(), context).await?;
        }
        Ok(())
    }
}

/// The validated facts of `RequestCompleted`.
fn completion(msg: &requests::RequestCompleted) -> Result<Completion, HandleError> {
    let referral_id = match msg.referral_id.trim() {
        "" => None,
        raw => Some(parse_uuid("referral_id", raw)?),
    };
    Ok(Completion {
        request_id: parse_uuid("request_id", &msg.request_id)?,
        member_id: parse_uuid("member_id", &msg.member_id)?,
        referral_id,
    })
}

/// Invoices a completed request's accepted quote (`flow::invoices::invoice_completed`, ADR 0013).
pub struct RequestCompletedHandler {
    pub issuers: std::sync::Arc<Issuers>,
}

impl EventHandler for RequestCompletedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(msg) = event.decode_as::<requests::RequestCompleted>()? else {
            tracing::debug!(subject = %event.subject, "requests event not used by billing");
            return Ok(());
        };
        let done = completion(&msg)?;
        invoices::invoice_completed(conn, &self.issuers, &done).await?;
        Ok(())
    }
}

/// The validated facts of `SessionHeld`.
fn held_session(msg: catalogue::SessionHeld) -> Result<HeldSession, HandleError> {
    let session = msg.session.ok_or_else(|| reject("SessionHeld without a session".into()))?;
    let session_id = parse_uuid("session.id", &session.id)?;
    let starts_at = session
        .starts_at
        .as_ref()
        .and_then(time::from_proto)
        .ok_or_else(|| reject(format!("session {session_id}: no valid starts_at")))?;
    let members = msg
        .members
        .iter()
        .map(|m| {
            Ok(Attendance {
                member_id: parse_uuid("members.member_id", &m.member_id)?,
                member_name: m.member_name.trim().to_owned(),
                attended: m.attended,
            })
        })
        .collect::<Result<Vec<_>, HandleError>>()?;
    HeldSession::new(
        session_id,
        parse_uuid("session.offer_id", &session.offer_id)?,
        &session.provider_code,
        &session.offer_title,
        starts_at,
        session.price_per_participant_cents,
        members,
    )
    .map_err(reject)
}

/// Invoices the members of a held session per participant who came (`flow::sessions::invoice_held`).
pub struct SessionHeldHandler {
    pub issuers: std::sync::Arc<Issuers>,
}

impl EventHandler for SessionHeldHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(msg) = event.decode_as::<catalogue::SessionHeld>()? else {
            tracing::debug!(subject = %event.subject, "catalogue event not used by billing");
            return Ok(());
        };
        let held = held_session(msg)?;
        sessions::invoice_held(conn, &self.issuers, &held).await?;
        Ok(())
    }
}

/// Voids the quotes of a cancelled request (`flow::quotes::void_cancelled`, ADR 0013).
pub struct RequestCancelledHandler;

impl EventHandler for RequestCancelledHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(msg) = event.decode_as::<requests::RequestCancelled>()? else {
            tracing::debug!(subject = %event.subject, "requests event not used by billing");
            return Ok(());
        };
        let cancellation = Cancellation {
            request_id: parse_uuid("request_id", &msg.request_id)?,
            reason: msg.reason,
            at: msg.occurred_at.as_ref().and_then(time::from_proto).unwrap_or_else(time::now),
            actor: Actor {
                user_id: match msg.actor_user_id.trim() {
                    "" => None,
                    raw => Uuid::parse_str(raw).ok(),
                },
                role: msg.actor_role.trim().to_owned(),
                name: msg.actor_name.trim().to_owned(),
            },
        };
        quotes::void_cancelled(conn, &cancellation).await?;
        Ok(())
    }
}

/// Keeps the member read model (SIREN, population) from `MemberApproved` and `MemberUpdated`, and
/// `member_referent` (who follows the member) from `MemberUpdated`; other member events are not used.
pub struct MemberHandler;

impl EventHandler for MemberHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if let Some(msg) = event.decode_as::<membership::MemberApproved>()? {
            return member_approved(conn, msg).await;
        }
        if let Some(msg) = event.decode_as::<membership::MemberUpdated>()? {
            return member_updated(conn, msg).await;
        }
        tracing::debug!(subject = %event.subject, "membership event not used by billing");
        Ok(())
    }
}

fn parse_member(raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("member_id {raw:?} is not a UUID")))
}

fn population(p: i64) -> Option<i64> {
    if p > 0 { Some(p) } else { None }
}

async fn member_approved(conn: &mut PgConnection, msg: membership::MemberApproved) -> Result<(), HandleError> {
    let member_id = parse_member(&msg.member_id)?;
    // Without a time, the facts count as the oldest known: any dated event overrides them.
    let at = msg.occurred_at.as_ref().and_then(time::from_proto).unwrap_or(DateTime::UNIX_EPOCH);
    store::upsert_member(conn, member_id, msg.siren.trim(), msg.name.trim(), population(msg.population), at).await?;
    tracing::info!(%member_id, population = msg.population, "member facts recorded");
    Ok(())
}

async fn member_updated(conn: &mut PgConnection, msg: membership::MemberUpdated) -> Result<(), HandleError> {
    let member_id = parse_member(&msg.member_id)?;
    let referent = match msg.referent_user_id.trim() {
        "" => None,
        raw => Some(Uuid::parse_str(raw).map_err(|_| reject(format!("referent_user_id {raw:?} is not a UUID")))?),
    };
    let at = msg
        .occurred_at
        .as_ref()
        .and_then(time::from_proto)
        .ok_or_else(|| reject("MemberUpdated without a valid occurred_at".into()))?;
    store::upsert_member_referent(conn, member_id, referent, at).await?;
    store::upsert_member(conn, member_id, msg.siren.trim(), "", population(msg.population), at).await?;
    tracing::info!(%member_id, referent = ?referent, "member referent recorded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(member_id: &str, starts: bool) -> catalogue::SessionHeld {
        catalogue::SessionHeld {
            session: Some(catalogue::Session {
                id: Uuid::from_u128(1).to_string(),
                offer_id: Uuid::from_u128(2).to_string(),
                offer_title: "Atelier PLU".into(),
                provider_code: "caue77".into(),
                starts_at: starts.then_some(prost_types::Timestamp { seconds: 1_799_743_800, nanos: 0 }),
                price_per_participant_cents: 5_000,
                ..Default::default()
            }),
            members: vec![catalogue::MemberAttendance {
                member_id: member_id.into(),
                member_name: " Commune de Meaux ".into(),
                attended: 2,
                ..Default::default()
            }],
            occurred_at: None,
        }
    }

    #[test]
    fn a_session_held_is_read_or_rejected_never_retried() {
        let member = Uuid::from_u128(3).to_string();
        let session = held_session(held(&member, true)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((session.session_id, session.offer_id), (Uuid::from_u128(1), Uuid::from_u128(2)));
        assert_eq!(session.members[0].member_name, "Commune de Meaux");
        assert_eq!(session.charges().map(|c| c[0].1.net_cents), Some(10_000));
        let rejected = |msg| matches!(held_session(msg), Err(HandleError::Reject(_)));
        assert!(rejected(catalogue::SessionHeld::default()), "no session");
        assert!(rejected(held("not-a-uuid", true)), "member id");
        assert!(rejected(held(&member, false)), "no start");
        let mut negative = held(&member, true);
        if let Some(s) = negative.session.as_mut() {
            s.price_per_participant_cents = -1;
        }
        assert!(rejected(negative), "negative price");
    }
}
