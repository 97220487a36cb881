//! The catalogue as JSON: offers (with eligibility and price rule), search pages with facets, providers, and
//! exhibitions' availability and bookings.

use id77_proto::catalogue::v1 as catalogue;
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
use serde::Serialize;

use super::common::{UNSPECIFIED, non_empty, timestamp};

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

#[derive(Debug, Serialize)]
pub struct Eligibility {
    /// Empty: every kind.
    pub member_kinds: Vec<&'static str>,
    pub min_population: Option<i64>,
    pub max_population: Option<i64>,
    pub epci_sirens: Vec<String>,
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

/// A price rule; the amounts that do not apply to its kind are `null`.
#[derive(Debug, Serialize)]
pub struct PriceRule {
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

#[derive(Debug, Serialize)]
pub struct Offer {
    pub id: String,
    pub code: String,
    pub title: String,
    pub summary: String,
    /// The long text; `null` in search results (read the offer for it).
    pub description: Option<String>,
    pub category: &'static str,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub duration: String,
    pub eligibility: Option<Eligibility>,
    pub price: Option<PriceRule>,
    /// VAT rate in basis points (2000 = 20 %); `null` when VAT does not apply (see `vat_note`).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    /// `true` exactly when `price_cents` > 0: the amount known in advance (flat fee, daily rate × days).
    pub billed: bool,
    pub price_cents: i64,
    pub status: &'static str,
    pub version: i32,
    /// Exhibitions: physical copies.
    pub copies: i32,
    pub updated_at: Option<String>,
    /// Search relevance (`null` outside a text search).
    pub rank: Option<f32>,
}

impl From<catalogue::Offer> for Offer {
    fn from(o: catalogue::Offer) -> Self {
        Self {
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
            billed: o.billed,
            price_cents: o.price_cents,
            version: o.version,
            copies: o.copies,
        }
    }
}

/// A search page: the offers, the next cursor, the count of all matches and the facets.
#[derive(Debug, Serialize)]
pub struct OfferSearch {
    pub items: Vec<Offer>,
    pub next_cursor: Option<String>,
    pub total: u32,
    /// The query as searched after typo correction, when it was corrected.
    pub corrected_q: Option<String>,
    /// `{category: {value: count}, theme: {...}, provider: {...}, price_kind: {...}}`: counts of the matching
    /// offers per value, each dimension with every other filter applied.
    pub facets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u32>>,
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

#[derive(Debug, Serialize)]
pub struct BusyPeriod {
    pub from: String,
    pub to: String,
    pub status: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CopyCalendar {
    pub copy_id: String,
    pub label: String,
    pub busy: Vec<BusyPeriod>,
}

#[derive(Debug, Serialize)]
pub struct DayAvailability {
    pub date: String,
    pub available_copies: u32,
}

#[derive(Debug, Serialize)]
pub struct Availability {
    pub exhibition_id: String,
    pub from: String,
    pub to: String,
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

#[derive(Debug, Serialize)]
pub struct Booking {
    pub id: String,
    pub exhibition_id: String,
    pub copy_id: String,
    pub copy_label: String,
    pub member_id: String,
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    pub status: &'static str,
    pub provider_code: String,
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

#[derive(Debug, Serialize)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
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
}
