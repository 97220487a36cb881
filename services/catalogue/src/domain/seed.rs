//! The catalogue seed: its validation (every problem reported at once) and which providers and offers a load
//! writes, compared with what is stored.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use uuid::Uuid;

use super::lifecycle::{OfferStatus, StoredOffer};
use super::offer::{OfferContent, OfferInput, validate_offer};
use super::provider::{Provider, ProviderInput, validate_provider};

/// A validated seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub providers: Vec<Provider>,
    pub offers: Vec<OfferContent>,
}

/// The seed file as written (`seed/catalogue.json`), before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub providers: Vec<ProviderInput>,
    pub offers: Vec<OfferInput>,
}

/// Everything wrong with a seed, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    pub problems: Vec<String>,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid catalogue seed ({} problem(s)): {}", self.problems.len(), self.problems.join("; "))
    }
}

impl std::error::Error for SeedError {}

/// Parses and validates a seed file's JSON.
pub fn parse_seed(json: &str) -> Result<Catalogue, SeedError> {
    let file: SeedFile =
        serde_json::from_str(json).map_err(|e| SeedError { problems: vec![format!("not a catalogue seed: {e}")] })?;
    validate_seed(file)
}

/// Checks every provider and offer with the operator's rules, plus unique codes.
pub fn validate_seed(file: SeedFile) -> Result<Catalogue, SeedError> {
    let mut problems = Vec::new();
    let mut providers = Vec::with_capacity(file.providers.len());
    let mut provider_codes = HashSet::new();
    for p in file.providers {
        let at = format!("provider {:?}", p.code);
        if !provider_codes.insert(p.code.trim().to_owned()) {
            problems.push(format!("{at}: code is used twice"));
        }
        match validate_provider(p) {
            Ok(p) => providers.push(p),
            Err(vs) => problems.extend(vs.into_iter().map(|v| format!("{at}: {} {}", v.field, v.description))),
        }
    }
    let mut offers = Vec::with_capacity(file.offers.len());
    let mut offer_codes = HashSet::new();
    for o in file.offers {
        let at = format!("offer {:?}", o.code);
        if !offer_codes.insert(o.code.trim().to_owned()) {
            problems.push(format!("{at}: code is used twice"));
        }
        match validate_offer(o, &provider_codes) {
            Ok(o) => offers.push(o),
            Err(vs) => problems.extend(vs.into_iter().map(|v| format!("{at}: {} {}", v.field, v.description))),
        }
    }
    if problems.is_empty() { Ok(Catalogue { providers, offers }) } else { Err(SeedError { problems }) }
}

/// Why an offer is (re)published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First time in the catalogue: a new id, version 1.
    New,
    /// Its content, or its provider's, changed: same id, next version.
    Changed { previous_version: i32 },
}

/// An offer a seed load writes and announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOffer {
    pub id: Uuid,
    pub version: i32,
    pub change: Change,
    pub content: OfferContent,
}

/// What a seed load writes. Empty when the stored catalogue already matches the seed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedPlan {
    /// Providers new or changed.
    pub providers: Vec<Provider>,
    /// Offers new or changed, in seed order.
    pub offers: Vec<PlannedOffer>,
    /// Stored offers the seed no longer lists (kept as they are; the operator archives them).
    pub absent: Vec<String>,
}

impl SeedPlan {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.offers.is_empty()
    }
}

/// Compares a seed with the stored catalogue. An offer is republished when its content changed, or when its
/// provider's details changed (the event carries the provider, so read models must see the new one). Offers
/// the operator edited, drafted or archived through the API are the operator's: the seed does not touch them.
/// New offers get an id from `new_id`.
pub fn plan(
    seed: &Catalogue,
    stored_providers: &[Provider],
    stored_offers: &[StoredOffer],
    mut new_id: impl FnMut() -> Uuid,
) -> SeedPlan {
    let stored_providers: HashMap<&str, &Provider> = stored_providers.iter().map(|p| (p.code.as_str(), p)).collect();
    let changed_providers: Vec<Provider> =
        seed.providers.iter().filter(|p| stored_providers.get(p.code.as_str()) != Some(p)).cloned().collect();
    let provider_changed: HashSet<&str> = changed_providers.iter().map(|p| p.code.as_str()).collect();
    let by_code: HashMap<&str, &StoredOffer> = stored_offers.iter().map(|o| (o.content.code.as_str(), o)).collect();
    let mut offers = Vec::new();
    for content in &seed.offers {
        let planned = match by_code.get(content.code.as_str()) {
            None => PlannedOffer { id: new_id(), version: 1, change: Change::New, content: content.clone() },
            Some(stored) if stored.operator_managed || stored.status != OfferStatus::Published => continue,
            Some(stored) if stored.content != *content || provider_changed.contains(content.provider_code.as_str()) => {
                PlannedOffer {
                    id: stored.id,
                    version: stored.version.saturating_add(1),
                    change: Change::Changed { previous_version: stored.version },
                    content: content.clone(),
                }
            }
            Some(_) => continue,
        };
        offers.push(planned);
    }
    let seed_codes: HashSet<&str> = seed.offers.iter().map(|o| o.code.as_str()).collect();
    let absent = stored_offers
        .iter()
        .filter(|o| !seed_codes.contains(o.content.code.as_str()))
        .map(|o| o.content.code.clone())
        .collect();
    SeedPlan { providers: changed_providers, offers, absent }
}
