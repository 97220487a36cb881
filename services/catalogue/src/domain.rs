//! Catalogue rules, free of I/O: what a valid seed is, and which offers a seed load changes.

use std::collections::{HashMap, HashSet};
use std::fmt;

use id77_platform::streams::is_valid_subject_token;
use serde::Deserialize;
use uuid::Uuid;

/// Longest offer title.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest offer summary.
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// Most themes per offer.
pub const MAX_THEMES: usize = 12;
/// Longest theme.
pub const MAX_THEME_CHARS: usize = 40;
/// Highest flat price accepted from a seed (1 M€), a guard against a misplaced digit.
pub const MAX_PRICE_CENTS: i64 = 100_000_000;

/// The three families of offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    IntegratedEngineering,
    AwarenessTraining,
    ExhibitionLoan,
}

impl Category {
    pub const ALL: [Category; 3] = [Self::IntegratedEngineering, Self::AwarenessTraining, Self::ExhibitionLoan];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IntegratedEngineering => "integrated_engineering",
            Self::AwarenessTraining => "awareness_training",
            Self::ExhibitionLoan => "exhibition_loan",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A directorate of the Département or an associated organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    DepartmentalService,
    AssociatedOrganisation,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepartmentalService => "departmental_service",
            Self::AssociatedOrganisation => "associated_organisation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "departmental_service" => Some(Self::DepartmentalService),
            "associated_organisation" => Some(Self::AssociatedOrganisation),
            _ => None,
        }
    }
}

/// A provider as the seed declares it and the database stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub kind: ProviderKind,
    pub contact_email: String,
}

/// The published content of an offer: everything but its id and version. Two equal contents are the same
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferContent {
    pub code: String,
    pub title: String,
    pub summary: String,
    pub category: Category,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub billed: bool,
    pub price_cents: i64,
}

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
    pub providers: Vec<SeedProvider>,
    pub offers: Vec<SeedOffer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedProvider {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub contact_email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOffer {
    pub code: String,
    pub title: String,
    pub summary: String,
    pub category: String,
    #[serde(default)]
    pub themes: Vec<String>,
    pub provider_code: String,
    pub billed: bool,
    pub price_cents: i64,
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

/// Checks every provider and offer: unique and well-formed codes, known provider references and categories,
/// non-negative prices, and `billed` exactly when the price is positive.
pub fn validate_seed(file: SeedFile) -> Result<Catalogue, SeedError> {
    let mut problems = Vec::new();
    let mut providers = Vec::with_capacity(file.providers.len());
    let mut provider_codes = HashSet::new();
    for p in file.providers {
        let at = format!("provider {:?}", p.code);
        if !is_valid_subject_token(&p.code) {
            problems.push(format!("{at}: code must be 1 to 64 lowercase ASCII letters, digits or dashes"));
        }
        if !provider_codes.insert(p.code.clone()) {
            problems.push(format!("{at}: code is used twice"));
        }
        let name = p.name.trim();
        if name.is_empty() || name.chars().count() > MAX_TITLE_CHARS {
            problems.push(format!("{at}: name must be 1 to {MAX_TITLE_CHARS} characters"));
        }
        let kind = ProviderKind::parse(&p.kind);
        if kind.is_none() {
            problems.push(format!("{at}: kind must be departmental_service or associated_organisation"));
        }
        let email = p.contact_email.trim();
        if !id77_platform::validate::is_plausible_email(email) {
            problems.push(format!("{at}: contact_email must be an email address"));
        }
        if let Some(kind) = kind {
            providers.push(Provider { code: p.code, name: name.to_owned(), kind, contact_email: email.to_lowercase() });
        }
    }
    let mut offers = Vec::with_capacity(file.offers.len());
    let mut offer_codes = HashSet::new();
    for o in file.offers {
        let at = format!("offer {:?}", o.code);
        if !is_valid_subject_token(&o.code) {
            problems.push(format!("{at}: code must be 1 to 64 lowercase ASCII letters, digits or dashes"));
        }
        if !offer_codes.insert(o.code.clone()) {
            problems.push(format!("{at}: code is used twice"));
        }
        let title = o.title.trim();
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            problems.push(format!("{at}: title must be 1 to {MAX_TITLE_CHARS} characters"));
        }
        let summary = o.summary.trim();
        if summary.chars().count() > MAX_SUMMARY_CHARS {
            problems.push(format!("{at}: summary must be at most {MAX_SUMMARY_CHARS} characters"));
        }
        let category = Category::parse(&o.category);
        if category.is_none() {
            problems.push(format!(
                "{at}: category {:?} is not one of integrated_engineering, awareness_training, exhibition_loan",
                o.category
            ));
        }
        let themes: Vec<String> = o.themes.iter().map(|t| t.trim().to_owned()).collect();
        if themes.len() > MAX_THEMES {
            problems.push(format!("{at}: at most {MAX_THEMES} themes"));
        }
        if themes.iter().any(|t| t.is_empty() || t.chars().count() > MAX_THEME_CHARS) {
            problems.push(format!("{at}: each theme must be 1 to {MAX_THEME_CHARS} characters"));
        }
        if themes.iter().collect::<HashSet<_>>().len() != themes.len() {
            problems.push(format!("{at}: a theme is listed twice"));
        }
        if !provider_codes.contains(&o.provider_code) {
            problems.push(format!("{at}: provider_code {:?} is not a provider of the seed", o.provider_code));
        }
        if o.price_cents < 0 || o.price_cents > MAX_PRICE_CENTS {
            problems.push(format!("{at}: price_cents must be between 0 and {MAX_PRICE_CENTS}"));
        } else if o.billed != (o.price_cents > 0) {
            problems.push(format!("{at}: a billed offer needs a positive price and a free offer a price of 0"));
        }
        if let Some(category) = category {
            offers.push(OfferContent {
                code: o.code,
                title: title.to_owned(),
                summary: summary.to_owned(),
                category,
                themes,
                provider_code: o.provider_code,
                billed: o.billed,
                price_cents: o.price_cents,
            });
        }
    }
    if problems.is_empty() { Ok(Catalogue { providers, offers }) } else { Err(SeedError { problems }) }
}

/// An offer as stored, for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffer {
    pub id: Uuid,
    pub version: i32,
    pub content: OfferContent,
}

