//! The catalogue as JSON: offers (with eligibility and price rule), search pages with facets, providers, and
//! exhibitions' availability and bookings.

use id77_proto::catalogue::v1 as catalogue;
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{UNSPECIFIED, non_empty, timestamp};

// ---- the words of the catalogue's enums, as the document names them ------------------------------------------

/// An offer's family.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OfferCategory)]
#[allow(dead_code)]
pub enum OfferCategoryDoc {
    IntegratedEngineering,
    AwarenessTraining,
    ExhibitionLoan,
}

/// How an offer is priced: `free`; `flat` (one amount); `daily_rate` (an amount per day, for a number of
/// days); `per_inhabitant` (an amount per inhabitant of the member, with a floor and an optional cap);
/// `on_quote` (priced by the provider's quote).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PriceKind)]
#[allow(dead_code)]
pub enum PriceKindDoc {
    Free,
    Flat,
    DailyRate,
    PerInhabitant,
    OnQuote,
}

/// An offer's state: `draft` (the operator's only), `published`, `archived`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OfferStatus)]
#[allow(dead_code)]
pub enum OfferStatusDoc {
    Draft,
    Published,
    Archived,
}

/// A booking's state: `held`, `confirmed` (a loan), `released`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = BookingStatus)]
#[allow(dead_code)]
pub enum BookingStatusDoc {
    Held,
    Confirmed,
    Released,
}

/// Who a provider is: a service of the Département, or an associated organisation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProviderKind)]
#[allow(dead_code)]
pub enum ProviderKindDoc {
    DepartmentalService,
    AssociatedOrganisation,
}

/// A kind of collectivité an offer may be open to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = MemberKind)]
#[allow(dead_code)]
pub enum MemberKindDoc {
    Commune,
    Epci,
    Syndicat,
}

/// An offer's family, in the platform's words (`integrated_engineering`...).
pub fn offer_category(category: i32) -> &'static str {
    Category::from_proto(category).map_or(UNSPECIFIED, Category::as_str)
}

pub fn parse_offer_category(value: &str) -> Option<catalogue::OfferCategory> {
    Category::parse(value).map(Category::to_proto)
}

pub fn provider_kind(kind: i32) -> &'static str {
    match catalogue::ProviderKind::try_from(kind) {
        Ok(catalogue::ProviderKind::DepartmentalService) => "departmental_service",
        Ok(catalogue::ProviderKind::AssociatedOrganisation) => "associated_organisation",
        _ => UNSPECIFIED,
    }
}

/// Who may ask for the offer; empty lists and `null` bounds mean no constraint. Territory: the member's EPCI
/// (SIREN) or arrondissement (INSEE code, 771 Meaux … 775 Torcy) must be listed when either list is non-empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    /// Empty: every kind.
    #[schema(value_type = Vec<MemberKindDoc>)]
    pub member_kinds: Vec<&'static str>,
    /// Fewest inhabitants; `null`: no floor.
    pub min_population: Option<i64>,
    /// Most inhabitants; `null`: no ceiling.
    pub max_population: Option<i64>,
    /// SIRENs of the EPCIs the offer is open to.
    pub epci_sirens: Vec<String>,
    /// Arrondissements (`771` … `775`) the offer is open to.
    pub arrondissements: Vec<String>,
}

impl From<catalogue::Eligibility> for Eligibility {
    fn from(e: catalogue::Eligibility) -> Self {
        Self {
            member_kinds: e.member_kinds.into_iter().map(member_kind).collect(),
            min_population: (e.min_population > 0).then_some(e.min_population),
            max_population: (e.max_population > 0).then_some(e.max_population),
            epci_sirens: e.epci_sirens,
            arrondissements: e.arrondissements,
        }
    }
}

/// A kind of collectivité an offer is open to (the catalogue's `MemberKind`).
pub fn member_kind(kind: i32) -> &'static str {
    MemberKind::from_proto(kind).map_or(UNSPECIFIED, MemberKind::as_str)
}

pub fn parse_member_kind(value: &str) -> Option<catalogue::MemberKind> {
    MemberKind::parse(value).map(MemberKind::to_proto)
}

/// How an offer is priced (`free`, `flat`, `daily_rate`, `per_inhabitant`, `on_quote`).
pub fn price_kind(kind: i32) -> &'static str {
    PriceKind::from_proto(kind).map_or(UNSPECIFIED, PriceKind::as_str)
}

