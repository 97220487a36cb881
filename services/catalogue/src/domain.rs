//! Catalogue rules, free of I/O: what a valid offer and provider are (from the seed or the operator), price
//! rules, eligibility, the offer lifecycle and versions, and which offers a seed load changes.

use std::collections::{HashMap, HashSet};
use std::fmt;

use id77_platform::error::FieldViolation;
use id77_platform::streams::is_valid_subject_token;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest offer title or provider name.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest offer summary.
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// Longest offer description.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest duration label.
pub const MAX_DURATION_CHARS: usize = 100;
/// Longest VAT note.
pub const MAX_VAT_NOTE_CHARS: usize = 300;
/// Most themes per offer.
pub const MAX_THEMES: usize = 12;
/// Longest theme.
pub const MAX_THEME_CHARS: usize = 40;
/// Most EPCI or arrondissements in a territory.
pub const MAX_TERRITORY: usize = 100;
/// Highest amount accepted in a price rule (1 M€), a guard against a misplaced digit.
pub const MAX_PRICE_CENTS: i64 = 100_000_000;
/// Longest daily-rate engagement.
pub const MAX_DAYS: i32 = 365;
/// Most physical copies of one exhibition.
pub const MAX_COPIES: i32 = 20;
/// Highest population bound (well above any French collectivité).
pub const MAX_POPULATION: i64 = 100_000_000;

/// The three families of offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// Where an offer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferStatus {
    Draft,
    Published,
    Archived,
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 3] = [Self::Draft, Self::Published, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The kinds of collectivité that join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    Commune,
    Epci,
    Syndicat,
}

impl MemberKind {
    pub const ALL: [MemberKind; 3] = [Self::Commune, Self::Epci, Self::Syndicat];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commune => "commune",
            Self::Epci => "epci",
            Self::Syndicat => "syndicat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Who may ask for an offer. Empty lists and absent bounds mean "no constraint".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    #[serde(default)]
    pub member_kinds: Vec<MemberKind>,
    #[serde(default)]
    pub min_population: Option<i64>,
    #[serde(default)]
    pub max_population: Option<i64>,
    /// SIRENs of the EPCI whose territory is eligible.
    #[serde(default)]
    pub epci_sirens: Vec<String>,
    /// Arrondissement codes (INSEE: 771 Meaux, 772 Melun, 773 Provins, 774 Fontainebleau, 775 Torcy) whose territory is eligible.
    #[serde(default)]
    pub arrondissements: Vec<String>,
}

/// What the catalogue knows of a member (from membership's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProfile {
    pub kind: MemberKind,
    pub population: i64,
    /// The member's EPCI (a commune's) or its own SIREN (an EPCI's), when membership sent it.
    pub epci_siren: Option<String>,
    /// A commune's arrondissement, when membership sent it.
    pub arrondissement: Option<String>,
}

impl Eligibility {
    pub fn is_unrestricted(&self) -> bool {
        *self == Self::default()
    }

    fn has_territory(&self) -> bool {
        !self.epci_sirens.is_empty() || !self.arrondissements.is_empty()
    }

    /// Whether `member` may ask for the offer. A territory restriction admits a member in any listed EPCI or
    /// arrondissement; when the catalogue does not know the member's territory at all, the restriction is not
    /// applied (the coordinator checks it at triage) rather than hiding the offer.
    pub fn admits(&self, member: &MemberProfile) -> bool {
        if !self.member_kinds.is_empty() && !self.member_kinds.contains(&member.kind) {
            return false;
        }
        if self.min_population.is_some_and(|min| member.population < min) {
            return false;
        }
        if self.max_population.is_some_and(|max| member.population > max) {
            return false;
        }
        if !self.has_territory() || (member.epci_siren.is_none() && member.arrondissement.is_none()) {
            return true;
        }
        member.epci_siren.as_ref().is_some_and(|s| self.epci_sirens.contains(s))
            || member.arrondissement.as_ref().is_some_and(|a| self.arrondissements.contains(a))
    }
}

