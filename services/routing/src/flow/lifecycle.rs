//! What every use case shares: the time routing lives by, the SLA settings, where a (re-)routing sent a request,
//! how a referral was decided on, and the facts the rules see of an offer and a member.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use id77_proto::vocabulary::MemberKind;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::Actor;
use crate::domain::rules::{MemberFacts, OfferFacts};
use crate::store::{MemberRow, OfferRow, ReferralRow};

/// SLA settings of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    /// Deadline of a provider routing has no setting for.
    pub default_business_days: u32,
    /// Reminder this many business days before the deadline.
    pub remind_business_days: u32,
    /// Expiry this many business days after the deadline.
    pub grace_business_days: u32,
}

impl Default for Sla {
    fn default() -> Self {
        Self { default_business_days: 5, remind_business_days: 1, grace_business_days: 2 }
    }
}

/// What the use cases need besides the connection.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub clock: Arc<dyn Clock>,
    pub sla: Sla,
}

impl Lifecycle {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Where a (re-)routing sent the request.
#[derive(Debug, Clone)]
pub enum Placement {
    Offered(Box<ReferralRow>),
    Triage,
}

impl Placement {
    pub fn provider_code(&self) -> &str {
        match self {
            Self::Offered(r) => &r.provider_code,
            Self::Triage => "",
        }
    }
}

/// How a referral was decided on: by a rule (of a rule set version), by default, or by hand.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub provider_code: String,
    pub rule: Option<(Uuid, i32)>,
    pub explanation: String,
    /// Who placed it: routing itself (rules, re-routing) or the coordinator (triage, reassignment).
    pub by: Actor,
    /// The coordinator's note when it placed the request by hand (empty otherwise).
    pub note: String,
}

impl Assignment {
    /// The coordinator `by` placed the request with `provider_code` (no rule), with its `note`.
    pub fn by_hand(provider_code: &str, explanation: String, note: &str, by: &Actor) -> Self {
        Self { provider_code: provider_code.to_owned(), rule: None, explanation, by: by.clone(), note: note.to_owned() }
    }
}

pub fn offer_facts(offer: &OfferRow) -> OfferFacts {
    OfferFacts { code: offer.code.clone(), themes: offer.themes.clone(), provider_code: offer.provider_code.clone() }
}

pub fn member_facts(member: Option<&MemberRow>) -> MemberFacts {
    match member {
        None => MemberFacts::default(),
        Some(m) => MemberFacts {
            known: true,
            kind: MemberKind::parse(&m.kind),
            population: m.population,
            insee_code: m.insee_code.clone(),
            epci_siren: m.epci_siren.clone(),
            arrondissement: m.arrondissement.clone(),
        },
    }
}
