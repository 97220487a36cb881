//! Protobuf ↔ domain: the offers, providers, bookings and search answers as the API and the events carry them,
//! and the callers' requests read into the domain's inputs (with the field errors a client can show).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use id77_platform::error::FieldViolation;
use id77_platform::{ServiceError, page, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::events::is_valid_subject_token;
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
use uuid::Uuid;

use crate::booking::BookingStatus;
use crate::domain::{
    self, EligibilityInput, OfferContent, OfferInput, OfferKey, OfferStatus, PriceRule, Provider, ProviderInput,
    ProviderKind,
};
use crate::search::{self, Cursor, Filters, Start};
use crate::store::{BookingRow, CopyRow, OfferRow, ProviderRow, SearchRow};

// ---- domain → protobuf ---------------------------------------------------------------------------------------

fn provider_kind_to_proto(kind: Option<ProviderKind>) -> pb::ProviderKind {
    match kind {
        Some(ProviderKind::DepartmentalService) => pb::ProviderKind::DepartmentalService,
        Some(ProviderKind::AssociatedOrganisation) => pb::ProviderKind::AssociatedOrganisation,
        None => pb::ProviderKind::Unspecified,
    }
}

fn status_to_proto(status: OfferStatus) -> pb::OfferStatus {
    match status {
        OfferStatus::Draft => pb::OfferStatus::Draft,
        OfferStatus::Published => pb::OfferStatus::Published,
        OfferStatus::Archived => pb::OfferStatus::Archived,
    }
}

fn price_to_proto(price: &PriceRule) -> pb::PriceRule {
    let kind = price.kind().to_proto().into();
    match *price {
        PriceRule::Free | PriceRule::OnQuote => pb::PriceRule { kind, ..Default::default() },
        PriceRule::Flat { amount_cents } => pb::PriceRule { kind, amount_cents, ..Default::default() },
        PriceRule::DailyRate { amount_cents, days } => pb::PriceRule { kind, amount_cents, days, ..Default::default() },
        PriceRule::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
            pb::PriceRule { kind, amount_cents, floor_cents, cap_cents: cap_cents.unwrap_or(0), days: 0 }
        }
    }
}

/// An offer's protobuf from its content and state (current row or a past version's snapshot).
pub fn offer_proto(
    id: Uuid,
    version: i32,
    status: OfferStatus,
    content: &OfferContent,
    updated_at: DateTime<Utc>,
) -> pb::Offer {
    let (billed, price_cents) = content.price.legacy();
    let e = &content.eligibility;
    pb::Offer {
        id: id.to_string(),
        code: content.code.clone(),
        title: content.title.clone(),
        summary: content.summary.clone(),
        category: content.category.to_proto().into(),
        themes: content.themes.clone(),
        provider_code: content.provider_code.clone(),
        billed,
        price_cents,
        version,
        description: content.description.clone(),
        duration: content.duration.clone(),
        eligibility: Some(pb::Eligibility {
            member_kinds: e.member_kinds.iter().map(|k| k.to_proto().into()).collect(),
            min_population: e.min_population.unwrap_or(0),
            max_population: e.max_population.unwrap_or(0),
            epci_sirens: e.epci_sirens.clone(),
            arrondissements: e.arrondissements.clone(),
        }),
        price_rule: Some(price_to_proto(&content.price)),
        vat_rate_bp: content.vat_rate_bp,
        vat_note: content.vat_note.clone(),
        status: status_to_proto(status).into(),
        copies: content.copies,
        updated_at: Some(time::to_proto(updated_at)),
        rank: 0.0,
    }
}

/// An offer row as protobuf; `INTERNAL` if the row holds values the constraints forbid.
pub fn offer_to_proto(row: &OfferRow) -> Result<pb::Offer, ServiceError> {
    let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
    Ok(offer_proto(row.id, row.version, stored.status, &stored.content, row.updated_at))
}

pub fn provider_to_proto(p: &Provider) -> pb::Provider {
    pb::Provider {
        code: p.code.clone(),
        name: p.name.clone(),
        kind: provider_kind_to_proto(Some(p.kind)).into(),
        contact_email: p.contact_email.clone(),
    }
}

