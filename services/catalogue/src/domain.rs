//! Catalogue rules, free of I/O, one module per aggregate: an offer's content and its validation, its price
//! rule, who is eligible for it, its lifecycle and versions, providers, and which offers a seed load changes.
//! The shared words (categories, kinds of collectivité, price kinds) are the platform's
//! ([`id77_proto::vocabulary`]).

mod fields;

pub mod calendar;
pub mod communes;
pub mod eligibility;
pub mod lifecycle;
pub mod offer;
pub mod price;
pub mod provider;
pub mod seed;
pub mod session;
pub mod working_days;

pub use eligibility::{Eligibility, EligibilityInput, MAX_POPULATION, MAX_TERRITORY, MemberProfile};
pub use lifecycle::{Edit, LifecycleError, OfferStatus, StoredOffer, archive, edit, publish};
pub use offer::{
    MAX_COPIES, MAX_DESCRIPTION_CHARS, MAX_DURATION_CHARS, MAX_SUMMARY_CHARS, MAX_THEME_CHARS, MAX_THEMES,
    MAX_TITLE_CHARS, MAX_VAT_NOTE_CHARS, OfferContent, OfferInput, OfferKey, validate_offer,
};
pub use price::{MAX_DAYS, MAX_PRICE_CENTS, PriceRule};
pub use provider::{Provider, ProviderInput, ProviderKind, validate_provider};
pub use seed::{Catalogue, Change, PlannedOffer, SeedError, SeedFile, SeedPlan, parse_seed, plan, validate_seed};

#[cfg(test)]
mod tests;
