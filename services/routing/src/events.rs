//! Consumers of routing. Each handler writes only through the connection it is handed, so its effect, its
//! outbox events and the inbox record of the message commit together.

use id77_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use id77_platform::streams::{self, is_valid_subject_token, referral_offered_subject};
use id77_platform::{outbox, time};
use id77_proto::catalogue::v1::OfferPublished;
use id77_proto::requests::v1::RequestSubmitted;
use id77_proto::routing::v1::{ReferralAccepted, ReferralDeclined, ReferralOffered, ReferralReply, ReplyDecision};
use prost::Name;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, OfferView, ReferralStatus, Reply, WireDecision};
use crate::store::{self, OfferRow, ReferralRow};

/// Integration event for requests (stream ROUTING); the provider's own copy goes to
/// `id77.referrals.<provider_code>.offered` (stream REFERRALS).
pub const SUBJECT_OFFERED: &str = "id77.routing.referral.offered";
pub const SUBJECT_ACCEPTED: &str = "id77.routing.referral.accepted";
pub const SUBJECT_DECLINED: &str = "id77.routing.referral.declined";

pub const DURABLE_OFFERS: &str = "routing-offers";
pub const DURABLE_REQUESTS: &str = "routing-requests";
pub const DURABLE_REPLIES: &str = "routing-replies";

/// Longest offer code or provider-facing text field accepted from the catalogue.
const MAX_CODE_CHARS: usize = 200;

/// Offers published by the catalogue.
pub fn offers_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::CATALOGUE, DURABLE_OFFERS, "id77.catalogue.offer.>")
}

/// Requests submitted by members.
pub fn requests_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::REQUESTS, DURABLE_REQUESTS, "id77.requests.request.submitted")
}

/// Replies of every provider, each on its own subject.
pub fn replies_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::REFERRALS, DURABLE_REPLIES, "id77.referrals.*.reply")
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("{field} {raw:?} is not a UUID")))
}

/// Keeps the `offer` read model: the newest version of every offer.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // The filter also brings other offer events (updated, archived...): only publications feed the model.
        if !event.event_type.is_empty() && event.event_type != OfferPublished::full_name() {
            tracing::debug!(event_type = %event.event_type, "not an offer publication; ignored");
            return Ok(());
        }
        let published: OfferPublished = event.decode()?;
        let offer = published.offer.ok_or_else(|| reject("OfferPublished without an offer".to_owned()))?;
        let offer_id = parse_uuid("offer.id", &offer.id)?;
        if offer.code.trim().is_empty() || offer.code.chars().count() > MAX_CODE_CHARS {
            return Err(reject(format!("offer {offer_id} has an empty or oversized code")));
        }
        if !is_valid_subject_token(&offer.provider_code) {
            return Err(reject(format!("offer {offer_id} has an invalid provider code {:?}", offer.provider_code)));
        }
        let row = OfferRow {
            offer_id,
            code: offer.code,
            title: offer.title,
            provider_code: offer.provider_code,
            version: offer.version,
        };
        if store::upsert_offer(conn, &row).await? {
            tracing::info!(%offer_id, code = %row.code, version = row.version, provider = %row.provider_code, "offer known");
        } else {
            tracing::info!(%offer_id, version = row.version, "older or same offer version ignored");
        }
        Ok(())
    }
}

/// Turns each submitted request into one referral to one provider.
pub struct RequestHandler;