pub fn provider_row_to_proto(p: ProviderRow) -> pb::Provider {
    pb::Provider {
        kind: provider_kind_to_proto(ProviderKind::parse(&p.kind)).into(),
        code: p.code,
        name: p.name,
        contact_email: p.contact_email,
    }
}

fn booking_status_to_proto(status: &str) -> pb::BookingStatus {
    match BookingStatus::parse(status) {
        Some(BookingStatus::Held) => pb::BookingStatus::Held,
        Some(BookingStatus::Confirmed) => pb::BookingStatus::Confirmed,
        Some(BookingStatus::Released) => pb::BookingStatus::Released,
        None => pb::BookingStatus::Unspecified,
    }
}

pub fn booking_to_proto(b: &BookingRow) -> pb::Booking {
    pb::Booking {
        id: b.id.to_string(),
        exhibition_id: b.offer_id.to_string(),
        copy_id: b.copy_id.to_string(),
        copy_label: b.copy_label.clone(),
        member_id: b.member_id.to_string(),
        request_id: b.request_id.map(|r| r.to_string()).unwrap_or_default(),
        from: b.start_date.to_string(),
        to: b.end_date.to_string(),
        status: booking_status_to_proto(&b.status).into(),
        provider_code: b.provider_code.clone(),
        updated_at: Some(time::to_proto(b.updated_at)),
    }
}

/// An exhibition's calendar: each copy with its live bookings, and the free copies per day.
pub fn availability_to_proto(
    exhibition_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
    copies: &[CopyRow],
    bookings: &[BookingRow],
    days: Vec<(NaiveDate, u32)>,
) -> pb::Availability {
    let busy = |copy: Uuid| {
        bookings
            .iter()
            .filter(|b| b.copy_id == copy)
            .map(|b| pb::BusyPeriod {
                from: b.start_date.to_string(),
                to: b.end_date.to_string(),
                status: booking_status_to_proto(&b.status).into(),
            })
            .collect()
    };
    pb::Availability {
        exhibition_id: exhibition_id.to_string(),
        from: from.to_string(),
        to: to.to_string(),
        copies: u32::try_from(copies.len()).unwrap_or(u32::MAX),
        copy_calendars: copies
            .iter()
            .map(|c| pb::CopyAvailability { copy_id: c.id.to_string(), label: c.label.clone(), busy: busy(c.id) })
            .collect(),
        days: days
            .into_iter()
            .map(|(date, available_copies)| pb::DayAvailability { date: date.to_string(), available_copies })
            .collect(),
    }
}

/// A page of search results: the offers (with their rank, without the long description, which comes with
/// GetOffer), the facets, and the query as corrected when typo correction changed it.
pub fn search_answer(
    rows: &[SearchRow],
    result: search::Page,
    asked: &str,
) -> Result<pb::SearchOffersResponse, ServiceError> {
    let corrected = rows.first().and_then(|r| r.corrected.clone()).unwrap_or_default();
    let mut offers = Vec::with_capacity(result.items.len());
    for i in &result.items {
        let row = &rows[*i];
        let mut offer = offer_to_proto(&row.offer)?;
        offer.rank = row.rank;
        offer.description = String::new();
        offers.push(offer);
    }
    let facet = |name: &str, counts: BTreeMap<String, u32>| pb::Facet {
        name: name.to_owned(),
        values: counts.into_iter().map(|(value, count)| pb::FacetValue { value, count }).collect(),
    };
    let f = result.facets;
    Ok(pb::SearchOffersResponse {
        offers,
        next_page_token: result.next.as_ref().map(page::encode).unwrap_or_default(),
        facets: vec![
            facet("category", f.category),
            facet("theme", f.theme),
            facet("provider", f.provider),
            facet("price_kind", f.price_kind),
        ],
        total: result.total,
        corrected_q: if corrected.is_empty() || corrected == asked { String::new() } else { corrected },
    })
}

// ---- protobuf → domain ---------------------------------------------------------------------------------------

/// A category filter: `None` when unspecified.
pub fn category_from_proto(category: i32) -> Result<Option<Category>, ServiceError> {
    match pb::OfferCategory::try_from(category) {
        Ok(_) => Ok(Category::from_proto(category)),
        Err(_) => Err(ServiceError::invalid("category", "is not a known category")),
    }
}