pub fn parse_price_kind(value: &str) -> Option<catalogue::PriceKind> {
    PriceKind::parse(value).map(PriceKind::to_proto)
}

pub fn offer_status(status: i32) -> &'static str {
    match catalogue::OfferStatus::try_from(status) {
        Ok(catalogue::OfferStatus::Draft) => "draft",
        Ok(catalogue::OfferStatus::Published) => "published",
        Ok(catalogue::OfferStatus::Archived) => "archived",
        _ => UNSPECIFIED,
    }
}

pub fn booking_status(status: i32) -> &'static str {
    match catalogue::BookingStatus::try_from(status) {
        Ok(catalogue::BookingStatus::Held) => "held",
        Ok(catalogue::BookingStatus::Confirmed) => "confirmed",
        Ok(catalogue::BookingStatus::Released) => "released",
        _ => UNSPECIFIED,
    }
}

/// A price rule. Amounts in euro cents, VAT excluded. `flat`: `amount_cents` once; `daily_rate`:
/// `amount_cents` per day for `days`; `per_inhabitant`: `amount_cents` per inhabitant, at least `floor_cents`, at
/// most `cap_cents` (`null`: no cap); `on_quote`: priced by the provider's quote. Fields that do not apply to the
/// kind are `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PriceRule {
    #[schema(value_type = PriceKindDoc)]
    pub kind: &'static str,
    pub amount_cents: Option<i64>,
    pub days: Option<i32>,
    pub floor_cents: Option<i64>,
    pub cap_cents: Option<i64>,
}

impl From<catalogue::PriceRule> for PriceRule {
    fn from(p: catalogue::PriceRule) -> Self {
        let kind = PriceKind::from_proto(p.kind);
        let amount = matches!(kind, Some(PriceKind::Flat | PriceKind::DailyRate | PriceKind::PerInhabitant));
        let per_inhabitant = kind == Some(PriceKind::PerInhabitant);
        Self {
            kind: kind.map_or(UNSPECIFIED, PriceKind::as_str),
            amount_cents: amount.then_some(p.amount_cents),
            days: (kind == Some(PriceKind::DailyRate)).then_some(p.days),
            floor_cents: per_inhabitant.then_some(p.floor_cents),
            cap_cents: (per_inhabitant && p.cap_cents > 0).then_some(p.cap_cents),
        }
    }
}

/// An offer of the catalogue, at one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Offer {
    #[schema(format = "uuid")]
    pub id: String,
    /// Stable code, e.g. `amo-amenagement-voirie`.
    pub code: String,
    pub title: String,
    pub summary: String,
    /// The long text; `null` in search results (read the offer for it).
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(value_type = OfferCategoryDoc)]
    pub category: &'static str,
    pub themes: Vec<String>,
    pub provider_code: String,
    /// Typical duration (« ½ journée », « 6 à 18 mois », « 3 semaines de prêt »).
    pub duration: String,
    #[schema(required = true)]
    pub eligibility: Option<Eligibility>,
    #[schema(required = true)]
    pub price: Option<PriceRule>,
    /// VAT rate in basis points (2000 = 20 %); `null` when VAT does not apply (see `vat_note`).
    #[schema(required = true)]
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    /// How the offer is priced: `price.kind`, repeated here so that a list can be read without the rule.
    #[schema(value_type = PriceKindDoc)]
    pub price_kind: &'static str,
    /// `true` whenever a quote or an invoice can follow: every `price_kind` but `free` (offers priced per
    /// inhabitant or on quote included, although their `price_cents` is 0). Until issue 20 it was `true` only
    /// when `price_cents` > 0.
    pub billed: bool,
    /// The amount known in advance, VAT excluded: a flat fee, or a daily rate times its days; 0 for free offers
    /// and for offers priced per inhabitant or on quote (the amount depends on the member or on the quote: see
    /// `price`).
    pub price_cents: i64,
    #[schema(value_type = OfferStatusDoc)]
    pub status: &'static str,
    pub version: i32,
    /// Exhibitions: physical copies that can be lent.
    pub copies: i32,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
    /// Search relevance (`ts_rank_cd`), `null` outside a text search.
    #[schema(required = true)]
    pub rank: Option<f32>,
}

/// `billed` as the offer view states it: a document (quote, invoice) can follow every kind but `free`. An
/// offer without a known price rule keeps the catalogue's flag.
fn billed(kind: Option<PriceKind>, legacy: bool) -> bool {
    kind.map_or(legacy, |k| k != PriceKind::Free)
}

