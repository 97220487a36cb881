//! The catalogue's events, both ways. Published through the outbox (in the caller's transaction):
//! `offer.published`, `offer.updated`, `offer.archived`, `booking.confirmed`, `booking.released`. Consumed
//! (idempotent inbox consumers): membership's member events, for the "eligible for my collectivité" read
//! model; routing's referral outcomes, which confirm (accepted) or release (declined, expired, withdrawn) the
//! copies held for the request.

use anyhow::anyhow;
use id77_platform::{ConsumerSpec, ErrorCode, Event, EventHandler, HandleError, ServiceError, outbox, streams, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::membership::v1 as membership;
use id77_proto::routing::v1 as routing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::booking::{self, BookingStatus, Step};
use crate::domain::{MemberKind, Provider};
use crate::grpc::{booking_to_proto, provider_to_proto};
use crate::store::{self, BookingRow, OfferRow};

pub const SUBJECT_OFFER_PUBLISHED: &str = "id77.catalogue.offer.published";
pub const SUBJECT_OFFER_UPDATED: &str = "id77.catalogue.offer.updated";
pub const SUBJECT_OFFER_ARCHIVED: &str = "id77.catalogue.offer.archived";
pub const SUBJECT_BOOKING_CONFIRMED: &str = "id77.catalogue.booking.confirmed";
pub const SUBJECT_BOOKING_RELEASED: &str = "id77.catalogue.booking.released";

/// Durable consumer of membership's member events.
pub const DURABLE_MEMBERS: &str = "catalogue-members";
/// Durable consumer of routing's referral outcomes.
pub const DURABLE_REFERRALS: &str = "catalogue-referrals";

pub fn members_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::MEMBERSHIP, DURABLE_MEMBERS, "id77.membership.member.>")
}

pub fn referrals_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::ROUTING, DURABLE_REFERRALS, "id77.routing.referral.>")
}

pub async fn offer_published(
    conn: &mut PgConnection,
    offer: pb::Offer,
    provider: &Provider,
) -> Result<(), sqlx::Error> {
    let event = pb::OfferPublished { offer: Some(offer), provider: Some(provider_to_proto(provider)) };
    outbox::enqueue(conn, SUBJECT_OFFER_PUBLISHED, &event).await.map(|_| ())
}

pub async fn offer_updated(
    conn: &mut PgConnection,
    offer: &pb::Offer,
    provider: &Provider,
    previous_version: i32,
) -> Result<(), sqlx::Error> {
    let event = pb::OfferUpdated {
        offer: Some(offer.clone()),
        provider: Some(provider_to_proto(provider)),
        previous_version,
        occurred_at: Some(time::to_proto(time::now())),
    };
    outbox::enqueue(conn, SUBJECT_OFFER_UPDATED, &event).await.map(|_| ())
}

pub async fn offer_archived(conn: &mut PgConnection, offer: &OfferRow, reason: &str) -> Result<(), sqlx::Error> {
    let event = pb::OfferArchived {
        offer_id: offer.id.to_string(),
        code: offer.code.clone(),
        version: offer.version,
        provider_code: offer.provider_code.clone(),
        reason: reason.to_owned(),
        occurred_at: Some(time::to_proto(time::now())),
    };
    outbox::enqueue(conn, SUBJECT_OFFER_ARCHIVED, &event).await.map(|_| ())
}

fn booking_status(b: &BookingRow) -> Result<BookingStatus, ServiceError> {
    BookingStatus::parse(&b.status).ok_or_else(|| ServiceError::internal("reading a booking", &b.status))
}

/// Confirms a held booking (locked by the caller) and announces it; a confirmed one is returned as is.
pub async fn confirm_booking(conn: &mut PgConnection, b: &BookingRow) -> Result<BookingRow, ServiceError> {
    match booking::confirm(booking_status(b)?) {
        Ok(Step::AlreadyDone) => Ok(b.clone()),
        Ok(Step::To(next)) => {
            store::set_booking_status(conn, b.id, next.as_str(), "").await?;
            let row = store::booking(conn, b.id).await?.ok_or_else(|| ServiceError::internal("confirming", b.id))?;
            let event = pb::BookingConfirmed {
                booking: Some(booking_to_proto(&row)),
                occurred_at: Some(time::to_proto(time::now())),
            };
            outbox::enqueue(conn, SUBJECT_BOOKING_CONFIRMED, &event).await?;
            tracing::info!(booking = %b.id, "booking confirmed");
            Ok(row)
        }
        Err(status) => Err(ServiceError::new(
            ErrorCode::FailedPrecondition,
            "INVALID_TRANSITION",
            format!("a {} booking cannot be confirmed", status.as_str()),
        )),
    }
}