fn status_from_proto(status: i32) -> Result<OfferStatus, ServiceError> {
    match pb::OfferStatus::try_from(status) {
        Ok(pb::OfferStatus::Draft) => Ok(OfferStatus::Draft),
        Ok(pb::OfferStatus::Published) => Ok(OfferStatus::Published),
        Ok(pb::OfferStatus::Archived) => Ok(OfferStatus::Archived),
        _ => Err(ServiceError::invalid("statuses", "must be draft, published or archived")),
    }
}

/// A price kind filter: `None` when unspecified.
fn price_kind_from_proto(kind: i32) -> Result<Option<PriceKind>, ServiceError> {
    match pb::PriceKind::try_from(kind) {
        Ok(_) => Ok(PriceKind::from_proto(kind)),
        Err(_) => Err(ServiceError::invalid("price_kind", "is not a known price kind")),
    }
}

/// A provider code filter: `None` when empty.
fn provider_code_filter(raw: &str) -> Result<Option<String>, ServiceError> {
    match raw.trim() {
        "" => Ok(None),
        code if is_valid_subject_token(code) => Ok(Some(code.to_owned())),
        _ => Err(ServiceError::invalid("provider_code", "must be lowercase ASCII letters, digits or dashes")),
    }
}

/// What a listing asks for: a category, a provider, the statuses (published when none is named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub category: Option<Category>,
    pub provider_code: Option<String>,
    pub statuses: Vec<OfferStatus>,
}

pub fn listing(req: &pb::ListOffersRequest) -> Result<Listing, ServiceError> {
    let category = category_from_proto(req.category)?;
    let provider_code = provider_code_filter(&req.provider_code)?;
    let mut statuses = req.statuses.iter().map(|s| status_from_proto(*s)).collect::<Result<Vec<_>, _>>()?;
    if statuses.is_empty() {
        statuses.push(OfferStatus::Published);
    }
    Ok(Listing { category, provider_code, statuses })
}

fn price_rule_from_proto(rule: pb::PriceRule) -> Result<PriceRule, ServiceError> {
    Ok(match PriceKind::from_proto(rule.kind) {
        Some(PriceKind::Free) => PriceRule::Free,
        Some(PriceKind::Flat) => PriceRule::Flat { amount_cents: rule.amount_cents },
        Some(PriceKind::DailyRate) => PriceRule::DailyRate { amount_cents: rule.amount_cents, days: rule.days },
        Some(PriceKind::PerInhabitant) => PriceRule::PerInhabitant {
            amount_cents: rule.amount_cents,
            floor_cents: rule.floor_cents,
            cap_cents: (rule.cap_cents != 0).then_some(rule.cap_cents),
        },
        Some(PriceKind::OnQuote) => PriceRule::OnQuote,
        None => return Err(ServiceError::invalid("offer.price_rule.kind", "is required")),
    })
}

/// Eligibility as the domain validates it: an unknown member kind is kept, to be reported by the validation.
fn eligibility_input(e: pb::Eligibility) -> EligibilityInput {
    let kind = |k: i32| MemberKind::from_proto(k).map_or_else(|| format!("unknown ({k})"), |k| k.as_str().to_owned());
    EligibilityInput {
        member_kinds: e.member_kinds.into_iter().map(kind).collect(),
        min_population: (e.min_population != 0).then_some(e.min_population),
        max_population: (e.max_population != 0).then_some(e.max_population),
        epci_sirens: e.epci_sirens,
        arrondissements: e.arrondissements,
    }
}

/// The operator's offer input, as the domain validates it.
pub fn offer_input(input: Option<pb::OfferInput>) -> Result<OfferInput, ServiceError> {
    let input = input.ok_or_else(|| ServiceError::invalid("offer", "is required"))?;
    let category =
        category_from_proto(input.category)?.ok_or_else(|| ServiceError::invalid("offer.category", "is required"))?;
    let price = price_rule_from_proto(input.price_rule.unwrap_or_default())?;
    Ok(OfferInput {
        code: input.code,
        title: input.title,
        summary: input.summary,
        description: input.description,
        category: category.as_str().to_owned(),
        themes: input.themes,
        provider_code: input.provider_code,
        duration: input.duration,
        eligibility: eligibility_input(input.eligibility.unwrap_or_default()),
        price,
        vat_rate_bp: input.vat_rate_bp,
        vat_note: input.vat_note,
        copies: input.copies,
    })
}