impl EventHandler for RequestHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let submitted: RequestSubmitted = event.decode()?;
        let request_id = parse_uuid("request_id", &submitted.request_id)?;
        let member_id = parse_uuid("member_id", &submitted.member_id)?;
        let now = time::now();
        if submitted.offer_id.trim().is_empty() {
            // An open "orientation" request: no offer, so no automatic provider. The coordinator triages it.
            if store::queue_for_triage(conn, request_id, member_id, &submitted.subject, &submitted.description, now)
                .await?
            {
                tracing::info!(%request_id, "open request queued for triage");
            }
            return Ok(());
        }
        let offer_id = parse_uuid("offer_id", &submitted.offer_id)?;
        let Some(offer) = store::get_offer(conn, offer_id).await? else {
            // The catalogue's event has not reached us yet: try again later.
            return Err(HandleError::Retry(anyhow::anyhow!("offer {offer_id} of request {request_id} not yet known")));
        };
        let assignment = domain::choose_provider(&OfferView {
            code: offer.code.clone(),
            provider_code: offer.provider_code.clone(),
        })
        .map_err(reject)?;
        let row = ReferralRow {
            id: Uuid::now_v7(),
            request_id,
            offer_id,
            member_id,
            provider_code: assignment.provider_code,
            status: ReferralStatus::Offered.as_str().to_owned(),
            reason: String::new(),
            assignment: assignment.explanation,
            offered_at: now,
            decided_at: None,
        };
        let Some(referral) = store::insert_referral(conn, &row).await? else {
            tracing::info!(%request_id, "request already referred; replay ignored");
            return Ok(());
        };
        let offered = ReferralOffered {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            offer_id: referral.offer_id.to_string(),
            offer_code: offer.code,
            offer_title: offer.title,
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            subject: submitted.subject,
            description: submitted.description,
            occurred_at: Some(time::to_proto(now)),
        };
        outbox::enqueue(conn, &referral_offered_subject(&referral.provider_code), &offered).await?;
        outbox::enqueue(conn, SUBJECT_OFFERED, &offered).await?;
        tracing::info!(
            referral_id = %referral.id,
            %request_id,
            provider = %referral.provider_code,
            assignment = %referral.assignment,
            "referral offered"
        );
        Ok(())
    }
}

/// Applies providers' replies to their own referrals.
pub struct ReplyHandler;

impl EventHandler for ReplyHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let provider = domain::reply_subject_provider(&event.subject)
            .ok_or_else(|| reject(format!("{} is not a provider reply subject", event.subject)))?;
        let message: ReferralReply = event.decode()?;
        let referral_id = parse_uuid("referral_id", &message.referral_id)?;
        let decision = match ReplyDecision::try_from(message.decision) {
            Ok(ReplyDecision::Accept) => WireDecision::Accept,
            Ok(ReplyDecision::Decline) => WireDecision::Decline,
            Ok(ReplyDecision::Unspecified) | Err(_) => WireDecision::Unspecified,
        };
        let reply = Reply::parse(decision, &message.reason)
            .map_err(|e| reject(format!("invalid reply of {provider} to referral {referral_id}: {e}")))?;
        let referral = store::referral_for_update(conn, referral_id)
            .await?
            .ok_or_else(|| reject(format!("{provider} replied to unknown referral {referral_id}")))?;
        if referral.provider_code != provider {
            // A provider can only answer the referrals sent to it.
            return Err(reject(format!(
                "{provider} replied to referral {referral_id}, which was offered to {}",
                referral.provider_code
            )));
        }
        let status = ReferralStatus::parse(&referral.status)
            .ok_or_else(|| reject(format!("referral {referral_id} has an unknown status {}", referral.status)))?;
        let next = match status.apply(reply.transition()) {
            Ok(next) => next,
            Err(error) => {
                tracing::info!(%referral_id, %provider, %error, "reply to a decided referral ignored");
                return Ok(());
            }
        };
        let now = time::now();
        let referral = store::decide(conn, referral_id, next.as_str(), reply.reason(), now).await?;
        match reply {
            Reply::Accept => {
                let accepted = ReferralAccepted {
                    referral_id: referral.id.to_string(),
                    request_id: referral.request_id.to_string(),
                    offer_id: referral.offer_id.to_string(),
                    member_id: referral.member_id.to_string(),
                    provider_code: referral.provider_code.clone(),
                    occurred_at: Some(time::to_proto(now)),
                };
                outbox::enqueue(conn, SUBJECT_ACCEPTED, &accepted).await?;
            }
            Reply::Decline { reason } => {
                let declined = ReferralDeclined {
                    referral_id: referral.id.to_string(),
                    request_id: referral.request_id.to_string(),
                    offer_id: referral.offer_id.to_string(),
                    member_id: referral.member_id.to_string(),
                    provider_code: referral.provider_code.clone(),
                    reason,
                    occurred_at: Some(time::to_proto(now)),
                };
                outbox::enqueue(conn, SUBJECT_DECLINED, &declined).await?;
            }
        }
        tracing::info!(%referral_id, %provider, status = next.as_str(), "referral decided");
        Ok(())
    }
}