impl From<catalogue::Offer> for Offer {
    fn from(o: catalogue::Offer) -> Self {
        let kind = o.price_rule.as_ref().and_then(|p| PriceKind::from_proto(p.kind));
        Self {
            price_kind: kind.map_or(UNSPECIFIED, PriceKind::as_str),
            billed: billed(kind, o.billed),
            category: offer_category(o.category),
            status: offer_status(o.status),
            updated_at: timestamp(o.updated_at.as_ref()),
            rank: (o.rank > 0.0).then_some(o.rank),
            eligibility: o.eligibility.map(Into::into),
            price: o.price_rule.map(Into::into),
            id: o.id,
            code: o.code,
            title: o.title,
            summary: o.summary,
            description: non_empty(o.description),
            themes: o.themes,
            provider_code: o.provider_code,
            duration: o.duration,
            vat_rate_bp: o.vat_rate_bp,
            vat_note: o.vat_note,
            price_cents: o.price_cents,
            version: o.version,
            copies: o.copies,
        }
    }
}

/// A search page: the offers, the next cursor, the count of all matches and the facets.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferSearch {
    pub items: Vec<Offer>,
    /// Pass it as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Offers matching every filter.
    pub total: u32,
    /// The query as searched after typo correction, when a word was replaced by a known one (the other words as
    /// asked); `null` otherwise — a correctly spelled accented word is not corrected.
    #[schema(required = true)]
    pub corrected_q: Option<String>,
    /// `{category: {value: count}, theme: {...}, provider: {...}, price_kind: {...}}`: counts of the matching
    /// offers per value, each dimension with every other filter applied.
    #[schema(value_type = FacetsDoc)]
    pub facets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u32>>,
}

/// Counts of the matching offers per value; each dimension counted with every other filter applied.
#[derive(ToSchema)]
#[schema(as = Facets)]
#[allow(dead_code)]
pub struct FacetsDoc {
    category: std::collections::BTreeMap<String, u32>,
    theme: std::collections::BTreeMap<String, u32>,
    provider: std::collections::BTreeMap<String, u32>,
    price_kind: std::collections::BTreeMap<String, u32>,
}

impl From<catalogue::SearchOffersResponse> for OfferSearch {
    fn from(r: catalogue::SearchOffersResponse) -> Self {
        Self {
            items: r.offers.into_iter().map(Offer::from).collect(),
            next_cursor: non_empty(r.next_page_token),
            total: r.total,
            corrected_q: non_empty(r.corrected_q),
            facets: r
                .facets
                .into_iter()
                .map(|f| (f.name, f.values.into_iter().map(|v| (v.value, v.count)).collect()))
                .collect(),
        }
    }
}

/// Days a copy is held or lent (inclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct BusyPeriod {
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    #[schema(value_type = BookingStatusDoc)]
    pub status: &'static str,
}

/// One copy of an exhibition and its busy periods.
#[derive(Debug, Serialize, ToSchema)]
pub struct CopyCalendar {
    pub copy_id: String,
    pub label: String,
    pub busy: Vec<BusyPeriod>,
}

/// Free copies on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayAvailability {
    #[schema(format = Date)]
    pub date: String,
    pub available_copies: u32,
}

/// An exhibition's calendar between two days (inclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct Availability {
    pub exhibition_id: String,
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Copies that can be lent.
    pub copies: u32,
    pub copy_calendars: Vec<CopyCalendar>,
    pub days: Vec<DayAvailability>,
}

impl From<catalogue::Availability> for Availability {
    fn from(a: catalogue::Availability) -> Self {
        Self {
            exhibition_id: a.exhibition_id,
            from: a.from,
            to: a.to,
            copies: a.copies,
            copy_calendars: a
                .copy_calendars
                .into_iter()
                .map(|c| CopyCalendar {
                    copy_id: c.copy_id,
                    label: c.label,
                    busy: c
                        .busy
                        .into_iter()
                        .map(|b| BusyPeriod { status: booking_status(b.status), from: b.from, to: b.to })
                        .collect(),
                })
                .collect(),
            days: a
                .days
                .into_iter()
                .map(|d| DayAvailability { date: d.date, available_copies: d.available_copies })
                .collect(),
        }
    }
}

