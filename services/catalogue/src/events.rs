//! The catalogue's consumers (idempotent inbox, on the durables the event catalogue declares): membership's
//! member events keep the "eligible for my collectivité" read model (and the members' names shown with
//! registrations); routing's referral outcomes confirm
//! (accepted) or release (declined, expired, withdrawn) the copies held for the request. What the catalogue
//! publishes is written by [`crate::flow`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ::uuid::Uuid;
use anyhow::anyhow;
use id77_platform::{ConsumerSpec, ErrorCode, Event, EventHandler, HandleError, time};
use id77_proto::events::durables;
use id77_proto::membership::v1::{MemberApplied, MemberApproved, MemberUpdated};
use id77_proto::prost_types::Timestamp;
use id77_proto::routing::v1::{ReferralAccepted, ReferralDeclined, ReferralExpired, ReferralWithdrawn};
use id77_proto::vocabulary::MemberKind;
use sqlx::PgConnection;

use crate::flow::bookings::{self, ReferralOutcome};
use crate::grpc::MemberProfiles;
use crate::{session_store, store};
use id77_platform::consumer::event_uuid as uuid;

/// Membership's member events.
pub fn members_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::CATALOGUE_MEMBERS)
}

/// Routing's referral outcomes.
pub fn referrals_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::CATALOGUE_REFERRALS)
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow!(message))
}

fn occurred(ts: Option<&Timestamp>) -> Result<chrono::DateTime<chrono::Utc>, HandleError> {
    ts.and_then(time::from_proto).ok_or_else(|| reject("event without a valid occurred_at".into()))
}

/// What a member event says of a member; empty or zero: keep what is stored.
struct MemberFacts {
    member_id: String,
    /// Membership's `CollectivityKind`.
    kind: i32,
    population: i64,
    epci: String,
    arrondissement: String,
    /// `None`: the event does not change the status.
    status: Option<&'static str>,
    /// The collectivité's name; empty: keep what is stored.
    name: String,
    at: Option<Timestamp>,
}

/// The facts of a member event; `None` for a membership event the catalogue does not use.
fn member_facts(event: &Event) -> Result<Option<MemberFacts>, HandleError> {
    if let Some(e) = event.decode_as::<MemberApplied>()? {
        return Ok(Some(MemberFacts {
            member_id: e.member_id,
            kind: e.kind,
            population: e.population,
            epci: String::new(),
            arrondissement: String::new(),
            status: Some("pending"),
            name: e.name,
            at: e.occurred_at,
        }));
    }
    if let Some(e) = event.decode_as::<MemberApproved>()? {
        return Ok(Some(MemberFacts {
            member_id: e.member_id,
            kind: e.kind,
            population: e.population,
            epci: e.epci_siren,
            arrondissement: e.arrondissement,
            status: Some("active"),
            name: e.name,
            at: e.occurred_at,
        }));
    }
    if let Some(e) = event.decode_as::<MemberUpdated>()? {
        return Ok(Some(MemberFacts {
            member_id: e.member_id,
            kind: e.kind,
            population: e.population,
            epci: e.epci_siren,
            arrondissement: e.arrondissement,
            status: None,
            name: String::new(),
            at: e.occurred_at,
        }));
    }
    Ok(None)
}

/// Keeps the member read model: kind, population, territory (EPCI, arrondissement) and status, and drops the
/// member's profile that search reuses ([`MemberProfiles`]) so that the change applies to the next search.
pub struct MemberEvents {
    profiles: Arc<MemberProfiles>,
}

impl MemberEvents {
    /// `profiles`: the search's ([`crate::grpc::CatalogueApi::member_profiles`]).
    pub fn new(profiles: Arc<MemberProfiles>) -> Self {
        Self { profiles }
    }
}

impl EventHandler for MemberEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(facts) = member_facts(event)? else {
            tracing::debug!(subject = %event.subject, "membership event not used by the catalogue");
            return Ok(());
        };
        let MemberFacts { member_id, kind, population, epci, arrondissement, status, name, at } = facts;
        let member_id = uuid("member_id", &member_id)?;
        let kind = MemberKind::from_collectivity(kind);
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
        // Before the write: from here on, what search reads of this member is not kept until the commit is
        // surely seen (the consumer commits after this returns).
        self.profiles.changed(member_id);
        let written = store::upsert_member(conn, member_id, kind, population, epci, arrondissement, status, at).await?;
        let name = name.trim();
        if !name.is_empty() {
            session_store::name_member(conn, member_id, name, at).await?;
        }
        tracing::info!(%member_id, ?kind, ?population, epci, arrondissement, ?status, written, "member known");
        Ok(())
    }
}

/// The request of a referral event and what its outcome does to the request's copies; `None` for a referral
/// event that changes nothing here. A decline or expiry that routing re-routed to another provider keeps the
/// hold: the next referral's outcome decides.
fn referral_outcome(event: &Event) -> Result<Option<(String, ReferralOutcome)>, HandleError> {
    if let Some(e) = event.decode_as::<ReferralAccepted>()? {
        return Ok(Some((e.request_id, ReferralOutcome::Accepted)));
    }
    if let Some(e) = event.decode_as::<ReferralDeclined>()? {
        return Ok((!e.rerouted).then_some((e.request_id, ReferralOutcome::Ended("referral declined"))));
    }
    if let Some(e) = event.decode_as::<ReferralExpired>()? {
        return Ok((!e.rerouted).then_some((e.request_id, ReferralOutcome::Ended("referral expired"))));
    }
    if let Some(e) = event.decode_as::<ReferralWithdrawn>()? {
        return Ok(Some((e.request_id, ReferralOutcome::Ended("referral withdrawn"))));
    }
    Ok(None)
}

/// Confirms the copies held for a request when its provider accepts; releases them when the referral is declined,
/// expires (and is not re-routed) or is withdrawn.
pub struct ReferralEvents;

/// A booking's refusal to follow is a decision (a released booking cannot be confirmed), anything else transient.
fn followed(result: Result<(), id77_platform::ServiceError>) -> Result<(), HandleError> {
    result.map_err(|e| match e.code {
        ErrorCode::FailedPrecondition => HandleError::Reject(anyhow!(e)),
        _ => HandleError::Retry(anyhow!(e)),
    })
}

impl EventHandler for ReferralEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some((request_id, outcome)) = referral_outcome(event)? else { return Ok(()) };
        let request_id = uuid("request_id", &request_id)?;
        followed(bookings::follow_referral(conn, request_id, outcome).await)
    }

    const BATCHES: bool = true;

    /// As [`Self::handle`] for each event in order, the live bookings of the batch's requests locked in one
    /// statement, not one per event (issue 23: most referrals have none). A request's second event in the batch
    /// reads its bookings again, as the first left them.
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let mut outcomes = Vec::new();
        for event in events {
            if let Some((request_id, outcome)) = referral_outcome(event)? {
                outcomes.push((uuid("request_id", &request_id)?, outcome));
            }
        }
        let ids: Vec<Uuid> = outcomes.iter().map(|(id, _)| *id).collect::<HashSet<_>>().into_iter().collect();
        let mut locked: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (request_id, booking) in store::bookings_of_requests(conn, &ids).await? {
            locked.entry(request_id).or_default().push(booking);
        }
        let mut seen = HashSet::new();
        for (request_id, outcome) in outcomes {
            if seen.insert(request_id) {
                let bookings = locked.remove(&request_id).unwrap_or_default();
                followed(bookings::follow_bookings(conn, &bookings, outcome).await)?;
            } else {
                followed(bookings::follow_referral(conn, request_id, outcome).await)?;
            }
        }
        Ok(())
    }
}