/// How an offer is priced (amounts in euro cents, VAT excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceRule {
    Free,
    Flat {
        amount_cents: i64,
    },
    DailyRate {
        amount_cents: i64,
        days: i32,
    },
    /// `amount_cents` per inhabitant, at least `floor_cents`, at most `cap_cents` when there is a cap.
    PerInhabitant {
        amount_cents: i64,
        #[serde(default)]
        floor_cents: i64,
        #[serde(default)]
        cap_cents: Option<i64>,
    },
    OnQuote,
}

/// The price kinds, for filters and facets.
pub const PRICE_KINDS: [&str; 5] = ["free", "flat", "daily_rate", "per_inhabitant", "on_quote"];

impl PriceRule {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Flat { .. } => "flat",
            Self::DailyRate { .. } => "daily_rate",
            Self::PerInhabitant { .. } => "per_inhabitant",
            Self::OnQuote => "on_quote",
        }
    }

    /// The amount known in advance, whoever asks: a flat fee, or a daily rate times its days.
    pub fn fixed_amount(&self) -> Option<i64> {
        match *self {
            Self::Flat { amount_cents } => Some(amount_cents),
            Self::DailyRate { amount_cents, days } => amount_cents.checked_mul(i64::from(days)),
            Self::Free | Self::PerInhabitant { .. } | Self::OnQuote => None,
        }
    }

    /// The legacy `(billed, price_cents)` pair of `Offer`, as existing consumers (billing's tariffs) read it:
    /// billed exactly when a fixed amount is known in advance.
    pub fn legacy(&self) -> (bool, i64) {
        match self.fixed_amount() {
            Some(amount) if amount > 0 => (true, amount),
            _ => (false, 0),
        }
    }

    /// What a member of `population` would pay, when the rule says so without a quote (`Some(0)` if free).
    pub fn estimate(&self, population: i64) -> Option<i64> {
        match *self {
            Self::Free => Some(0),
            Self::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                let raw = amount_cents.checked_mul(population.max(0))?;
                let floored = raw.max(floor_cents);
                Some(cap_cents.map_or(floored, |cap| floored.min(cap)))
            }
            Self::OnQuote => None,
            Self::Flat { .. } | Self::DailyRate { .. } => self.fixed_amount(),
        }
    }

    fn check(&self, field: &str, out: &mut Vec<FieldViolation>) {
        let mut fail = |f: &str, d: String| out.push(FieldViolation { field: format!("{field}.{f}"), description: d });
        let amount_ok = |a: i64| (1..=MAX_PRICE_CENTS).contains(&a);
        match *self {
            Self::Free | Self::OnQuote => {}
            Self::Flat { amount_cents } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
            }
            Self::DailyRate { amount_cents, days } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
                if !(1..=MAX_DAYS).contains(&days) {
                    fail("days", format!("must be from 1 to {MAX_DAYS}"));
                } else if self.fixed_amount().is_none_or(|total| total > MAX_PRICE_CENTS) {
                    fail("days", format!("rate times days must be at most {MAX_PRICE_CENTS}"));
                }
            }
            Self::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
                if !(0..=MAX_PRICE_CENTS).contains(&floor_cents) {
                    fail("floor_cents", format!("must be from 0 to {MAX_PRICE_CENTS}"));
                }
                if let Some(cap) = cap_cents {
                    if !(1..=MAX_PRICE_CENTS).contains(&cap) {
                        fail("cap_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                    } else if cap < floor_cents {
                        fail("cap_cents", "must not be below floor_cents".into());
                    }
                }
            }
        }
    }
}

/// A provider as the seed or the operator declares it and the database stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub kind: ProviderKind,
    pub contact_email: String,
}

/// The content of an offer: everything but its id, version and status. Two equal contents are the same
/// version. Serialized as the snapshot of each version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferContent {
    pub code: String,
    pub title: String,
    pub summary: String,
    pub description: String,
    pub category: Category,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub duration: String,
    pub eligibility: Eligibility,
    pub price: PriceRule,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    /// Exhibitions: physical copies (at least one); other offers: 0.
    pub copies: i32,
}

