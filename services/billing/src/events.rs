//! Event handlers. Each writes only through the connection it is given, in the transaction that also records
//! the message in the inbox: an event has its effect once, however often it is delivered.

use id77_platform::consumer::{Event, EventHandler, HandleError};
use id77_platform::{ConsumerSpec, streams, time};
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::membership::v1 as membership;
use id77_proto::routing::v1 as routing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Accepted, DecideError, Decision, Tariff};
use crate::quotes::{self, QuoteDraft};
use crate::store;

pub const SUBJECT_OFFER_PUBLISHED: &str = "id77.catalogue.offer.published";
pub const SUBJECT_REFERRAL_ACCEPTED: &str = "id77.routing.referral.accepted";
pub const SUBJECT_MEMBER_UPDATED: &str = "id77.membership.member.updated";

/// Offers of the catalogue, for the tariff read model.
pub fn offers_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::CATALOGUE, "billing-offers", "id77.catalogue.offer.>")
}

/// Accepted referrals, which may call for a quote.
pub fn referrals_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::ROUTING, "billing-referrals", SUBJECT_REFERRAL_ACCEPTED)
}

/// Membership's member events, for the referent read model.
pub fn members_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::MEMBERSHIP, "billing-members", "id77.membership.member.>")
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

/// Keeps `tariff` up to date from `OfferPublished`; an older version than the stored one is ignored.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_OFFER_PUBLISHED {
            tracing::debug!(subject = %event.subject, "catalogue event not used by billing");
            return Ok(());
        }
        let published: catalogue::OfferPublished = event.decode()?;
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

/// Issues a quote when a provider accepts a referral for a billed offer.
pub struct ReferralAcceptedHandler;

impl EventHandler for ReferralAcceptedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_REFERRAL_ACCEPTED {
            tracing::debug!(subject = %event.subject, "routing event not used by billing");
            return Ok(());
        }
        let msg: routing::ReferralAccepted = event.decode()?;
        let accepted =
            Accepted::parse(&msg.referral_id, &msg.request_id, &msg.member_id, &msg.offer_id, &msg.provider_code)
                .map_err(reject)?;
        // A replay under another message id: the referral already has its quote.
        if let Some(quote) = store::quote_for_referral(conn, accepted.referral_id).await? {
            tracing::info!(referral_id = %accepted.referral_id, number = %quote.number, "referral already quoted");
            return Ok(());
        }
        let tariff = match accepted.offer_id {
            Some(offer_id) => store::tariff(conn, offer_id).await?,
            None => None,
        };
        let decision = match domain::decide(&accepted, tariff.as_ref()) {
            Ok(decision) => decision,
            // The catalogue's event may still be on its way: try again later.
            Err(DecideError::UnknownTariff) => {
                return Err(HandleError::Retry(anyhow::anyhow!(
                    "tariff of offer {} not known yet",
                    accepted.offer_id.map(|id| id.to_string()).unwrap_or_default()
                )));
            }
            Err(DecideError::Inconsistent(reason)) => {
                return Err(reject(format!("referral {}: {reason}", accepted.referral_id)));
            }
        };
        let draft = match decision {
            Decision::NothingToBill => {
                tracing::info!(referral_id = %accepted.referral_id, "referral without an offer: nothing to bill");
                return Ok(());
            }
            Decision::Free => {
                tracing::info!(referral_id = %accepted.referral_id, "free offer: no quote");
                return Ok(());
            }
            Decision::Quote { issuer_code, amount_cents, label, offer_id, offer_version } => {
                if issuer_code != accepted.provider_code {
                    tracing::warn!(referral_id = %accepted.referral_id, offer_provider = %issuer_code,
                        referral_provider = %accepted.provider_code,
                        "referral accepted by another provider than the offer's; the offer's provider issues the quote");
                }
                QuoteDraft {
                    issuer_code,
                    member_id: accepted.member_id,
                    request_id: accepted.request_id,
                    referral_id: accepted.referral_id,
                    offer_id,
                    offer_version,
                    label,
                    amount_cents,
                }
            }
        };
        let quote = quotes::issue(conn, draft, time::now()).await?;
        tracing::info!(quote_id = %quote.id, number = %quote.number, referral_id = %quote.referral_id,
            member_id = %quote.member_id, amount_cents = quote.amount_cents, "quote issued");
        Ok(())
    }
}

/// Keeps `member_referent` from `MemberUpdated` (who follows the member); other member events are not used.
pub struct MemberHandler;

impl EventHandler for MemberHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_MEMBER_UPDATED {
            tracing::debug!(subject = %event.subject, "membership event not used by billing");
            return Ok(());
        }
        let msg: membership::MemberUpdated = event.decode()?;
        let member_id = Uuid::parse_str(msg.member_id.trim())
            .map_err(|_| reject(format!("member_id {:?} is not a UUID", msg.member_id)))?;
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
        tracing::info!(%member_id, referent = ?referent, "member referent recorded");
        Ok(())
    }
}