/// A copy of an exhibition held or lent to a member for inclusive dates.
#[derive(Debug, Serialize, ToSchema)]
pub struct Booking {
    #[schema(format = "uuid")]
    pub id: String,
    pub exhibition_id: String,
    pub copy_id: String,
    pub copy_label: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    /// The request the loan was asked with, if any.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// First day of the loan (inclusive).
    #[schema(format = Date)]
    pub from: String,
    /// Last day of the loan (inclusive).
    #[schema(format = Date)]
    pub to: String,
    #[schema(value_type = BookingStatusDoc)]
    pub status: &'static str,
    /// The exhibition's provider.
    pub provider_code: String,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

impl From<catalogue::Booking> for Booking {
    fn from(b: catalogue::Booking) -> Self {
        Self {
            status: booking_status(b.status),
            updated_at: timestamp(b.updated_at.as_ref()),
            request_id: non_empty(b.request_id),
            id: b.id,
            exhibition_id: b.exhibition_id,
            copy_id: b.copy_id,
            copy_label: b.copy_label,
            member_id: b.member_id,
            from: b.from,
            to: b.to,
            provider_code: b.provider_code,
        }
    }
}

/// Who delivers offers: a departmental service or an associated organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Provider {
    pub code: String,
    pub name: String,
    #[schema(value_type = ProviderKindDoc)]
    pub kind: &'static str,
    #[schema(format = Email)]
    pub contact_email: String,
}

impl From<catalogue::Provider> for Provider {
    fn from(p: catalogue::Provider) -> Self {
        Self { kind: provider_kind(p.kind), code: p.code, name: p.name, contact_email: p.contact_email }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn categories_and_provider_kinds_are_lowercase_strings() {
        for category in ["integrated_engineering", "awareness_training", "exhibition_loan"] {
            assert_eq!(parse_offer_category(category).map(|c| offer_category(c.into())), Some(category));
        }
        assert_eq!(parse_offer_category(""), None);
        assert_eq!(provider_kind(1), "departmental_service");
        assert_eq!(provider_kind(2), "associated_organisation");
        for kind in ["commune", "epci", "syndicat"] {
            assert_eq!(parse_member_kind(kind).map(|k| member_kind(k.into())), Some(kind));
        }
        for kind in ["free", "flat", "daily_rate", "per_inhabitant", "on_quote"] {
            assert_eq!(parse_price_kind(kind).map(|k| price_kind(k.into())), Some(kind));
        }
        assert_eq!((member_kind(0), price_kind(0)), (UNSPECIFIED, UNSPECIFIED));
    }

    #[test]
    fn price_rules_show_the_amounts_of_their_kind_only() {
        let rule = |kind: catalogue::PriceKind| {
            let rule =
                catalogue::PriceRule { kind: kind.into(), amount_cents: 100, days: 2, floor_cents: 50, cap_cents: 0 };
            serde_json::to_value(PriceRule::from(rule)).unwrap_or_default()
        };
        assert_eq!(
            rule(catalogue::PriceKind::PerInhabitant),
            json!({"kind": "per_inhabitant", "amount_cents": 100, "days": null, "floor_cents": 50, "cap_cents": null})
        );
        assert_eq!(
            rule(catalogue::PriceKind::DailyRate),
            json!({"kind": "daily_rate", "amount_cents": 100, "days": 2, "floor_cents": null, "cap_cents": null})
        );
        assert_eq!(
            rule(catalogue::PriceKind::OnQuote),
            json!({"kind": "on_quote", "amount_cents": null, "days": null, "floor_cents": null, "cap_cents": null})
        );
        assert_eq!(rule(catalogue::PriceKind::Unspecified)["kind"], UNSPECIFIED);
    }

    #[test]
    fn every_kind_but_free_is_billed_and_says_its_kind() {
        for (kind, billed) in [
            (catalogue::PriceKind::Free, false),
            (catalogue::PriceKind::Flat, true),
            (catalogue::PriceKind::DailyRate, true),
            (catalogue::PriceKind::PerInhabitant, true),
            (catalogue::PriceKind::OnQuote, true),
        ] {
            let offer = catalogue::Offer {
                billed: false,
                price_rule: Some(catalogue::PriceRule { kind: kind.into(), ..Default::default() }),
                ..Default::default()
            };
            let view = Offer::from(offer);
            assert_eq!((view.billed, view.price_kind), (billed, price_kind(kind.into())));
        }
        // No price rule: the catalogue's flag, and an unspecified kind.
        let view = Offer::from(catalogue::Offer { billed: true, ..Default::default() });
        assert_eq!((view.billed, view.price_kind), (true, UNSPECIFIED));
    }
}