/// An offer's content as written (seed file or operator request), before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    #[serde(default)]
    pub themes: Vec<String>,
    pub provider_code: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub eligibility: EligibilityInput,
    pub price: PriceRule,
    #[serde(default)]
    pub vat_rate_bp: Option<i32>,
    #[serde(default)]
    pub vat_note: String,
    #[serde(default)]
    pub copies: i32,
}

/// Eligibility as written: member kinds as strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityInput {
    #[serde(default)]
    pub member_kinds: Vec<String>,
    #[serde(default)]
    pub min_population: Option<i64>,
    #[serde(default)]
    pub max_population: Option<i64>,
    #[serde(default)]
    pub epci_sirens: Vec<String>,
    #[serde(default)]
    pub arrondissements: Vec<String>,
}

fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation { field: field.to_owned(), description: description.into() }
}

fn bounded(out: &mut Vec<FieldViolation>, field: &str, value: &str, min: usize, max: usize) {
    let n = value.chars().count();
    if n < min || n > max {
        out.push(violation(field, format!("must be {min} to {max} characters")));
    }
}

/// Validates an offer's content. `providers` are the known provider codes. Every problem is reported.
pub fn validate_offer(input: OfferInput, providers: &HashSet<String>) -> Result<OfferContent, Vec<FieldViolation>> {
    let mut out = Vec::new();
    let code = input.code.trim().to_owned();
    if !is_valid_subject_token(&code) {
        out.push(violation("code", "must be 1 to 64 lowercase ASCII letters, digits or dashes"));
    }
    let title = input.title.trim().to_owned();
    bounded(&mut out, "title", &title, 1, MAX_TITLE_CHARS);
    let summary = input.summary.trim().to_owned();
    bounded(&mut out, "summary", &summary, 0, MAX_SUMMARY_CHARS);
    let description = input.description.trim().to_owned();
    bounded(&mut out, "description", &description, 0, MAX_DESCRIPTION_CHARS);
    let duration = input.duration.trim().to_owned();
    bounded(&mut out, "duration", &duration, 0, MAX_DURATION_CHARS);
    let vat_note = input.vat_note.trim().to_owned();
    bounded(&mut out, "vat_note", &vat_note, 0, MAX_VAT_NOTE_CHARS);
    let category = Category::parse(input.category.trim());
    if category.is_none() {
        out.push(violation("category", "must be integrated_engineering, awareness_training or exhibition_loan"));
    }
    let themes: Vec<String> = input.themes.iter().map(|t| t.trim().to_lowercase()).collect();
    if themes.len() > MAX_THEMES {
        out.push(violation("themes", format!("at most {MAX_THEMES} themes")));
    }
    if themes.iter().any(|t| t.is_empty() || t.chars().count() > MAX_THEME_CHARS) {
        out.push(violation("themes", format!("each theme must be 1 to {MAX_THEME_CHARS} characters")));
    }
    if themes.iter().collect::<HashSet<_>>().len() != themes.len() {
        out.push(violation("themes", "a theme is listed twice"));
    }
    let provider_code = input.provider_code.trim().to_owned();
    if !providers.contains(&provider_code) {
        out.push(violation("provider_code", format!("{provider_code:?} is not a known provider")));
    }
    let eligibility = validate_eligibility(input.eligibility, &mut out);
    input.price.check("price", &mut out);
    if let Some(rate) = input.vat_rate_bp
        && !(0..=10_000).contains(&rate)
    {
        out.push(violation("vat_rate_bp", "must be from 0 to 10000 basis points"));
    }
    if input.vat_rate_bp.is_none() && input.price != PriceRule::Free && vat_note.is_empty() {
        out.push(violation("vat_note", "is required when a priced offer has no VAT rate (say why VAT does not apply)"));
    }
    match category {
        Some(Category::ExhibitionLoan) if !(1..=MAX_COPIES).contains(&input.copies) => {
            out.push(violation("copies", format!("an exhibition has 1 to {MAX_COPIES} copies")));
        }
        Some(Category::IntegratedEngineering | Category::AwarenessTraining) if input.copies != 0 => {
            out.push(violation("copies", "only exhibitions have copies"));
        }
        _ => {}
    }
    match category {
        Some(category) if out.is_empty() => Ok(OfferContent {
            code,
            title,
            summary,
            description,
            category,
            themes,
            provider_code,
            duration,
            eligibility,
            price: input.price,
            vat_rate_bp: input.vat_rate_bp,
            vat_note,
            copies: input.copies,
        }),
        _ => Err(out),
    }
}