/// Releases a live booking (locked by the caller) and announces it; a released one is returned as is.
pub async fn release_booking(
    conn: &mut PgConnection,
    b: &BookingRow,
    reason: &str,
) -> Result<BookingRow, ServiceError> {
    match booking::release(booking_status(b)?) {
        Step::AlreadyDone => Ok(b.clone()),
        Step::To(next) => {
            store::set_booking_status(conn, b.id, next.as_str(), reason).await?;
            let row = store::booking(conn, b.id).await?.ok_or_else(|| ServiceError::internal("releasing", b.id))?;
            let event = pb::BookingReleased {
                booking: Some(booking_to_proto(&row)),
                reason: reason.to_owned(),
                occurred_at: Some(time::to_proto(time::now())),
            };
            outbox::enqueue(conn, SUBJECT_BOOKING_RELEASED, &event).await?;
            tracing::info!(booking = %b.id, reason, "booking released");
            Ok(row)
        }
    }
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow!(message))
}

fn uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("{field} {raw:?} is not a UUID")))
}

fn occurred(ts: Option<&id77_proto::prost_types::Timestamp>) -> Result<chrono::DateTime<chrono::Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| reject("event without a valid occurred_at".into()))
}

fn member_kind(kind: i32) -> Option<MemberKind> {
    match membership::CollectivityKind::try_from(kind) {
        Ok(membership::CollectivityKind::Commune) => Some(MemberKind::Commune),
        Ok(membership::CollectivityKind::Epci) => Some(MemberKind::Epci),
        Ok(membership::CollectivityKind::Syndicat) => Some(MemberKind::Syndicat),
        _ => None,
    }
}

/// Keeps the member read model: kind, population, territory (EPCI, arrondissement) and status.
pub struct MemberEvents;

impl EventHandler for MemberEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // (member, kind, population, EPCI, arrondissement, status, when); empty/zero: keep what is stored.
        let (member_id, kind, population, epci, arrondissement, status, at) = match event.subject.as_str() {
            "id77.membership.member.applied" => {
                let e: membership::MemberApplied = event.decode()?;
                (e.member_id, e.kind, e.population, String::new(), String::new(), Some("pending"), e.occurred_at)
            }
            "id77.membership.member.approved" => {
                let e: membership::MemberApproved = event.decode()?;
                (e.member_id, e.kind, e.population, e.epci_siren, e.arrondissement, Some("active"), e.occurred_at)
            }
            "id77.membership.member.updated" => {
                let e: membership::MemberUpdated = event.decode()?;
                (e.member_id, e.kind, e.population, e.epci_siren, e.arrondissement, None, e.occurred_at)
            }
            other => {
                tracing::debug!(subject = other, "membership event not used by the catalogue");
                return Ok(());
            }
        };
        let member_id = uuid("member_id", &member_id)?;
        let kind = member_kind(kind);
        if kind.is_none() && status.is_some() {
            return Err(reject(format!("member {member_id} has no known kind")));
        }
        if population < 0 {
            return Err(reject(format!("member {member_id} has a negative population")));
        }
        let population = (population > 0 || status.is_some()).then_some(population);
        let (epci, arrondissement) = (epci.trim(), arrondissement.trim());
        if epci.len() > 9 || arrondissement.len() > 4 {
            return Err(reject(format!("member {member_id} has an oversized territory")));
        }
        let at = occurred(at.as_ref())?;
        let written = store::upsert_member(conn, member_id, kind, population, epci, arrondissement, status, at).await?;
        tracing::info!(%member_id, ?kind, ?population, epci, arrondissement, ?status, written, "member known");
        Ok(())
    }
}

/// Confirms the copies held for a request when its provider accepts; releases them when the referral is declined,
/// expires (and is not re-routed) or is withdrawn.
pub struct ReferralEvents;

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // (request, accepted?, why released). A decline or expiry that routing re-routed to another provider
        // keeps the hold: the next referral's outcome decides.
        let (request_id, accepted, reason) = match event.subject.as_str() {
            "id77.routing.referral.accepted" => {
                let e: routing::ReferralAccepted = event.decode()?;
                (e.request_id, true, "")
            }
            "id77.routing.referral.declined" => {
                let e: routing::ReferralDeclined = event.decode()?;
                if e.rerouted {
                    return Ok(());
                }
                (e.request_id, false, "referral declined")
            }
            "id77.routing.referral.expired" => {
                let e: routing::ReferralExpired = event.decode()?;
                if e.rerouted {
                    return Ok(());
                }
                (e.request_id, false, "referral expired")
            }
            "id77.routing.referral.withdrawn" => {
                let e: routing::ReferralWithdrawn = event.decode()?;
                (e.request_id, false, "referral withdrawn")
            }
            _ => return Ok(()),
        };
        let request_id = uuid("request_id", &request_id)?;
        for id in store::bookings_of_request(conn, request_id).await? {
            let Some(b) = store::booking(conn, id).await? else { continue };
            let result =
                if accepted { confirm_booking(conn, &b).await } else { release_booking(conn, &b, reason).await };
            result.map_err(|e| match e.code {
                // A released booking cannot be confirmed: a decision, not a transient failure.
                ErrorCode::FailedPrecondition => HandleError::Reject(anyhow!(e)),
                _ => HandleError::Retry(anyhow!(e)),
            })?;
        }
        Ok(())
    }
}