/// The operator's provider, as the domain validates it (an unspecified kind is reported by the validation).
pub fn provider_input(p: pb::Provider) -> ProviderInput {
    let kind = match pb::ProviderKind::try_from(p.kind) {
        Ok(pb::ProviderKind::DepartmentalService) => ProviderKind::DepartmentalService.as_str(),
        Ok(pb::ProviderKind::AssociatedOrganisation) => ProviderKind::AssociatedOrganisation.as_str(),
        _ => "",
    };
    ProviderInput { code: p.code, name: p.name, kind: kind.to_owned(), contact_email: p.contact_email }
}

/// An offer key: a UUID, or a code.
pub fn offer_key(field: &str, raw: &str) -> Result<OfferKey, ServiceError> {
    let key = raw.trim();
    let written = raw.to_owned();
    if let Ok(id) = Uuid::parse_str(key) {
        Ok(OfferKey { id: Some(id), code: String::new(), written })
    } else if is_valid_subject_token(key) {
        Ok(OfferKey { id: None, code: key.to_owned(), written })
    } else {
        Err(ServiceError::invalid(field, "must be an offer id (UUID) or an offer code"))
    }
}

pub fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    match raw.trim() {
        "" => Ok(None),
        raw => Uuid::parse_str(raw).map(Some).map_err(|_| ServiceError::invalid(field, "must be a UUID")),
    }
}

/// A reason given with an action (archiving, releasing): at most as long as a VAT note.
pub fn action_reason(raw: &str) -> Result<&str, ServiceError> {
    let reason = raw.trim();
    if reason.chars().count() > domain::MAX_VAT_NOTE_CHARS {
        return Err(ServiceError::invalid("reason", "must be at most 300 characters"));
    }
    Ok(reason)
}

/// A search as asked: the text, the filters (the caller's member is added for "eligible for my collectivité"),
/// where the page starts (after the previous page's cursor, or at a page number) and the page size.
#[derive(Debug)]
pub struct SearchQuery {
    pub q: String,
    pub filters: Filters,
    pub start: Option<Start>,
    pub limit: usize,
    pub eligible_only: bool,
}

/// The text fields of a search, every problem reported at once.
fn search_text(req: &pb::SearchOffersRequest) -> Result<(String, String), ServiceError> {
    let mut violations = Vec::new();
    if req.q.chars().count() > search::MAX_QUERY_CHARS {
        violations.push(FieldViolation {
            field: "q".into(),
            description: format!("must be at most {} characters", search::MAX_QUERY_CHARS),
        });
    }
    let theme = req.theme.trim().to_lowercase();
    if theme.chars().count() > domain::MAX_THEME_CHARS {
        violations.push(FieldViolation { field: "theme".into(), description: "is too long".into() });
    }
    let provider = req.provider_code.trim().to_owned();
    if !provider.is_empty() && !is_valid_subject_token(&provider) {
        violations.push(FieldViolation {
            field: "provider_code".into(),
            description: "must be lowercase ASCII letters, digits or dashes".into(),
        });
    }
    if violations.is_empty() { Ok((theme, provider)) } else { Err(ServiceError::invalid_fields(violations)) }
}

pub fn search_query(req: pb::SearchOffersRequest) -> Result<SearchQuery, ServiceError> {
    let (theme, provider) = search_text(&req)?;
    let filters = Filters {
        category: category_from_proto(req.category)?,
        theme: (!theme.is_empty()).then_some(theme),
        provider_code: (!provider.is_empty()).then_some(provider),
        price_kind: price_kind_from_proto(req.price_kind)?,
        member: None,
    };
    let after: Option<Cursor> = page::decode(&req.page_token)?;
    let start = match after {
        Some(cursor) => Some(Start::After(cursor)),
        None if req.page > 1 => Some(Start::Number(usize::try_from(req.page).unwrap_or(usize::MAX))),
        None => None,
    };
    let limit = usize::try_from(page::size(req.page_size)).unwrap_or(20);
    Ok(SearchQuery { q: req.q, filters, start, limit, eligible_only: req.eligible_only })
}