/// Why an offer is (re)published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First time in the catalogue: a new id, version 1.
    New,
    /// Its content, or its provider's, changed: same id, next version.
    Changed,
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
    /// Stored offers the seed no longer lists (kept as they are; archiving is a later feature).
    pub absent: Vec<String>,
}

impl SeedPlan {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.offers.is_empty()
    }
}

/// Compares a seed with the stored catalogue. An offer is republished when its content changed, or when its
/// provider's details changed (the event carries the provider, so read models must see the new one). New
/// offers get an id from `new_id`.
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
            Some(stored) if stored.content != *content || provider_changed.contains(content.provider_code.as_str()) => {
                PlannedOffer {
                    id: stored.id,
                    version: stored.version.saturating_add(1),
                    change: Change::Changed,
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../seed/catalogue.json");

    fn seed() -> Catalogue {
        match parse_seed(SEED) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn stored(catalogue: &Catalogue) -> Vec<StoredOffer> {
        catalogue
            .offers
            .iter()
            .enumerate()
            .map(|(i, content)| StoredOffer {
                id: Uuid::from_u128(i as u128 + 1),
                version: 1,
                content: content.clone(),
            })
            .collect()
    }

    fn file(json: &str) -> SeedFile {
        match serde_json::from_str(json) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_shipped_seed_is_valid_and_covers_every_category() {
        let c = seed();
        assert_eq!(c.providers.len(), 5);
        assert_eq!(c.offers.len(), 12);
        for category in Category::ALL {
            assert!(c.offers.iter().any(|o| o.category == category), "{category:?}");
        }
        assert!(c.offers.iter().filter(|o| o.billed).count() >= 3);
        for code in ["dir-routes", "dir-eau", "caue77", "sm-attractivite", "dir-culture"] {
            assert!(c.providers.iter().any(|p| p.code == code), "{code}");
        }
    }

    #[test]
    fn every_problem_of_a_bad_seed_is_reported() {
        let bad = file(
            r#"{
              "providers": [
                {"code": "Dir.Routes", "name": "", "kind": "ministry", "contact_email": "nope"},
                {"code": "caue77", "name": "CAUE", "kind": "associated_organisation", "contact_email": "a@b.fr"},
                {"code": "caue77", "name": "CAUE bis", "kind": "associated_organisation", "contact_email": "a@b.fr"}
              ],
              "offers": [
                {"code": "a", "title": "A", "summary": "", "category": "party", "themes": ["x", "x"],
                 "provider_code": "nobody", "billed": false, "price_cents": -1},
                {"code": "a", "title": "", "summary": "", "category": "exhibition_loan",
                 "provider_code": "caue77", "billed": true, "price_cents": 0},
                {"code": "b", "title": "B", "summary": "", "category": "awareness_training",
                 "provider_code": "caue77", "billed": false, "price_cents": 500}
              ]
            }"#,
        );
        let problems = validate_seed(bad).err().map(|e| e.problems).unwrap_or_default();
        let expect = [
            "provider \"Dir.Routes\": code",
            "provider \"Dir.Routes\": name",
            "provider \"Dir.Routes\": kind",
            "provider \"Dir.Routes\": contact_email",
            "provider \"caue77\": code is used twice",
            "offer \"a\": category",
            "offer \"a\": a theme is listed twice",
            "offer \"a\": provider_code \"nobody\"",
            "offer \"a\": price_cents must be",
            "offer \"a\": code is used twice",
            "offer \"a\": title",
            "offer \"a\": a billed offer needs a positive price",
            "offer \"b\": a billed offer needs a positive price",
        ];
        for e in expect {
            assert!(problems.iter().any(|p| p.starts_with(e)), "missing {e:?} in {problems:#?}");
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        assert!(parse_seed("{").is_err());
        assert!(parse_seed(r#"{"providers": [], "offers": [], "extra": 1}"#).is_err());
        assert_eq!(parse_seed(r#"{"providers": [], "offers": []}"#).map(|c| c.offers.len()), Ok(0));
    }

    #[test]
    fn a_first_load_publishes_every_offer_with_a_new_id() {
        let c = seed();
        let mut n = 100u128;
        let plan = plan(&c, &[], &[], || {
            n += 1;
            Uuid::from_u128(n)
        });
        assert_eq!(plan.providers.len(), 5);
        assert_eq!(plan.offers.len(), 12);
        assert!(plan.offers.iter().all(|o| o.version == 1 && o.change == Change::New));
        let ids: HashSet<_> = plan.offers.iter().map(|o| o.id).collect();
        assert_eq!(ids.len(), 12);
    }

    #[test]
    fn an_unchanged_seed_plans_nothing() {
        let c = seed();
        let plan = plan(&c, &c.providers, &stored(&c), Uuid::now_v7);
        assert!(plan.is_empty(), "{plan:?}");
        assert!(plan.absent.is_empty());
    }

    #[test]
    fn a_changed_offer_keeps_its_id_and_gets_the_next_version() {
        let c = seed();
        let mut stored = stored(&c);
        stored[3].version = 4;
        let mut next = c.clone();
        next.offers[3].price_cents += 10_000;
        let plan = plan(&next, &c.providers, &stored, Uuid::now_v7);
        assert!(plan.providers.is_empty());
        assert_eq!(plan.offers.len(), 1);
        let o = &plan.offers[0];
        assert_eq!((o.id, o.version, o.change), (stored[3].id, 5, Change::Changed));
        assert_eq!(o.content, next.offers[3]);
    }

    #[test]
    fn a_changed_provider_republishes_its_offers_only() {
        let c = seed();
        let mut next = c.clone();
        let caue = next.providers.iter_mut().find(|p| p.code == "caue77");
        if let Some(p) = caue {
            p.contact_email = "contact@caue77.fr".into();
        }
        let plan = plan(&next, &c.providers, &stored(&c), Uuid::now_v7);
        assert_eq!(plan.providers.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(), vec!["caue77"]);
        let expected = c.offers.iter().filter(|o| o.provider_code == "caue77").count();
        assert_eq!(plan.offers.len(), expected);
        assert!(plan.offers.iter().all(|o| o.content.provider_code == "caue77" && o.version == 2));
    }

    #[test]
    fn offers_missing_from_the_seed_are_reported_not_removed() {
        let c = seed();
        let mut next = c.clone();
        let removed = next.offers.remove(0);
        let plan = plan(&next, &c.providers, &stored(&c), Uuid::now_v7);
        assert!(plan.is_empty());
        assert_eq!(plan.absent, vec![removed.code]);
    }

    #[test]
    fn enums_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
        }
        assert_eq!(Category::parse("x"), None);
        for k in [ProviderKind::DepartmentalService, ProviderKind::AssociatedOrganisation] {
            assert_eq!(ProviderKind::parse(k.as_str()), Some(k));
        }
    }
}