fn is_siren(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_arrondissement(s: &str) -> bool {
    (3..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn validate_eligibility(input: EligibilityInput, out: &mut Vec<FieldViolation>) -> Eligibility {
    let mut kinds = Vec::new();
    for k in &input.member_kinds {
        match MemberKind::parse(k.trim()) {
            Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Some(_) => out.push(violation("eligibility.member_kinds", "a kind is listed twice")),
            None => out.push(violation("eligibility.member_kinds", "must be commune, epci or syndicat")),
        }
    }
    kinds.sort();
    let pop_ok = |p: Option<i64>| p.is_none_or(|p| (0..=MAX_POPULATION).contains(&p));
    if !pop_ok(input.min_population) {
        out.push(violation("eligibility.min_population", format!("must be from 0 to {MAX_POPULATION}")));
    }
    if !pop_ok(input.max_population) {
        out.push(violation("eligibility.max_population", format!("must be from 0 to {MAX_POPULATION}")));
    }
    if let (Some(min), Some(max)) = (input.min_population, input.max_population)
        && min > max
    {
        out.push(violation("eligibility.max_population", "must not be below min_population"));
    }
    let epci: Vec<String> = input.epci_sirens.iter().map(|s| s.trim().to_owned()).collect();
    let arr: Vec<String> = input.arrondissements.iter().map(|s| s.trim().to_owned()).collect();
    if epci.len() > MAX_TERRITORY || epci.iter().any(|s| !is_siren(s)) {
        out.push(violation("eligibility.epci_sirens", format!("at most {MAX_TERRITORY} SIRENs of 9 digits")));
    }
    if arr.len() > MAX_TERRITORY || arr.iter().any(|s| !is_arrondissement(s)) {
        out.push(violation("eligibility.arrondissements", "must be arrondissement codes such as 771"));
    }
    Eligibility {
        member_kinds: kinds,
        min_population: input.min_population.filter(|p| *p > 0),
        max_population: input.max_population,
        epci_sirens: epci,
        arrondissements: arr,
    }
}

/// A provider as written, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub contact_email: String,
}

/// Validates a provider. Every problem is reported.
pub fn validate_provider(p: ProviderInput) -> Result<Provider, Vec<FieldViolation>> {
    let mut out = Vec::new();
    let code = p.code.trim().to_owned();
    if !is_valid_subject_token(&code) {
        out.push(violation("code", "must be 1 to 64 lowercase ASCII letters, digits or dashes"));
    }
    let name = p.name.trim().to_owned();
    bounded(&mut out, "name", &name, 1, MAX_TITLE_CHARS);
    let kind = ProviderKind::parse(p.kind.trim());
    if kind.is_none() {
        out.push(violation("kind", "must be departmental_service or associated_organisation"));
    }
    let email = p.contact_email.trim();
    if !id77_platform::validate::is_plausible_email(email) {
        out.push(violation("contact_email", "must be an email address"));
    }
    match kind {
        Some(kind) if out.is_empty() => Ok(Provider { code, name, kind, contact_email: email.to_lowercase() }),
        _ => Err(out),
    }
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

/// An offer as stored, for change detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffer {
    pub id: Uuid,
    pub version: i32,
    pub status: OfferStatus,
    /// Edited through the operator API: the seed leaves it alone.
    pub operator_managed: bool,
    pub content: OfferContent,
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

/// What an operator's edit does to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// A draft is edited in place (its version stays).
    InPlace,
    /// A published offer gets its next version, published at once.
    NewVersion { version: i32 },
    /// Same content: nothing to write.
    Unchanged,
}

/// Why an operator's action is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleError {
    /// The offer is archived (or, for publish, already published).
    InvalidTransition { from: OfferStatus, action: &'static str },
    /// `expected_version` did not match.
    VersionConflict { current: i32, expected: i32 },
    /// The code cannot change; the category of an exhibition neither (its copies and bookings).
    Immutable(&'static str),
}

/// Decides an edit of `current` into `next`.
pub fn edit(current: &StoredOffer, next: &OfferContent, expected_version: i32) -> Result<Edit, LifecycleError> {
    if expected_version != 0 && expected_version != current.version {
        return Err(LifecycleError::VersionConflict { current: current.version, expected: expected_version });
    }
    if next.code != current.content.code {
        return Err(LifecycleError::Immutable("code"));
    }
    if (next.category == Category::ExhibitionLoan) != (current.content.category == Category::ExhibitionLoan) {
        return Err(LifecycleError::Immutable("category"));
    }
    if next.copies < current.content.copies && current.status != OfferStatus::Draft {
        return Err(LifecycleError::Immutable("copies (they can be added, not removed, once published)"));
    }
    match current.status {
        OfferStatus::Archived => Err(LifecycleError::InvalidTransition { from: current.status, action: "edit" }),
        _ if *next == current.content => Ok(Edit::Unchanged),
        OfferStatus::Draft => Ok(Edit::InPlace),
        OfferStatus::Published => Ok(Edit::NewVersion { version: current.version.saturating_add(1) }),
    }
}

/// Publishing: only a draft.
pub fn publish(current: OfferStatus) -> Result<OfferStatus, LifecycleError> {
    match current {
        OfferStatus::Draft => Ok(OfferStatus::Published),
        from => Err(LifecycleError::InvalidTransition { from, action: "publish" }),
    }
}

/// Archiving: a draft or a published offer.
pub fn archive(current: OfferStatus) -> Result<OfferStatus, LifecycleError> {
    match current {
        OfferStatus::Draft | OfferStatus::Published => Ok(OfferStatus::Archived),
        from => Err(LifecycleError::InvalidTransition { from, action: "archive" }),
    }
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
                status: OfferStatus::Published,
                operator_managed: false,
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

    fn providers() -> HashSet<String> {
        HashSet::from(["caue77".to_owned()])
    }

    fn input(json: serde_json::Value) -> OfferInput {
        match serde_json::from_value(json) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    fn fields(result: Result<OfferContent, Vec<FieldViolation>>) -> Vec<String> {
        result.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn the_shipped_seed_is_valid_and_has_the_catalogue_proportions() {
        let c = seed();
        assert!((10..=12).contains(&c.providers.len()), "{}", c.providers.len());
        let count = |cat| c.offers.iter().filter(|o| o.category == cat).count();
        assert!((45..=55).contains(&count(Category::IntegratedEngineering)));
        assert!((45..=55).contains(&count(Category::AwarenessTraining)));
        assert!((18..=22).contains(&count(Category::ExhibitionLoan)));
        for kind in PRICE_KINDS {
            assert!(c.offers.iter().any(|o| o.price.kind() == kind), "no {kind} offer");
        }
        assert!(c.offers.iter().any(|o| !o.eligibility.is_unrestricted()));
        for code in ["dir-routes", "dir-eau", "caue77", "sm-attractivite", "dir-culture"] {
            assert!(c.providers.iter().any(|p| p.code == code), "{code}");
        }
        // The offers other tests and services rely on are still there.
        for code in ["amo-amenagement-voirie", "diagnostic-ouvrages-art", "formation-plu", "expo-grande-guerre-77"] {
            assert!(c.offers.iter().any(|o| o.code == code), "{code}");
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
                {"code": "a", "title": "A", "category": "party", "themes": ["x", "x"],
                 "provider_code": "nobody", "price": {"kind": "flat", "amount_cents": -1}},
                {"code": "a", "title": "", "category": "exhibition_loan",
                 "provider_code": "caue77", "price": {"kind": "free"}, "copies": 1}
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
            "offer \"a\": themes",
            "offer \"a\": provider_code",
            "offer \"a\": price.amount_cents",
            "offer \"a\": vat_note",
            "offer \"a\": code is used twice",
            "offer \"a\": title",
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
    fn price_rules_give_the_legacy_pair_and_estimates() {
        let flat = PriceRule::Flat { amount_cents: 250_000 };
        assert_eq!((flat.legacy(), flat.estimate(10)), ((true, 250_000), Some(250_000)));
        let daily = PriceRule::DailyRate { amount_cents: 60_000, days: 3 };
        assert_eq!((daily.legacy(), daily.kind()), ((true, 180_000), "daily_rate"));
        let per = PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 50_000, cap_cents: Some(500_000) };
        assert_eq!(per.legacy(), (false, 0));
        assert_eq!(per.estimate(1_000), Some(50_000), "the floor");
        assert_eq!(per.estimate(12_000), Some(120_000));
        assert_eq!(per.estimate(1_000_000), Some(500_000), "the cap");
        let uncapped = PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 0, cap_cents: None };
        assert_eq!(uncapped.estimate(i64::MAX), None, "overflow is no estimate, not a panic");
        assert_eq!((PriceRule::Free.legacy(), PriceRule::Free.estimate(5)), ((false, 0), Some(0)));
        assert_eq!((PriceRule::OnQuote.legacy(), PriceRule::OnQuote.estimate(5)), ((false, 0), None));
    }

    #[test]
    fn price_rules_are_validated() {
        let base = |price: serde_json::Value| {
            input(serde_json::json!({"code": "x", "title": "X", "category": "integrated_engineering",
                "provider_code": "caue77", "price": price, "vat_rate_bp": 2000}))
        };
        assert!(validate_offer(base(serde_json::json!({"kind": "flat", "amount_cents": 100})), &providers()).is_ok());
        assert_eq!(
            fields(validate_offer(base(serde_json::json!({"kind": "flat", "amount_cents": 0})), &providers())),
            ["price.amount_cents"]
        );
        assert_eq!(
            fields(validate_offer(
                base(serde_json::json!({"kind": "daily_rate", "amount_cents": 90_000_000, "days": 300})),
                &providers()
            )),
            ["price.days"]
        );
        assert_eq!(
            fields(validate_offer(
                base(
                    serde_json::json!({"kind": "per_inhabitant", "amount_cents": 10, "floor_cents": 500, "cap_cents": 100})
                ),
                &providers()
            )),
            ["price.cap_cents"]
        );
        // An unknown price kind does not even parse.
        assert!(
            serde_json::from_value::<OfferInput>(serde_json::json!({"code": "x", "title": "X",
            "category": "integrated_engineering", "provider_code": "caue77", "price": {"kind": "barter"}}))
            .is_err()
        );
    }

    #[test]
    fn offers_are_validated_field_by_field() {
        let bad = input(serde_json::json!({
            "code": "x", "title": "X", "category": "awareness_training", "provider_code": "caue77",
            "price": {"kind": "on_quote"}, "vat_rate_bp": 20000, "copies": 2,
            "eligibility": {"member_kinds": ["commune", "region"], "min_population": 5000, "max_population": 100,
                            "epci_sirens": ["2000"], "arrondissements": ["7/1"]}
        }));
        assert_eq!(
            fields(validate_offer(bad, &providers())),
            [
                "eligibility.member_kinds",
                "eligibility.max_population",
                "eligibility.epci_sirens",
                "eligibility.arrondissements",
                "vat_rate_bp",
                "copies"
            ]
        );
        let expo = input(serde_json::json!({"code": "e", "title": "E", "category": "exhibition_loan",
            "provider_code": "caue77", "price": {"kind": "free"}}));
        assert_eq!(fields(validate_offer(expo, &providers())), ["copies"]);
    }

    #[test]
    fn eligibility_checks_kind_population_and_territory() {
        let rule = Eligibility {
            member_kinds: vec![MemberKind::Commune],
            min_population: Some(2_000),
            max_population: Some(10_000),
            epci_sirens: vec!["200072130".into()],
            arrondissements: vec!["774".into()],
        };
        let member = |kind, population, epci: Option<&str>, arr: Option<&str>| MemberProfile {
            kind,
            population,
            epci_siren: epci.map(str::to_owned),
            arrondissement: arr.map(str::to_owned),
        };
        assert!(rule.admits(&member(MemberKind::Commune, 5_000, Some("200072130"), None)));
        assert!(rule.admits(&member(MemberKind::Commune, 5_000, Some("999999999"), Some("774"))));
        assert!(!rule.admits(&member(MemberKind::Commune, 5_000, Some("999999999"), Some("771"))));
        assert!(!rule.admits(&member(MemberKind::Epci, 5_000, Some("200072130"), None)));
        assert!(!rule.admits(&member(MemberKind::Commune, 1_999, None, None)));
        assert!(!rule.admits(&member(MemberKind::Commune, 10_001, None, None)));
        assert!(rule.admits(&member(MemberKind::Commune, 10_000, None, None)), "territory unknown: not applied");
        assert!(Eligibility::default().admits(&member(MemberKind::Syndicat, 0, None, None)));
    }

    #[test]
    fn editing_follows_the_lifecycle_and_versions() {
        let c = seed();
        let mut offer = stored(&c).remove(0);
        let mut next = offer.content.clone();
        assert_eq!(edit(&offer, &next, 0), Ok(Edit::Unchanged));
        next.title.push_str(" (2027)");
        assert_eq!(edit(&offer, &next, 0), Ok(Edit::NewVersion { version: 2 }));
        assert_eq!(edit(&offer, &next, 1), Ok(Edit::NewVersion { version: 2 }));
        assert_eq!(edit(&offer, &next, 3), Err(LifecycleError::VersionConflict { current: 1, expected: 3 }));
        let mut renamed = next.clone();
        renamed.code = "autre".into();
        assert_eq!(edit(&offer, &renamed, 0), Err(LifecycleError::Immutable("code")));
        offer.status = OfferStatus::Draft;
        assert_eq!(edit(&offer, &next, 0), Ok(Edit::InPlace));
        offer.status = OfferStatus::Archived;
        assert!(matches!(edit(&offer, &next, 0), Err(LifecycleError::InvalidTransition { .. })));

        assert_eq!(publish(OfferStatus::Draft), Ok(OfferStatus::Published));
        assert!(publish(OfferStatus::Published).is_err() && publish(OfferStatus::Archived).is_err());
        assert_eq!(archive(OfferStatus::Published), Ok(OfferStatus::Archived));
        assert_eq!(archive(OfferStatus::Draft), Ok(OfferStatus::Archived));
        assert!(archive(OfferStatus::Archived).is_err());
    }

    #[test]
    fn a_first_load_publishes_every_offer_with_a_new_id() {
        let c = seed();
        let mut n = 100u128;
        let plan = plan(&c, &[], &[], || {
            n += 1;
            Uuid::from_u128(n)
        });
        assert_eq!(plan.providers.len(), c.providers.len());
        assert_eq!(plan.offers.len(), c.offers.len());
        assert!(plan.offers.iter().all(|o| o.version == 1 && o.change == Change::New));
        let ids: HashSet<_> = plan.offers.iter().map(|o| o.id).collect();
        assert_eq!(ids.len(), c.offers.len());
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
        next.offers[3].title.push_str(" — édition 2027");
        let plan = plan(&next, &c.providers, &stored, Uuid::now_v7);
        assert!(plan.providers.is_empty());
        assert_eq!(plan.offers.len(), 1);
        let o = &plan.offers[0];
        assert_eq!((o.id, o.version, o.change), (stored[3].id, 5, Change::Changed { previous_version: 4 }));
        assert_eq!(o.content, next.offers[3]);
    }

    #[test]
    fn the_seed_leaves_the_operators_offers_alone() {
        let c = seed();
        let mut stored = stored(&c);
        stored[0].operator_managed = true;
        stored[1].status = OfferStatus::Archived;
        let mut next = c.clone();
        next.offers[0].title.push_str(" bis");
        next.offers[1].title.push_str(" bis");
        assert!(plan(&next, &c.providers, &stored, Uuid::now_v7).is_empty());
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
        for s in OfferStatus::ALL {
            assert_eq!(OfferStatus::parse(s.as_str()), Some(s));
        }
        for k in MemberKind::ALL {
            assert_eq!(MemberKind::parse(k.as_str()), Some(k));
        }
    }
}
